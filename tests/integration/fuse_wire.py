"""fuse_wire.py — ClusterPlex frames and file-service messages, for tests.

Speaks the wire format of common/cpx-protocol.h to a `clusterplex-agent
exec` started on a socket pair, or to clusterplex-fuse's control socket.
"""

import json
import os
import socket
import struct
import subprocess

MSG = dict(HELLO=1, ERROR=2, PING=3, PONG=4, FREQ=40, FREPLY=41, FEVENT=42,
           ROUTE_ADD=52, ROUTE_DEL=53, ROUTE_OK=54)
FOP = dict(STAT=1, READDIR=2, OPEN=3, READ=4, WRITE=5, CLOSE=6, MKDIR=7,
           UNLINK=8, RMDIR=9, RENAME=10, TRUNCATE=11, CHMOD=12, UTIMENS=13,
           STATFS=14, WATCH=15, UNWATCH=16, PREAD=17)
O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC = 0, 1, 2, 4, 8, 0x10
ATTR = struct.Struct(">IIIIQQqIqIqI")


def frame(kind, ident, payload=b""):
    return struct.pack(">IBBHI", len(payload), kind, 0, 0, ident) + payload


def s(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack(">I", len(b)) + b


def freq(op, *args):
    """args are already-encoded bytes (use s(), u32(), u64())."""
    return struct.pack(">B", FOP[op]) + b"".join(args)


def u32(v):
    return struct.pack(">I", v)


def u64(v):
    return struct.pack(">Q", v)


def attr(b, off=0):
    f = ATTR.unpack_from(b, off)
    return dict(mode=f[0], nlink=f[1], uid=f[2], gid=f[3], size=f[4]), \
        off + ATTR.size


class Peer:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, kind, ident=0, payload=b""):
        self.sock.sendall(frame(kind, ident, payload))

    def recv(self, timeout=5.0):
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 12:
                n, kind, _, _, ident = struct.unpack(">IBBHI", self.buf[:12])
                if len(self.buf) >= 12 + n:
                    p = self.buf[12:12 + n]
                    self.buf = self.buf[12 + n:]
                    return kind, ident, p
            d = self.sock.recv(1 << 20)
            if not d:
                return None
            self.buf += d

    def reply(self, ident, timeout=5.0):
        """Waits for the FREPLY with this id; returns (status, rest)."""
        while True:
            m = self.recv(timeout)
            if m is None:
                raise EOFError("link closed")
            if m[0] == MSG["FREPLY"] and m[1] == ident:
                return struct.unpack(">i", m[2][:4])[0], m[2][4:]

    def call(self, ident, op, *args, timeout=5.0):
        self.send(MSG["FREQ"], ident, freq(op, *args))
        return self.reply(ident, timeout)


def hello(service, who="test"):
    return json.dumps({"proto": 1, "service": service, "who": who,
                       "version": "test"}).encode()


def spawn_agent(agent, env_file):
    """Starts `agent exec --env-file F` on a socket pair; returns (proc, Peer)."""
    a, b = socket.socketpair()
    p = subprocess.Popen([agent, "exec", "--env-file", env_file],
                         stdin=b.fileno(), stdout=b.fileno(), close_fds=True)
    b.close()
    peer = Peer(a)
    peer.send(MSG["HELLO"], 0, hello("files"))
    m = peer.recv()
    if m is None or m[0] != MSG["HELLO"]:
        raise RuntimeError("agent did not answer HELLO: %r" % (m,))
    return p, peer


def control(sock_path):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(sock_path)
    return Peer(c)


def route_add(peer, ident, d, job, worker):
    peer.send(MSG["ROUTE_ADD"], ident,
              json.dumps({"dir": d, "job": job, "worker": worker}).encode())
    return peer.recv(30.0)


def route_del(peer, ident, d):
    peer.send(MSG["ROUTE_DEL"], ident, json.dumps({"dir": d}).encode())
    return peer.recv(30.0)


if __name__ == "__main__":
    print(os.path.basename(__file__), "is a library")
