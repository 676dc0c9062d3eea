"""A real SMTP server for the email tests: aiosmtpd (Debian's python3-aiosmtpd, the server
Mailman 3 runs on), with STARTTLS required and a login required after it, as a city's relay
would. Each message is saved as JSON in OUTDIR, as parsed by Python's email package.

usage: /usr/bin/python3 smtp_server.py PORT CERT KEY OUTDIR USER PASSWORD
Prints "ready" once it accepts connections.
"""

import email
import email.policy
import json
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, cert, key, outdir, user, password = sys.argv[1:7]


class Save:
    def __init__(self):
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.count += 1
        login = session.auth_data.login.decode() if session.auth_data else None
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "login": login,
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "subject": str(msg["subject"]),
            "message_id": str(msg["message-id"]),
            "auto_submitted": str(msg["auto-submitted"]),
            "content_type": msg.get_content_type(),
            "body": msg.get_content(),
        }
        tmp = os.path.join(outdir, f".{self.count}.json")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        os.rename(tmp, os.path.join(outdir, f"{self.count}.json"))
        return "250 2.0.0 Message accepted for delivery"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == user.encode()
        and auth_data.password == password.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
controller = Controller(
    Save(),
    hostname="127.0.0.1",
    port=int(port),
    tls_context=context,
    require_starttls=True,
    authenticator=authenticate,
    auth_required=True,
    auth_require_tls=True,
)
controller.start()
print("ready", flush=True)
# Serves on its own thread until the test kills the process.
threading.Event().wait()
