#!/usr/bin/env python3
"""Seeds one Maildir with fixed messages, idempotently (a message already there is left alone).

usage: seed-maildir.py MAILDIR USER [--big]

Messages (all with CRLF line ends, so a file's size is its RFC 822 size):
  seed-1  a short plain-text message
  seed-2  a MIME message with a UTF-8 subject and a small attachment
  seed-3  (--big, given to the first user) a message of exactly BIG_BYTES bytes in total,
          headers included; its body is base64-looking lines of 76 characters.
File names carry S= and W= (both the exact size), so Dovecot need not read a file to size it.
"""
import os
import sys

BIG_BYTES = 10 * 1024 * 1024
CRLF = "\r\n"


def headers(user, n, subject, extra=()):
    lines = [
        "From: Seeder <seeder@example.com>",
        f"To: {user}",
        f"Subject: {subject}",
        "Date: Tue, 14 Nov 2023 22:13:2%d +0000" % n,
        f"Message-ID: <seed-{n}@e2e.example.com>",
        "MIME-Version: 1.0",
        *extra,
    ]
    return CRLF.join(lines) + CRLF + CRLF


def small(user):
    body = CRLF.join(["Hello from the e2e seed.", "", "This is message one.", ""])
    return headers(user, 1, "e2e seed 1: hello", ["Content-Type: text/plain; charset=us-ascii"]) + body


def mime(user):
    boundary = "e2e-boundary-42"
    parts = [
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        "Grüße aus dem Test. Message two has an attachment.",
        f"--{boundary}",
        "Content-Type: application/octet-stream; name=\"blob.bin\"",
        "Content-Transfer-Encoding: base64",
        "Content-Disposition: attachment; filename=\"blob.bin\"",
        "",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4",
        f"--{boundary}--",
        "",
    ]
    extra = [f"Content-Type: multipart/mixed; boundary=\"{boundary}\""]
    return headers(user, 2, "=?UTF-8?Q?e2e_seed_2:_Gr=C3=BC=C3=9Fe?=", extra) + CRLF.join(parts)


def big(user):
    head = headers(user, 3, "e2e seed 3: exactly 10 MiB", ["Content-Type: text/plain; charset=us-ascii"])
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    line_len = 76
    ring = alphabet * 3
    remaining = BIG_BYTES - len(head.encode())
    out = [head]
    sizes = []
    while remaining > 2 * (line_len + 2):
        sizes.append(line_len)
        remaining -= line_len + 2
    # The last one or two lines take what is left (each of them at most 76 characters).
    tail = [remaining] if remaining <= line_len + 2 else [remaining // 2, remaining - remaining // 2]
    sizes.extend(total - 2 for total in tail)
    for i, n in enumerate(sizes):
        out.append(ring[i % 64:i % 64 + n] + CRLF)
    data = "".join(out).encode()
    assert len(data) == BIG_BYTES, len(data)
    return data


def main():
    maildir, user = sys.argv[1], sys.argv[2]
    want_big = "--big" in sys.argv[3:]
    messages = [(1, small(user).encode()), (2, mime(user).encode())]
    if want_big:
        messages.append((3, big(user)))
    present = os.listdir(os.path.join(maildir, "cur")) + os.listdir(os.path.join(maildir, "new"))
    for n, data in messages:
        base = f"170000000{n}.M{n}P1.e2e-seed-{n}"
        if any(name.startswith(base + ",") for name in present):
            continue
        name = f"{base},S={len(data)},W={len(data)}:2,"
        tmp = os.path.join(maildir, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(maildir, "cur", name))


if __name__ == "__main__":
    main()
