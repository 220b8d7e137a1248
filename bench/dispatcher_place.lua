-- dispatcher_place.lua — wrk script for bench/dispatcher.sh: one placement per
-- request, each with a job id of its own, over keep-alive connections.
-- BENCH_PATH=/health turns it into the baseline (plain GETs).
-- BENCH_DELAY_MS paces each connection (for the latency-at-a-rate run).

local token = os.getenv("BENCH_TOKEN") or ""
local prefix = os.getenv("BENCH_PREFIX") or "bench"
local path = os.getenv("BENCH_PATH") or "/api/v1/placements"
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local n = 0

wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"

request = function()
	if path ~= "/api/v1/placements" then
		return wrk.format("GET", path)
	end
	n = n + 1
	return wrk.format("POST", path, nil,
	    string.format('{"job":"%s-%d","session":"s-%d"}', prefix, n, n))
end

if pause > 0 then
	delay = function()
		return pause
	end
end

done = function(summary, latency, requests)
	local secs = summary.duration / 1e6
	local e = summary.errors
	io.write(string.format("RESULT requests=%d rps=%.1f p50_us=%d p99_us=%d " ..
	    "max_us=%d non2xx=%d errors=%d\n", summary.requests,
	    summary.requests / secs, latency:percentile(50),
	    latency:percentile(99), latency.max, e.status,
	    e.connect + e.read + e.write + e.timeout))
end
