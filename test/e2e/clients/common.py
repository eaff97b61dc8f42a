"""Shared by the python3 client scripts: read one JSON request on stdin, answer one JSON line."""
import json
import ssl
import sys
import traceback


def request():
    return json.loads(sys.stdin.read())


def answer(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def tls_context(req):
    ctx = ssl.create_default_context(cafile=req["ca"])
    return ctx


def xoauth2(user, token):
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def main(fn):
    req = request()
    try:
        answer({"ok": True, **fn(req)})
    except Exception as err:  # the test reads the error text
        answer({"ok": False, "error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()[-2000:]})
