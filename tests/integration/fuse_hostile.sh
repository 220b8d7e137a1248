#!/bin/bash
# fuse_hostile.sh — hostile FREQ frames sent straight to `clusterplex-agent
# exec` (the file service, as sshd would start it): every path escape is
# refused, handles and sizes are bounded, a FIFO cannot hang it, protocol
# abuse ends the link, and nothing outside the worker's folder changes.
set -eu -o pipefail
. "$(dirname "$0")/fuse_lib.sh"
fz_require python3
fz_setup
fz_worker w1
R=$FZ/w1
mkdir -p "$FZ/outside/dir" "$R/Transcode/Sessions/s"
echo canary >"$FZ/outside/canary"
echo inside >"$R/Transcode/Sessions/s/chunk-1.m4s"
ln -s ../outside "$R/up"
ln -s "$FZ/outside/canary" "$R/abs"
ln -s ../../../../outside/dir "$R/Transcode/Sessions/s/out"
ln -s /proc/self/root "$R/proc"
ln -s /proc/self/cwd "$R/cwd"
ln -s loop2 "$R/loop1"
ln -s loop1 "$R/loop2"
ln -s ../outside/new "$R/dangling"
ln -s Transcode/Sessions/s/chunk-1.m4s "$R/good"
mkfifo "$R/fifo"
before=$(cd "$FZ/outside" && find . -printf '%p %s %m %T@\n' | sort | sha256sum)

python3 - "$FZ_AGENT" "$FZ/workers/w1.env" "$R" <<'EOF'
import errno, os, struct, sys, time, fuse_wire as w
agent, env, root = sys.argv[1:]
s, u32, u64 = w.s, w.u32, w.u64
EPROTO, EXDEV, ELOOP = errno.EPROTO, errno.EXDEV, errno.ELOOP
proc, p = w.spawn_agent(agent, env)
ident = [0]
def call(op, *args, want=None, timeout=5.0):
    ident[0] += 1
    st, rest = p.call(ident[0], op, *args, timeout=timeout)
    if want is not None:
        ok = st in want if isinstance(want, tuple) else st == want
        assert ok, "%s %r: got %d, want %r" % (op, args[:1], st, want)
    return st, rest
refused = (-EXDEV, -ELOOP, -errno.EACCES, -errno.EPERM, -EPROTO)

# Malformed paths never reach the disk.
for path in ("..", "../outside/canary", "/etc/passwd", "a/../../x", "a//b",
             "./up", "up/", "Transcode/Sessions/s/../../../outside/canary",
             "x" * 5000, "a\0b"):
    call("STAT", s(path), want=-EPROTO)
    call("OPEN", s(path), u32(w.O_RDWR | w.O_CREAT), u32(0o644), want=-EPROTO)
    call("UNLINK", s(path), want=-EPROTO)
# Symlinks out of the root, in every op.
for path in ("up/canary", "abs", "proc/etc/passwd", "cwd", "Transcode/Sessions/s/out",
             "Transcode/Sessions/s/out/x", "loop1", "dangling"):
    call("STAT", s(path), want=refused)
    call("PREAD", s(path), u64(0), u32(100), want=refused)
    call("OPEN", s(path), u32(w.O_RDWR | w.O_CREAT), u32(0o666), want=refused)
    call("READDIR", s(path), u64(0), want=refused + (-errno.ENOTDIR,))
    call("TRUNCATE", s(path), u64(0), want=refused)
    call("CHMOD", s(path), u32(0o777), want=refused)
    call("UTIMENS", s(path), u64(0), u32(0), u64(0), u32(0), want=refused)
    call("STATFS", s(path), want=refused)
    call("WATCH", s(path + "/w"), want=refused + (-errno.ENOTDIR,))
    call("MKDIR", s(path + "/d"), u32(0o755), want=refused + (-errno.ENOTDIR,))
    call("UNLINK", s(path + "/canary"), want=refused + (-errno.ENOTDIR,))
call("RENAME", s("Transcode/Sessions/s/chunk-1.m4s"), s("up/stolen"), u32(0), want=refused)
call("RENAME", s("up/canary"), s("taken"), u32(0), want=refused)
call("RENAME", s("a"), s("b"), u32(0x2), want=-EPROTO)     # no RENAME_EXCHANGE
# Inside the root, symlinks work.
st, rest = call("PREAD", s("good"), u64(0), u32(100), want=0)
assert rest.endswith(b"inside\n"), rest
# Handles: forged ones are refused, there are at most 256, sizes are bounded.
call("READ", u64(12345), u64(0), u32(10), want=-errno.EBADF)
call("CLOSE", u64(1 << 40), want=-errno.EBADF)
call("READ", u64(0), u64(0), u32(10 * 1024 * 1024), want=-EPROTO)
call("PREAD", s("good"), u64(0), u32(512 * 1024 + 1), want=-EPROTO)
handles = []
for i in range(256):
    st, rest = call("OPEN", s("good"), u32(w.O_RDONLY), u32(0), want=0)
    handles.append(struct.unpack(">Q", rest[:8])[0])
call("OPEN", s("good"), u32(w.O_RDONLY), u32(0), want=-errno.EMFILE)
call("WRITE", u64(handles[0]), u64(0), s(b"x"), want=-errno.EBADF)
for h in handles:
    call("CLOSE", u64(h), want=0)
# A FIFO answers at once instead of blocking the service.
t0 = time.time()
call("PREAD", s("fifo"), u64(0), u32(10), want=-errno.EINVAL, timeout=2)
call("OPEN", s("fifo"), u32(w.O_WRONLY), u32(0), want=(-errno.EINVAL, -errno.ENXIO), timeout=2)
assert time.time() - t0 < 1
# Unknown ops and truncated payloads.
for payload in (b"", b"\x00", b"\x63", struct.pack(">B", 1), b"\x01\x00\x00",
                struct.pack(">BI", 1, 100) + b"short"):
    ident[0] += 1
    p.send(w.MSG["FREQ"], ident[0], payload)
    st, rest = p.reply(ident[0])
    assert st == -EPROTO, (payload, st)
call("STAT", s("good"), want=0)         # the link survived all of that
print("file service: %d hostile requests refused, link intact" % ident[0])

# A message of another service ends the link (with an ERROR first).
p.send(10, 1, b"{}")                    # JOB
m = p.recv(5)
assert m is not None and m[0] == w.MSG["ERROR"], m
assert p.recv(5) is None, "link still open after a protocol error"
assert proc.wait(5) == 1, "agent exit status"
# An oversized frame ends the link too.
proc, p = w.spawn_agent(agent, env)
p.sock.sendall(struct.pack(">IBBHI", 64 * 1024 * 1024, 40, 0, 0, 1))
assert p.recv(5) is None, "oversized frame accepted"
assert proc.wait(5) in (0, 1)
# And a second HELLO.
proc, p = w.spawn_agent(agent, env)
p.send(w.MSG["HELLO"], 0, w.hello("files"))
m = p.recv(5)
assert m is not None and m[0] == w.MSG["ERROR"], m
assert proc.wait(5) == 1
print("protocol abuse ends the link; the agent exits without crashing")
EOF
after=$(cd "$FZ/outside" && find . -printf '%p %s %m %T@\n' | sort | sha256sum)
[ "$before" = "$after" ] || fz_fail "something outside the worker's folder changed"
[ "$(cat "$FZ/outside/canary")" = canary ] || fz_fail "canary changed"
[ ! -e "$FZ/outside/new" ] || fz_fail "a file was created outside through a dangling symlink"
fz_ok "hostile FREQ frames refused; nothing outside the root touched"
