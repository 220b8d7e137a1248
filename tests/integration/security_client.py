#!/usr/bin/python3
"""security_client.py — a hostile client of `clusterplex-agent exec`.

  security_client.py job|files --worker-fs DIR -- CMD...

CMD reaches the agent (e.g. OpenSSH with the PMS key to a worker of the
test cluster: sshd runs the forced command whatever CMD asks). Every case
opens its own connection, sends what a compromised PMS host could send
(common/cpx-protocol.h frames), and checks the agent's answer. DIR is the
worker's root file system as seen from here (/proc/PID/root of a process
in the worker's mount namespace): nothing may appear outside its
/transcode, nothing may run but the configured transcoder. The worker's
transcoder must be tests/integration/exec_standin.c (argv[1] says what it
does). Prints "ok NAME: detail" or "FAIL NAME: detail" per case and a
summary line "N cases, N failed"; exit 1 on any failure.
"""

import base64
import json
import os
import select
import struct
import subprocess
import sys
import time

HDR = struct.Struct(">IBBHI")
HELLO, ERROR, PING, JOB, INPUT, RUN, STDIN, SIGNAL = 1, 2, 3, 10, 11, 12, 13, 14
STARTED, STDOUT, STDERR, EXIT = 20, 21, 22, 23
FREQ, FREPLY = 40, 41
FRAME_MAX = 1024 * 1024
SESS = "/transcode/Transcode/Sessions"

CMD = []
FS = ""
UID = GID = 0
results = []


def frame(kind, payload=b"", ident=0):
    return HDR.pack(len(payload), kind, 0, 0, ident) + payload


def hello(service="job", proto=1):
    return frame(HELLO, json.dumps({"proto": proto, "service": service,
                                    "client": "security"}).encode())


def spec(cwd, argv, **kw):
    s = {"v": 1, "id": kw.pop("id", "sec-%d" % (len(results) + 1)),
         "session": "sec", "root": "/transcode", "cwd": cwd, "argv": argv,
         "env": [], "pms_port": 32400, "tunnel": False, "verbose": False,
         "inputs": []}
    s.update(kw)
    return json.dumps(s).encode()


class Conn:
    """One connection to the agent: frames out, frames in."""

    def __init__(self):
        # The agent's log lines come on stderr: kept for the token check.
        with open(os.environ.get("SEC_STDERR", os.devnull), "ab") as err:
            self.p = subprocess.Popen(CMD, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=err)
        self.buf = b""
        self.eof = False

    def send(self, data):
        try:
            self.p.stdin.write(data)
            self.p.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def frames(self, until=None, timeout=5.0):
        """Frames until one of type `until` (or EOF, or timeout)."""
        out = []
        end = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while time.monotonic() < end and not self.eof:
            while len(self.buf) >= HDR.size:
                n, kind, _, _, ident = HDR.unpack_from(self.buf)
                if len(self.buf) < HDR.size + n:
                    break
                out.append((kind, ident, self.buf[HDR.size:HDR.size + n]))
                self.buf = self.buf[HDR.size + n:]
                if until is not None and kind in until:
                    return out
            r, _, _ = select.select([fd], [], [], max(0, end - time.monotonic()))
            if not r:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                self.eof = True
            self.buf += chunk
        return out

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def record(name, ok, detail):
    results.append(ok)
    print("%s %s: %s" % ("ok" if ok else "FAIL", name, detail), flush=True)


def error_of(frames):
    for kind, _, body in frames:
        if kind == ERROR:
            try:
                return json.loads(body).get("code", "?")
            except ValueError:
                return "?"
    return None


def run_job(payload, extra=b"", run=True, timeout=8.0):
    """HELLO, JOB (+ extra frames), RUN: what came back, and the stdout."""
    c = Conn()
    c.send(hello() + frame(JOB, payload) + extra + (frame(RUN) if run else b""))
    got = c.frames(until=(EXIT, ERROR), timeout=timeout)
    c.close()
    out = b"".join(b for k, _, b in got if k == STDOUT)
    return got, out


