#!/usr/bin/env python3
"""POP3 client on python3's poplib, driven by one JSON request on stdin.

Request: host, port, tls (none|starttls|implicit), ca, user, password or token,
method (user|plain|authlogin|xoauth2), big_message_id (RETR the message whose TOP shows that Message-ID).
"""
import base64
import hashlib
import poplib

from common import main, tls_context, xoauth2


def connect(req):
    if req["tls"] == "implicit":
        return poplib.POP3_SSL(req["host"], req["port"], context=tls_context(req), timeout=60)
    p = poplib.POP3(req["host"], req["port"], timeout=60)
    if req["tls"] == "starttls":
        p.stls(context=tls_context(req))
    return p


def login(p, req):
    user, method = req["user"], req["method"]
    if method == "user":
        p.user(user)
        return p.pass_(req["password"])
    if method == "plain":
        return p._shortcmd("AUTH PLAIN " + base64.b64encode(f"\0{user}\0{req['password']}".encode()).decode())
    if method == "authlogin":
        # AUTH LOGIN: "+ VXNlcm5hbWU6" (Username:), then "+ UGFzc3dvcmQ6" (Password:).
        for step in ("AUTH LOGIN", base64.b64encode(user.encode()).decode()):
            resp = p._shortcmd(step)
            if not resp.startswith(b"+ "):
                raise poplib.error_proto(resp)
        return p._shortcmd(base64.b64encode(req["password"].encode()).decode())
    if method == "xoauth2":
        resp = p._shortcmd("AUTH XOAUTH2 " + base64.b64encode(xoauth2(user, req["token"]).encode()).decode())
        if resp.startswith(b"+ "):
            # An error challenge (RFC 7628 section 3.2.3): answer empty, the -ERR follows.
            resp = p._shortcmd("")
        return resp
    raise ValueError(f"unknown method {method}")


def session(req):
    p = connect(req)
    out = {"capa": sorted(p.capa().keys())}
    out["login"] = login(p, req).decode()
    count, size = p.stat()
    out["stat"] = [count, size]
    resp, listing, _ = p.list()
    sizes = {int(n): int(s) for n, s in (line.decode().split() for line in listing)}
    if req.get("big_message_id"):
        wanted = f"<{req['big_message_id']}>".encode()
        for n in sorted(sizes):
            resp, head, _ = p.top(n, 0)
            if any(line.lower().startswith(b"message-id:") and wanted in line for line in head):
                resp, lines, octets = p.retr(n)
                data = b"\r\n".join(lines) + b"\r\n"
                out["big"] = {"listed": sizes[n], "octets": octets, "length": len(data),
                              "sha256": hashlib.sha256(data).hexdigest()}
                break
        else:
            raise RuntimeError(f"no message with Message-ID {req['big_message_id']}")
    p.quit()
    return out


main(session)
