#!/usr/bin/python3
"""A real SMTP server for the e-mail tests: aiosmtpd (Debian's python3-aiosmtpd) on 127.0.0.1,
writing every accepted message to a Maildir.

    /usr/bin/python3 tests/support/smtp_server.py MAILDIR [starttls|implicit CERT KEY [USER PASS]]

With "starttls" the server requires STARTTLS before MAIL; with "implicit" it speaks TLS from
the first byte (SMTPS). With USER and PASS it requires AUTH (LOGIN or PLAIN, over TLS only).

Prints "READY <port>" once it listens on a free port, and runs until its standard input closes
(the test holds the pipe; when the test ends, the server ends with it).

What it answers depends on the recipient's address, so one server serves every case:
  - local part containing "reject":   RCPT -> 550 5.1.1 (a permanent refusal of that recipient)
  - local part containing "tempfail": the first RCPT -> 451 4.7.1 (greylisting), then accepted
  - local part containing "slow":     the message is stored, but the reply to DATA comes after
                                      3 seconds (past a short client timeout)
Everything else is accepted. Accepted RCPTs are counted per address in MAILDIR/../rcpt.log.
"""

import asyncio
import os
import socket
import sys
import threading

import ssl

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult


class Handler(Mailbox):
    def __init__(self, maildir):
        super().__init__(maildir)
        self.tempfailed = set()
        self.log = os.path.join(os.path.dirname(os.path.abspath(maildir)), "rcpt.log")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if "reject" in local:
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if "tempfail" in local and address not in self.tempfailed:
            self.tempfailed.add(address)
            return "451 4.7.1 <%s>: greylisted, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        result = await super().handle_DATA(server, session, envelope)
        with open(self.log, "a") as f:
            for rcpt in envelope.rcpt_tos:
                f.write(rcpt + "\n")
        if any("slow" in r.split("@")[0] for r in envelope.rcpt_tos):
            await asyncio.sleep(3)
        return result


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    if os.environ.get("SMTP_DEBUG"):
        import logging
        logging.basicConfig(level=logging.DEBUG)
    maildir = sys.argv[1]
    port = free_port()
    kwargs = {}
    if len(sys.argv) > 2:
        mode, cert, key = sys.argv[2:5]
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        if mode == "starttls":
            kwargs.update(tls_context=ctx, require_starttls=True)
        else:
            kwargs.update(ssl_context=ctx)
        if len(sys.argv) > 6:
            user, password = sys.argv[5].encode(), sys.argv[6].encode()

            def authenticator(server, session, envelope, mechanism, auth_data):
                ok = auth_data.login == user and auth_data.password == password
                # handled=False: aiosmtpd answers 235 or 535 itself.
                return AuthResult(success=ok, handled=False)

            kwargs.update(authenticator=authenticator, auth_required=True)
    controller = Controller(Handler(maildir), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print("READY %d" % port, flush=True)
    done = threading.Event()

    def wait_stdin():
        sys.stdin.read()
        done.set()

    threading.Thread(target=wait_stdin, daemon=True).start()
    done.wait()
    controller.stop()


if __name__ == "__main__":
    main()