def outside(*names):
    """Names that exist on the worker outside its /transcode."""
    found = []
    for n in names:
        for d in ("tmp", "", "etc", "var/tmp"):
            p = os.path.join(FS, d, n)
            if os.path.lexists(p):
                found.append("/" + os.path.join(d, n))
    return found


def wfs(path):
    return os.path.join(FS, path.lstrip("/"))


def mkdir_worker(path):
    """A folder below the worker's /transcode, owned by the worker's user."""
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        p = wfs("/".join(parts[:i]))
        if not os.path.isdir(p):
            os.mkdir(p)
            if i > 1:
                os.chown(p, UID, GID)


# --- the job service ----------------------------------------------------------

def job_cases():
    base = SESS + "/sec-base"
    got, out = run_job(spec(base, ["where"]))
    record("baseline", out.strip() == base.encode() and error_of(got) is None,
           "the stand-in ran in %s" % out.strip().decode(errors="replace"))

    # SSH_ORIGINAL_COMMAND and friends arrive as environment too.
    bad_env = ["LD_PRELOAD=/tmp/sec-evil.so", "LD_LIBRARY_PATH=/tmp",
               "PATH=/tmp/sec-evil", "HOME=/tmp/sec-home", "SHELL=/tmp/sh",
               "USER=root", "LOGNAME=root", "PWD=/etc",
               "SSH_ORIGINAL_COMMAND=touch /tmp/sec-pwned0",
               "SSH_AUTH_SOCK=/tmp/sock", "CLUSTERPLEX_TOKEN=stolen-token",
               "X_PLEX_TOKEN=plex-token-kept"]
    got, out = run_job(spec(base, ["env"], env=bad_env))
    env = dict(l.split("=", 1) for l in out.decode(errors="replace").splitlines()
               if "=" in l)
    injected = dict(e.split("=", 1) for e in bad_env)
    leaked = [k for k, v in injected.items()
              if k != "X_PLEX_TOKEN" and env.get(k) == v]
    record("env-injection", not leaked and env.get("X_PLEX_TOKEN") ==
           "plex-token-kept" and env.get("PWD") == base,
           "LD_*, SSH_*, CLUSTERPLEX_TOKEN, PATH, HOME, USER, SHELL, PWD from "
           "the spec: %s; X_PLEX_TOKEN passed" % (
               "leaked " + ",".join(leaked) if leaked else "none reached it"))

    meta = ["argv", "$(touch /tmp/sec-pwned1)", "`touch /tmp/sec-pwned2`",
            "; touch /tmp/sec-pwned3", "| touch /tmp/sec-pwned4",
            "&& touch /tmp/sec-pwned5", "\ntouch /tmp/sec-pwned6\n",
            "$IFS", "${PATH}", "'", '"', "\\"]
    got, _ = run_job(spec(base, meta))
    record("argv-metachars", not outside(*["sec-pwned%d" % i for i in range(7)]),
           "shell syntax in argv ran nothing (exit %s)" % exit_of(got))

    got, out = run_job(spec(base, ["-c", "touch /tmp/sec-pwned7"],
                            transcoder="/bin/sh", path="/bin/sh",
                            argv0="/bin/sh", exec="/bin/sh", binary="/bin/sh"))
    record("choose-binary", not outside("sec-pwned7") and exit_of(got) == "code 2",
           "spec fields naming /bin/sh: the configured transcoder ran "
           "(%s), not a shell" % exit_of(got))

    # The working directory: every escape is refused before anything runs.
    long1 = "x" * 256
    cwds = [
        ("dotdot", "/transcode/../tmp/sec-esc1", "/transcode"),
        ("dotdot-deep", SESS + "/../../../tmp/sec-esc2", "/transcode"),
        ("outside-root", "/tmp/sec-esc3", "/transcode"),
        ("symlink-abs", SESS + "/sec-link-abs/sec-esc4", "/transcode"),
        ("symlink-rel", SESS + "/sec-link-rel/sec-esc5", "/transcode"),
        ("symlink-proc", SESS + "/sec-link-proc/sec-esc6", "/transcode"),
        ("symlink-itself", SESS + "/sec-link-abs", "/transcode"),
        ("long-name", SESS + "/" + long1, "/transcode"),
        ("long-path", SESS + ("/" + "y" * 200) * 25, "/transcode"),
    ]
    for name, cwd, root in cwds:
        got, out = run_job(spec(cwd, ["where"], root=root))
        code = error_of(got)
        started = any(k == STARTED for k, _, _ in got)
        record("cwd-" + name, code is not None and not started and
               not outside(*["sec-esc%d" % i for i in range(1, 7)]),
               "refused (%s), nothing created outside" % code if code else
               "ran in %s" % out.strip().decode(errors="replace"))
    # NUL inside a path, smuggled as base64.
    nul = {"b64": base64.b64encode((SESS + "/a\0/../../../tmp").encode()).decode()}
    got, _ = run_job(spec("/x", ["where"]).replace(b'"cwd": "/x"',
                                                    b'"cwd": ' + json.dumps(nul).encode()))
    record("cwd-nul", error_of(got) == "bad-spec", "a NUL byte in cwd: %s" %
           error_of(got))
    # A root that is not the worker's: confined below the worker's root.
    got, out = run_job(spec("/tmp/sec-esc7", ["where"], root="/"))
    where = out.strip().decode(errors="replace")
    record("cwd-other-root", (error_of(got) is not None or
                              where.startswith("/transcode/")) and
           not outside("sec-esc7"),
           "root / and cwd /tmp/sec-esc7: %s" % (
               "refused (%s)" % error_of(got) if error_of(got) else
               "mapped to " + where))


