#!/bin/sh
# dispatcher_badinput.sh — bad, truncated, oversized, slow and excess clients get clear
# errors, and the dispatcher keeps serving everyone else.
. "$(dirname -- "$0")/dispatcher_lib.sh"

start_dispatcher CLUSTERPLEX_HTTP_REQUEST_MS=1000 CLUSTERPLEX_HTTP_MAX_CONNECTIONS=32 || exit 1
register w1 >/dev/null

check "malformed JSON: 400 naming the problem" \
    matches '^400 .*not valid JSON' api POST /api/v1/placements '{"job":'
check "JSON of the wrong shape: 400" \
    matches '^400 .*must be a JSON object' api POST /api/v1/placements '["job"]'
check "wrong field type: 400 naming the field" \
    matches '^400 .*caps' api POST /api/v1/placements '{"caps":"vaapi"}'
check "unknown route: 404" matches '^404 .*no route' api GET /api/v2/things
check "unknown worker action: 404" matches '^404' api POST /api/v1/workers/w1/explode '{}'
check "wrong method: 405" matches '^405' api DELETE /metrics

# Raw-socket clients: each prints what the server answered.
python3 - "$DISP_PORT" "$TOKEN" >"$WORK/raw.txt" 2>&1 <<'PY'
import socket, sys, time, threading
port, token = int(sys.argv[1]), sys.argv[2]
auth = "Authorization: Bearer %s\r\n" % token

def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s

def read_all(s):
    data = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except socket.timeout:
        data += b"<timeout>"
    return data.decode("latin-1")

def first_line(data):
    return data.split("\r\n", 1)[0]

# Truncated body: Content-Length says 100, 10 bytes come, then the client stops sending.
s = conn()
s.sendall(("POST /api/v1/placements HTTP/1.1\r\n%sContent-Length: 100\r\n\r\n{\"job\":\"a" % auth).encode())
s.shutdown(socket.SHUT_WR)
r = read_all(s)
print("truncated:", first_line(r), "| truncated" in r or "truncated" in r)

# Oversized body, announced: 413 before it is sent.
s = conn()
s.sendall(("POST /api/v1/placements HTTP/1.1\r\n%sContent-Length: 5000000\r\n\r\n" % auth).encode())
print("oversized:", first_line(read_all(s)))

# Oversized body, chunked: 413 once past the limit.
s = conn()
s.sendall(("POST /api/v1/placements HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\n" % auth).encode())
try:
    for _ in range(40):
        s.sendall(b"8000\r\n" + b"x" * 0x8000 + b"\r\n")
except OSError:
    pass
print("chunked:", first_line(read_all(s)))

# Huge headers: 431.
s = conn()
s.sendall(b"GET /health HTTP/1.1\r\nX-Big: " + b"y" * 20000 + b"\r\n\r\n")
print("headers:", first_line(read_all(s)))

# Not HTTP at all: 400 and closed.
s = conn()
s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
print("garbage:", first_line(read_all(s)))

# A slow client (one byte every 200 ms) is cut off with 408 after ~1 s,
# while other clients keep being served at once.
slow_result = {}
def slow():
    s = conn()
    t0 = time.time()
    try:
        for ch in b"GET /health HTTP/1.1\r\nHost: slowly-slowly-slowly\r\n\r\n":
            s.sendall(bytes([ch]))
            time.sleep(0.2)
    except OSError:
        pass
    slow_result["line"] = first_line(read_all(s))
    slow_result["secs"] = time.time() - t0
t = threading.Thread(target=slow)
t.start()
time.sleep(0.3)
worst = 0.0
for _ in range(20):
    t0 = time.time()
    c = conn()
    c.sendall(b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")
    ok = read_all(c).startswith("HTTP/1.1 200")
    worst = max(worst, time.time() - t0)
    if not ok:
        worst = 99
    time.sleep(0.02)
t.join()
print("slow:", slow_result["line"], "after %.1f s" % slow_result["secs"])
print("others: worst %.3f s" % worst)

# More connections than allowed: the excess get 503, the held ones still work.
held = [conn() for _ in range(32)]
time.sleep(0.2)
extra = conn()
print("excess:", first_line(read_all(extra)))
for h in held:
    h.close()
PY
cat "$WORK/raw.txt"
check "truncated body: 400" grep -q '^truncated: HTTP/1.1 400 Bad Request True' "$WORK/raw.txt"
check "announced oversized body: 413" grep -q '^oversized: HTTP/1.1 413' "$WORK/raw.txt"
check "chunked oversized body: 413" grep -q '^chunked: HTTP/1.1 413' "$WORK/raw.txt"
check "oversized headers: 431" grep -q '^headers: HTTP/1.1 431' "$WORK/raw.txt"
check "not HTTP: 400" grep -q '^garbage: HTTP/1.1 400' "$WORK/raw.txt"
check "slow client: 408" grep -q '^slow: HTTP/1.1 408' "$WORK/raw.txt"
worst=$(sed -n 's/^others: worst \([0-9.]*\) s/\1/p' "$WORK/raw.txt")
check "others served during the slow client (worst ${worst}s < 0.2 s)" \
    python3 -c "import sys; sys.exit(0 if float('$worst') < 0.2 else 1)"
check "connections past the limit: 503" grep -q '^excess: HTTP/1.1 503' "$WORK/raw.txt"
check "still serving afterwards" matches '^200 ' api GET /health '' noauth
register w1 >/dev/null
check "and still placing" matches '^200 .*"worker"' api POST /api/v1/placements '{"job":"after"}'
check "dispatcher process alive" kill -0 "$DISP_PID"
finish
