#!/usr/bin/python3
# codecs_http.py ADDRESS PORT ROOT LOG [CERT KEY PLAIN_URL] — a stand-in
# for downloads.plex.tv
# in codecs_url.sh: serves the files below ROOT, the first path component
# choosing how (so one server plays every kind of failure):
#
#   /ok/P     the file, with Content-Length
#   /nolen/P  the file without Content-Length (connection close ends it)
#   /trunc/P  Content-Length of the whole file, half of it, then close
#   /slow/P   the file at 64 KiB/s
#   /redir/P  302 to PLAIN_URL/ok/P (a downgrade from https to http)
#   missing   404
#
# With CERT and KEY it speaks HTTPS. Each request is one line in LOG:
# "<mode> <path>". Bound to ADDRESS (the test cluster's pms host), never
# to the machine's own network.
import os
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

ADDRESS, PORT, ROOT, LOG = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
CERT, KEY, PLAIN = (sys.argv[5:8] + [None] * 3)[:3]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        parts = urlsplit(self.path).path.lstrip("/").split("/", 1)
        mode, rel = parts[0], unquote(parts[1]) if len(parts) > 1 else ""
        with open(LOG, "a") as f:
            f.write("%s %s\n" % (mode, rel))
        if mode == "redir":
            self.send_response(302)
            self.send_header("Location", "%s/ok/%s" % (PLAIN, rel))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = os.path.realpath(os.path.join(ROOT, rel))
        if not path.startswith(os.path.realpath(ROOT) + "/") or not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, "rb") as f:
            data = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if mode != "nolen":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode == "trunc":
            self.wfile.write(data[: len(data) // 2])
        elif mode == "slow":
            for i in range(0, len(data), 8192):
                self.wfile.write(data[i : i + 8192])
                self.wfile.flush()
                time.sleep(0.125)
        else:
            self.wfile.write(data)


server = ThreadingHTTPServer((ADDRESS, PORT), Handler)
if CERT:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