def exit_of(frames):
    for kind, _, body in frames:
        if kind == EXIT and len(body) >= 2:
            return "%s %d" % ("signal" if body[0] else "code", body[1])
    return "error %s" % error_of(frames) if error_of(frames) else "none"


def input_cases():
    cwd = SESS + "/sec-inputs"
    for name in ("../sec-inp1", "/tmp/sec-inp2", "..", ".", "", "a/b",
                 "z" * 300):
        inputs = [{"name": name, "size": 4}]
        got, _ = run_job(spec(cwd, ["where"], inputs=inputs),
                         frame(INPUT, struct.pack(">Q", 0) + b"evil", 0))
        record("input-name %r" % name[:20], error_of(got) is not None and
               not outside("sec-inp1", "sec-inp2"),
               "refused (%s)" % error_of(got))
    # A name that is a symlink out of the session folder: never followed.
    target = wfs("/tmp/sec-target")
    mkdir_worker(cwd)
    link = wfs(cwd + "/temp-0.srt")
    if not os.path.lexists(link):
        os.symlink("/tmp/sec-target", link)
        os.lchown(link, UID, GID)
    got, _ = run_job(spec(cwd, ["where"], inputs=[{"name": "temp-0.srt",
                                                   "size": 4}]),
                     frame(INPUT, struct.pack(">Q", 0) + b"evil", 0))
    with open(target) as f:
        kept = f.read() == "untouched"
    record("input-symlink", kept, "an input named like a symlink to /tmp: "
           "%s, target untouched" % (error_of(got) or exit_of(got)))
    for label, off, data in (("beyond-size", 0, b"x" * 20),
                             ("beyond-offset", 100, b"x")):
        got, _ = run_job(spec(cwd + "2", ["where"],
                              inputs=[{"name": "in.bin", "size": 10}]),
                         frame(INPUT, struct.pack(">Q", off) + data, 0))
        record("input-" + label, error_of(got) is not None and
               not any(k == STARTED for k, _, _ in got),
               "refused (%s)" % error_of(got))
    for label, inputs in (
            ("too-many", [{"name": "i%d" % i, "size": 1} for i in range(65)]),
            ("too-large", [{"name": "big", "size": 1 << 40}])):
        got, _ = run_job(spec(cwd + "3", ["where"], inputs=inputs))
        record("input-" + label, error_of(got) == "bad-spec",
               "refused (%s)" % error_of(got))


