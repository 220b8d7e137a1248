#!/usr/bin/env python3
"""exec_fuse.py SOCKET DIR — stands where clusterplex-fuse's control
socket will be: every ROUTE_ADD / ROUTE_DEL frame is appended to
DIR/routes.log as JSON (with "op"), and answered with ROUTE_OK, or with
ERROR when DIR/route-mode says "error"."""
import json, os, socket, struct, sys, threading

path, state = sys.argv[1], sys.argv[2]
NAMES = {52: "ROUTE_ADD", 53: "ROUTE_DEL"}


def frame(t, payload=b""):
    return struct.pack(">IBBHI", len(payload), t, 0, 0, 0) + payload


def serve(conn):
    with conn:
        data = b""
        while len(data) < 12 or len(data) < 12 + struct.unpack(">I", data[:4])[0]:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        n, t = struct.unpack(">IB", data[:5])
        body = json.loads(data[12:12 + n])
        body["op"] = NAMES.get(t, t)
        with open(os.path.join(state, "routes.log"), "a") as f:
            f.write(json.dumps(body) + "\n")
        mode_file = os.path.join(state, "route-mode")
        if os.path.exists(mode_file) and open(mode_file).read().strip() == "error":
            conn.sendall(frame(2, b'{"code":"protocol","message":"route table full"}'))
        else:
            conn.sendall(frame(54))


if os.path.exists(path):
    os.unlink(path)
srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
srv.listen(16)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
