#!/usr/bin/env python3
"""exec_dispatcher.py PORT DIR — a placement responder for the exec tests.

Stands where the dispatcher will be: POST /api/v1/placements answers with
the first worker in DIR/worker.json (one, or a list) that the request
does not "exclude", as DIR/mode says ("ok", "503", "500",
"slow" = never answers in time); POST /api/v1/jobs/{id}/end is appended
to DIR/ends.log. Both need "Authorization: Bearer $EXEC_TOKEN".
Any PUT (a transcoder's progress callback, when this plays PMS) is
appended to DIR/callbacks.log with the peer's address, and gets 200.
"""
import json, os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, state = int(sys.argv[1]), sys.argv[2]
token = os.environ.get("EXEC_TOKEN", "")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(os.path.join(state, "callbacks.log"), "a") as f:
            f.write(json.dumps({"path": self.path, "peer": self.client_address[0],
                                "token": self.headers.get("X-Plex-Token")}) + "\n")
        self.reply(200, {})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.headers.get("Authorization") != "Bearer " + token:
            return self.reply(401, {"error": "token"})
        if self.path.startswith("/api/v1/jobs/") and self.path.endswith("/end"):
            with open(os.path.join(state, "ends.log"), "a") as f:
                f.write(json.dumps({"job": self.path.split("/")[4], **body}) + "\n")
            return self.reply(200, {})
        if self.path != "/api/v1/placements":
            return self.reply(404, {})
        with open(os.path.join(state, "placements.log"), "a") as f:
            f.write(json.dumps(body) + "\n")
        mode = open(os.path.join(state, "mode")).read().strip()
        if mode == "slow":
            time.sleep(30)
        if mode in ("503", "500"):
            return self.reply(int(mode), {"error": mode})
        workers = json.load(open(os.path.join(state, "worker.json")))
        if isinstance(workers, dict):
            workers = [workers]
        free = [w for w in workers if w["name"] not in body.get("exclude", [])]
        if not free:
            return self.reply(503, {"error": "no worker"})
        self.reply(200, {"job": body["job"], "worker": free[0]})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass    # a shim that gave up (deadline, SIGKILL) closed its socket


Server(("127.0.0.1", port), Handler).serve_forever()
