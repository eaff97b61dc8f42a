#!/usr/bin/env python3
"""SMTP client on python3's smtplib, driven by one JSON request on stdin.

Request: host, port, tls (none|starttls|implicit), ca, user, password or token,
method (plain|login|xoauth2), sender, rcpt, marker (goes in Subject and Message-ID),
body_bytes (optional: a body of about that many bytes instead of one line).
"""
import smtplib

from common import main, tls_context, xoauth2


def connect(req):
    if req["tls"] == "implicit":
        s = smtplib.SMTP_SSL(req["host"], req["port"], context=tls_context(req), timeout=120)
    else:
        s = smtplib.SMTP(req["host"], req["port"], timeout=120)
    s.ehlo("e2e.example.com")
    if req["tls"] == "starttls":
        s.starttls(context=tls_context(req))
        s.ehlo("e2e.example.com")
    return s


def login(s, req):
    method, user = req["method"], req["user"]
    s.user, s.password = user, req.get("password", "")
    if method == "plain":
        return s.auth("PLAIN", s.auth_plain)
    if method == "login":
        return s.auth("LOGIN", s.auth_login, initial_response_ok=False)
    if method == "xoauth2":
        # RFC 7628 section 3.2.3: a server's error challenge is answered with an empty response.
        return s.auth("XOAUTH2", lambda challenge=None: xoauth2(user, req["token"]) if challenge is None else "")
    raise ValueError(f"unknown method {method}")


def body(req):
    n = req.get("body_bytes")
    if not n:
        return "Sent by python3 smtplib through the e2e suite.\r\n"
    line = ("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" * 2)[:76] + "\r\n"
    return line * (n // len(line))


def session(req):
    s = connect(req)
    out = {"auth_offered": s.esmtp_features.get("auth", "").split(), "size": s.esmtp_features.get("size")}
    code, text = login(s, req)
    out["auth"] = [code, text.decode()]
    marker = req["marker"]
    msg = (f"From: {req['sender']}\r\nTo: {req['rcpt']}\r\nSubject: {marker}\r\n"
           f"Message-ID: <{marker}@e2e.example.com>\r\n\r\n{body(req)}")
    refused = s.sendmail(req["sender"], [req["rcpt"]], msg.encode())
    out["refused"] = refused
    out["sent_bytes"] = len(msg.encode())
    s.quit()
    return out


main(session)
