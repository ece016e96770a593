#!/usr/bin/env python3
"""Lab only: a real SMTP server on loopback that stores every message it accepts as a file.

The daily report's email goes through community.general.mail to this sink; tests read the
files. Written on the stdlib's socketserver (no aiosmtpd on this machine) and speaks just
enough of RFC 5321: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
"""
import argparse
import os
import socketserver
import time


class Handler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write((line + "\r\n").encode())

    def handle(self):
        self.reply("220 mcp-lab-smtp ready")
        mail_from, rcpts = None, []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 mcp-lab-smtp")
            elif verb == "MAIL":
                mail_from, rcpts = line.split(":", 1)[1].strip(), []
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpts.append(line.split(":", 1)[1].strip())
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while True:
                    data = self.rfile.readline()
                    if not data or data in (b".\r\n", b".\n"):
                        break
                    lines.append(data[1:] if data.startswith(b"..") else data)
                name = "%d-%d.eml" % (time.time() * 1000, os.getpid())
                tmp = os.path.join(self.server.maildir, "." + name)
                with open(tmp, "wb") as f:
                    f.write(("X-Lab-Mail-From: %s\r\nX-Lab-Rcpt-To: %s\r\n" % (mail_from, ", ".join(rcpts))).encode())
                    f.writelines(lines)
                os.replace(tmp, os.path.join(self.server.maildir, name))
                self.reply("250 OK queued as " + name)
            elif verb == "RSET":
                mail_from, rcpts = None, []
                self.reply("250 OK")
            elif verb == "NOOP":
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 command not implemented")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", default="127.0.0.1:25025")
    p.add_argument("--maildir", required=True)
    a = p.parse_args()
    host, port = a.listen.rsplit(":", 1)
    os.makedirs(a.maildir, exist_ok=True)
    with Server((host, int(port)), Handler) as srv:
        srv.maildir = a.maildir
        srv.serve_forever()


if __name__ == "__main__":
    main()
