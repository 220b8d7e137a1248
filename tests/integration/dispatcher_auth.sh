#!/bin/sh
# dispatcher_auth.sh — the token guards what it must, and start-up refuses bad settings.
. "$(dirname -- "$0")/dispatcher_lib.sh"

# Start-up validation: exit 78 with one clear line, before listening.
run_cfg() {
	env -u CLUSTERPLEX_TOKEN -u CLUSTERPLEX_TRUSTED_NETWORK LISTENING_PORT=$DISP_PORT \
	    CLUSTERPLEX_LISTEN_ADDRESS=127.0.0.1 "$@" timeout 5 "$DISP_BIN" \
	    >"$WORK/cfg.log" 2>&1
}
run_cfg WORKER_SELECTION_STRATEGY=LOAD_RANK
check "no token, no trusted network: exit 78" [ $? = 78 ]
check "... naming CLUSTERPLEX_TRUSTED_NETWORK" grep -q CLUSTERPLEX_TRUSTED_NETWORK "$WORK/cfg.log"
run_cfg CLUSTERPLEX_TOKEN=$TOKEN WORKER_SELECTION_STRATEGY=FASTEST
check "unknown strategy: exit 78" [ $? = 78 ]
check "... listing the valid ones" grep -q "RR, LOAD_CPU, LOAD_TASKS, LOAD_RANK" "$WORK/cfg.log"
run_cfg CLUSTERPLEX_TOKEN=$TOKEN LISTENING_PORT=99999
check "port out of range: exit 78" [ $? = 78 ]

# Quoted strategy (ClusterPlex crashed on it) is accepted.
start_dispatcher WORKER_SELECTION_STRATEGY='"LOAD_TASKS"' || exit 1
curl -fsS -m 2 "$DISP_URL/health" >"$WORK/body"
check "quoted strategy accepted" [ "$(json "j['strategy']")" = LOAD_TASKS ]

for route in "POST /api/v1/workers" "PUT /api/v1/workers/w1/heartbeat" \
    "DELETE /api/v1/workers/w1" "POST /api/v1/workers/w1/drain" \
    "POST /api/v1/placements" "POST /api/v1/jobs/j1/end"; do
	set -- $route
	check "$route without token: 401" [ "$(status "$1" "$2" '{}' noauth)" = 401 ]
	check "$route with a wrong token: 401" [ "$(status "$1" "$2" '{}' not-the-token)" = 401 ]
done
code=$(curl -sS -m 2 -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Basic $TOKEN" \
    -d '{}' "$DISP_URL/api/v1/placements")
check "a non-Bearer scheme: 401" [ "$code" = 401 ]
check "401 carries WWW-Authenticate" matches 'WWW-Authenticate: Bearer' \
    curl -sS -m 2 -D - -o /dev/null -X POST "$DISP_URL/api/v1/placements"
check "with the token: registration 201" [ "$(register w1 | cut -d' ' -f1)" = 201 ]
for path in /health /metrics /api/v1/workers /api/v1/jobs /; do
	curl -sS -m 2 -o "$WORK/open" -w '%{http_code}' "$DISP_URL$path" >"$WORK/code"
	check "GET $path open (200)" [ "$(cat "$WORK/code")" = 200 ]
	check "GET $path shows no token" sh -c "! grep -q '$TOKEN' '$WORK/open'"
done
check "the token never reaches the log" sh -c "! grep -q '$TOKEN' '$WORK/dispatcher.log'"
stop_dispatcher

# A trusted network runs without a token, with a warning.
: >"$WORK/dispatcher.log"
env -u CLUSTERPLEX_TOKEN CLUSTERPLEX_TRUSTED_NETWORK=true LISTENING_PORT=$DISP_PORT \
    CLUSTERPLEX_LISTEN_ADDRESS=127.0.0.1 "$DISP_BIN" >>"$WORK/dispatcher.log" 2>&1 &
DISP_PID=$!
wait_for 5 curl -fsS -m 1 "$DISP_URL/health"
check "trusted network: warning logged" grep -q "warn.*CLUSTERPLEX_TOKEN is not set" "$WORK/dispatcher.log"
check "trusted network: registration without token" [ "$(status POST /api/v1/workers "{\"name\":\"w2\",\"ssh\":{\"host\":\"127.0.0.1\",\"port\":22,\"user\":\"u\",\"host_key\":\"$KEY\"}}" noauth)" = 201 ]
finish
