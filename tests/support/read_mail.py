#!/usr/bin/python3
"""Reads every message of a Maildir back with Python's own e-mail parser (an independent
decoder: RFC 2047 headers, base64 / quoted-printable bodies, MIME structure) and prints one
JSON object per message, in file-name order:

    /usr/bin/python3 tests/support/read_mail.py MAILDIR [ATTACHMENT_DIR]

{"subject", "from", "to", "message_id", "list_unsubscribe", "raw_subject",
 "parts": [{"type", "text"?, "filename"?, "size"?}]}
Attachments are written to ATTACHMENT_DIR under their file names when it is given.
"""

import email
import email.policy
import json
import os
import sys


def main():
    maildir = sys.argv[1]
    out_dir = sys.argv[2] if len(sys.argv) > 2 else None
    files = []
    for sub in ("new", "cur"):
        d = os.path.join(maildir, sub)
        if os.path.isdir(d):
            files += [os.path.join(d, f) for f in os.listdir(d)]
    for path in sorted(files):
        with open(path, "rb") as f:
            raw = f.read()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        raw_msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        parts = []
        for part in msg.walk():
            if part.is_multipart():
                parts.append({"type": part.get_content_type()})
                continue
            p = {"type": part.get_content_type()}
            filename = part.get_filename()
            if filename:
                data = part.get_payload(decode=True)
                p["filename"] = filename
                p["size"] = len(data)
                if out_dir:
                    os.makedirs(out_dir, exist_ok=True)
                    with open(os.path.join(out_dir, filename), "wb") as f:
                        f.write(data)
            else:
                p["text"] = part.get_content()
            parts.append(p)
        print(json.dumps({
            "file": os.path.basename(path),
            "subject": str(msg["subject"]),
            "raw_subject": raw_msg["subject"],
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "message_id": str(msg["message-id"]),
            "list_unsubscribe": msg["list-unsubscribe"] and str(msg["list-unsubscribe"]),
            "parts": parts,
        }, ensure_ascii=False))


if __name__ == "__main__":
    main()
