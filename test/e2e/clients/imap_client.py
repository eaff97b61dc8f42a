#!/usr/bin/env python3
"""IMAP client on python3's imaplib, driven by one JSON request on stdin.

Request: host, port, tls (none|starttls|implicit), ca, user, password or token,
method (login|plain|authlogin|xoauth2), ops (list of: status, big, append), big_message_id,
append_marker, loop ({seconds, interval}: log in again and again; for the expiry test).
"""
import hashlib
import imaplib
import time

from common import main, tls_context, xoauth2


def connect(req):
    if req["tls"] == "implicit":
        m = imaplib.IMAP4_SSL(req["host"], req["port"], ssl_context=tls_context(req), timeout=60)
    else:
        m = imaplib.IMAP4(req["host"], req["port"], timeout=60)
        if req["tls"] == "starttls":
            m.starttls(ssl_context=tls_context(req))
    return m


def login(m, req):
    user = req["user"]
    method = req["method"]
    if method == "login":
        return m.login(user, req["password"])
    if method == "plain":
        return m.authenticate("PLAIN", lambda _: f"\0{user}\0{req['password']}".encode())
    if method == "authlogin":
        # AUTHENTICATE LOGIN: the username at the first prompt, the password at the second.
        answers = [user.encode(), req["password"].encode()]
        return m.authenticate("LOGIN", lambda _: answers.pop(0) if answers else b"")
    if method == "xoauth2":
        # The first continuation gets the token; a second one is the server's error challenge,
        # which RFC 7628 section 3.2.3 answers with an empty response.
        calls = []

        def respond(_challenge):
            calls.append(1)
            return xoauth2(user, req["token"]).encode() if len(calls) == 1 else b""
        return m.authenticate("XOAUTH2", respond)
    raise ValueError(f"unknown method {method}")


def fetch_big(m, req):
    typ, data = m.uid("SEARCH", None, "HEADER", "Message-ID", f'"{req["big_message_id"]}"')
    uids = data[0].split()
    if len(uids) != 1:
        raise RuntimeError(f"expected one message with Message-ID {req['big_message_id']}, got {data}")
    uid = uids[0]
    typ, data = m.uid("FETCH", uid, "(RFC822.SIZE)")
    size = int(data[0].decode().split("RFC822.SIZE ")[1].rstrip(")").split()[0])
    typ, data = m.uid("FETCH", uid, "(BODY.PEEK[])")
    body = data[0][1]
    return {"size": size, "length": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def session(req):
    out = {}
    m = connect(req)
    out["pre_caps"] = list(m.capabilities)
    typ, data = login(m, req)
    out["login"] = typ
    out["post_caps"] = list(m.capabilities) if hasattr(m, "capabilities") else []
    ops = req.get("ops", [])
    typ, data = m.select("INBOX", readonly="append" not in ops)
    out["messages"] = int(data[0])
    if "status" in ops:
        typ, data = m.status("INBOX", "(MESSAGES UIDNEXT)")
        out["status"] = data[0].decode()
    if "big" in ops:
        out["big"] = fetch_big(m, req)
    if "append" in ops:
        marker = req["append_marker"]
        msg = (f"From: {req['user']}\r\nTo: {req['user']}\r\nSubject: {marker}\r\n"
               f"Message-ID: <{marker}@e2e.example.com>\r\n\r\nappended through IMAP by imaplib\r\n").encode()
        typ, data = m.append("INBOX", None, None, msg)
        out["append"] = typ
    m.logout()
    return out


def loop(req):
    seconds, interval = req["loop"]["seconds"], req["loop"]["interval"]
    end = time.time() + seconds
    logins, failures, errors = 0, 0, []
    while time.time() < end:
        started = time.time()
        try:
            m = connect(req)
            login(m, req)
            m.select("INBOX", readonly=True)
            m.logout()
            logins += 1
        except Exception as err:
            failures += 1
            if len(errors) < 5:
                errors.append(f"{time.strftime('%H:%M:%S')} {type(err).__name__}: {err}")
        time.sleep(max(0.0, interval - (time.time() - started)))
    return {"logins": logins, "failures": failures, "errors": errors}


main(lambda req: loop(req) if "loop" in req else session(req))
