#!/usr/bin/env python3
"""exec_argv.py SHIM SESSION WORKER_DIR COUNT SEED — argv fidelity.

Runs the shim COUNT times with generated argvs (random lengths and
bytes 1-255; empty strings; shell and JSON metacharacters; invalid
UTF-8) and checks that the stand-in on the worker received exactly the
same bytes. Every byte value 1-255 appears in the first run. Elements
that would make the job local by design (absolute paths) are avoided.
"""
import os, random, subprocess, sys, time

shim, session, worker, count, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(seed)
SPECIAL = [b"", b" ", b"'", b'"', b"$HOME", b"`id`", b";", b"\\", b"\n", b"a\nb", b"\\u0000",
           b'{"b64":"AAAA"}', b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"-i", b"%s%n", b"*", b"~"]


def arg():
    kind = rng.random()
    if kind < 0.2:
        return rng.choice(SPECIAL)
    n = rng.choice([1, 2, 5, 20, 100, 1000]) if kind < 0.98 else 100000
    b = bytes(rng.randrange(1, 256) for _ in range(n))
    if b[:1] == b"/" or b.startswith(b"file:/"):
        b = b"x" + b
    return b


def run(argv, i):
    out = os.path.join(worker, "argv.bin")
    if os.path.exists(out):
        os.unlink(out)
    r = subprocess.run([shim, "argv"] + argv, cwd=session, timeout=30,
                       stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit("run %d: exit %d: %s" % (i, r.returncode, r.stderr.decode(errors="replace")[-500:]))
    got = open(out, "rb").read().split(b"\0")[:-1]
    if got[:1] != [b"argv"]:
        sys.exit("run %d: the stand-in's own command word is missing" % i)
    got = got[1:]
    if got != argv:
        for k, (a, b) in enumerate(zip(argv, got)):
            if a != b:
                sys.exit("run %d: argv[%d] differs: sent %r got %r" % (i, k + 1, a[:80], b[:80]))
        sys.exit("run %d: sent %d arguments, got %d" % (i, len(argv), len(got)))


# A lone "/" is an absolute path (the job would rightly stay local).
every = [bytes([b]) if b != 0x2f else b"a/" for b in range(1, 256)] + [bytes(range(1, 256))]
t0 = time.time()
run(every, 0)
for i in range(1, count):
    run([arg() for _ in range(rng.choice([0, 1, 3, 10, 40]))], i)
# Many arguments, and one close to the kernel's 128 KiB limit for one.
run([b"%d" % k for k in range(5000)], count)
run([bytes(rng.randrange(1, 256) for _ in range(120000)).replace(b"/", b"x")], count + 1)
print("%d argvs byte-exact in %.1f s" % (count + 2, time.time() - t0))
