#!/usr/bin/env python3
"""A webhook receiver for occcd's events, as a team would write one.

Verifies each POST's X-Occcd-Signature (HMAC-SHA256 of "<t>.<body>" under
the shared secret, t within five minutes) and appends accepted bodies, one
per line, to OUT. While the file DOWN exists it answers 503 (an outage);
while DOWN.close exists it answers with `Connection: close` and closes at
once (as HTTP/1.0 servers and many proxies do).

usage: webhook_receiver.py SECRET_FILE OUT DOWN PORT_FILE
"""
import hashlib
import hmac
import http.server
import os
import sys
import time

SECRET = open(sys.argv[1], "rb").read().strip()
OUT, DOWN, PORT_FILE = sys.argv[2], sys.argv[3], sys.argv[4]


def signature_ok(header, body):
    try:
        parts = dict(part.split("=", 1) for part in header.split(","))
        sent_at = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = hmac.new(SECRET, str(sent_at).encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", "")) and abs(time.time() - sent_at) < 300


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        if os.path.exists(DOWN + ".close"):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if os.path.exists(DOWN):
            return self.answer(503)
        if not signature_ok(self.headers.get("X-Occcd-Signature", ""), body):
            with open(OUT + ".refused", "ab") as refused:
                refused.write(body + b"\n")
            return self.answer(401)
        with open(OUT, "ab") as out:
            out.write(body + b"\n")
        self.answer(204)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
with open(PORT_FILE + ".tmp", "w") as port_file:
    port_file.write(str(server.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