def oversized_cases():
    cwd = SESS + "/sec-big"
    c = Conn()
    t0 = time.monotonic()
    c.send(hello() + HDR.pack(FRAME_MAX + 1, JOB, 0, 0, 0) + b"{" * 65536)
    got = c.frames(until=(ERROR,), timeout=5)
    c.frames(timeout=3)
    eof = c.eof
    c.close()
    record("frame-over-max", error_of(got) is not None or eof,
           "a frame announcing %d bytes: %s after %.2f s" % (
               FRAME_MAX + 1, error_of(got) or "closed",
               time.monotonic() - t0))
    c = Conn()
    c.send(hello() + HDR.pack(0xffffffff, JOB, 0, 0, 0))
    got = c.frames(until=(ERROR,), timeout=5)
    c.frames(timeout=3)
    record("frame-4g", error_of(got) is not None or c.eof,
           "a frame announcing 4 GiB: %s" % (error_of(got) or "closed"))
    c.close()
    for label, payload in (
            ("argv-8193", spec(cwd, ["x"] * 8193)),
            ("env-1025", spec(cwd, ["where"], env=["A%d=1" % i for i in range(1025)])),
            ("json-nesting", b'{"v":1,"argv":' + b"[" * 200000 + b"]" * 200000 + b"}"),
            ("json-garbage", b"\xff\xfe{not json" * 1000),
            ("id-long", spec(cwd, ["where"], id="i" * 200)),
            ("id-path", spec(cwd, ["where"], id="../../etc/passwd"))):
        got, _ = run_job(payload[:FRAME_MAX])
        record("spec-" + label, error_of(got) is not None and
               not any(k == STARTED for k, _, _ in got),
               "refused (%s)" % error_of(got))
    # The largest frame allowed: one argument of almost 1 MiB passes the
    # protocol; execve() refuses it (128 KiB per argument): a clean refusal.
    got, out = run_job(spec(cwd, ["argv", "a" * (FRAME_MAX - 400)]))
    record("spec-1mib", exit_of(got) in ("code 0", "error exec-failed"),
           "a 1 MiB argument: %s" % exit_of(got))


def protocol_cases():
    cwd = SESS + "/sec-proto"
    checks = (
        ("job-before-hello", frame(JOB, spec(cwd, ["where"])) + frame(RUN)),
        ("run-before-job", hello() + frame(RUN)),
        ("second-job", hello() + frame(JOB, spec(cwd, ["where"])) +
         frame(JOB, spec(cwd, ["env"])) + frame(RUN)),
        ("garbage", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 4),
        ("zero-header", b"\0" * 64),
        ("proto-version", hello(proto=2)),
        ("unknown-service", hello(service="shell")),
    )
    for label, data in checks:
        c = Conn()
        c.send(data)
        got = c.frames(until=(ERROR, EXIT), timeout=5)
        if error_of(got) is not None:
            c.frames(timeout=2)     # the agent closes after its ERROR
        c.close()
        started = any(k == STARTED for k, _, _ in got)
        record("proto-" + label, (error_of(got) is not None or c.eof) and
               not started, "refused (%s)" % (error_of(got) or "closed"))
    # Frame types it does not know are skipped (newer clients); the job
    # service goes on.
    got, out = run_job(spec(cwd, ["where"]), frame(99, b"??") + frame(37))
    record("proto-unknown-type", exit_of(got) == "code 0",
           "unknown frame types skipped, the job then ran (%s)" % exit_of(got))
    # Signals: only the documented ones reach the transcoder.
    c = Conn()
    c.send(hello() + frame(JOB, spec(cwd, ["sleep", "30"])) + frame(RUN))
    got = c.frames(until=(STARTED, ERROR), timeout=5)
    pid = None
    for kind, _, body in got:
        if kind == STARTED:
            pid = json.loads(body)["pid"]
    states = []
    for sig in (19, 20, 0, 64, 255):
        c.send(frame(SIGNAL, bytes([sig])))
        time.sleep(0.2)
        states.append(proc_state(pid))
    got = c.frames(until=(EXIT, ERROR), timeout=1)
    c.close()
    record("signal-stop", pid is not None and "T" not in states,
           "SIGSTOP, SIGTSTP, 0, 64, 255 sent: transcoder states %s, %s" % (
               "".join(s or "-" for s in states),
               error_of(got) or "link kept"))


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, TypeError):
        return None


# --- the file service -------------------------------------------------------------

def s(b):
    b = b.encode() if isinstance(b, str) else b
    return struct.pack(">I", len(b)) + b


OPS = dict(STAT=1, READDIR=2, OPEN=3, READ=4, MKDIR=7, RENAME=10, PREAD=17,
           WATCH=15, UNLINK=8)


def freq(op, *args):
    return struct.pack(">B", OPS[op]) + b"".join(args)


def files_cases():
    c = Conn()
    c.send(hello("files"))
    c.frames(until=(HELLO,), timeout=5)
    cases = [
        ("dotdot", freq("STAT", s("../etc/passwd"))),
        ("absolute", freq("STAT", s("/etc/passwd"))),
        ("deep-dotdot", freq("STAT", s("Transcode/../../etc/passwd"))),
        ("symlink-abs", freq("STAT", s("Transcode/Sessions/sec-link-abs/sec-target"))),
        ("symlink-rel", freq("PREAD", s("Transcode/Sessions/sec-link-rel/sec-target"),
                             struct.pack(">QI", 0, 100))),
        ("symlink-proc", freq("PREAD", s("Transcode/Sessions/sec-link-proc/etc/passwd"),
                              struct.pack(">QI", 0, 100))),
        ("create-through-link", freq("OPEN", s("Transcode/Sessions/sec-link-abs/sec-fcreate"),
                                     struct.pack(">II", 0x05, 0o644))),
        ("mkdir-through-link", freq("MKDIR", s("Transcode/Sessions/sec-link-abs/sec-fmkdir"),
                                    struct.pack(">I", 0o755))),
        ("rename-out", freq("RENAME", s("Transcode/Sessions/sec-base"),
                            s("Transcode/Sessions/sec-link-abs/sec-frename"),
                            struct.pack(">I", 0))),
        ("watch-out", freq("WATCH", s("Transcode/Sessions/sec-link-abs/sec-fwatch"))),
        ("long-path", freq("STAT", s("a/" * 2600))),
        ("forged-handle", freq("READ", struct.pack(">QQI", 12345, 0, 10))),
        ("truncated", b"\x01\x00\x00"),
    ]
    for i, (label, payload) in enumerate(cases, 1):
        c.send(frame(FREQ, payload, i))
        got = c.frames(until=(FREPLY,), timeout=5)
        status = None
        for kind, ident, body in got:
            if kind == FREPLY and ident == i and len(body) >= 4:
                status = struct.unpack(">i", body[:4])[0]
        record("files-" + label, status is not None and status < 0 and
               not outside("sec-fcreate", "sec-fmkdir", "sec-frename",
                           "sec-fwatch"),
               "answered %s" % (os.strerror(-status) if status else status))
    c.close()


def main():
    global CMD, FS
    args = sys.argv[1:]
    what = args.pop(0)
    assert args.pop(0) == "--worker-fs"
    FS = args.pop(0)
    assert args.pop(0) == "--"
    CMD = args
    global UID, GID
    import pwd
    pw = pwd.getpwnam(os.environ.get("CPX_WORKER_USER", "cpxworker"))
    UID, GID = pw.pw_uid, pw.pw_gid
    # Symlinks out of the worker's transcode folder, made by "someone" on
    # the worker (a previous job, a bad volume): the agent must not follow.
    mkdir_worker(SESS)
    for name, target in (("sec-link-abs", "/tmp"),
                         ("sec-link-rel", "../../../tmp"),
                         ("sec-link-proc", "/proc/self/root")):
        if not os.path.lexists(wfs(SESS + "/" + name)):
            os.symlink(target, wfs(SESS + "/" + name))
            os.lchown(wfs(SESS + "/" + name), UID, GID)
    # The worker's user could write it: only the agent's care keeps it.
    with open(wfs("/tmp/sec-target"), "w") as f:
        f.write("untouched")
    os.chown(wfs("/tmp/sec-target"), UID, GID)
    if what == "job":
        job_cases()
        input_cases()
        oversized_cases()
        protocol_cases()
    else:
        files_cases()
    failed = results.count(False)
    print("%d cases, %d failed" % (len(results), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
