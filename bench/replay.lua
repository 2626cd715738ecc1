-- wrk script: replays a list of URL paths exactly once over all connections, then ends the run.
--
-- usage: wrk -cC -tT -d600s --timeout 60s -s bench/replay.lua http://HOST:PORT -- URLS DONE_DIR
--         where DONE_DIR/threads holds "T C" (T = C for exact latencies: see below)
--
-- Thread i (of N) takes lines i+1, i+1+N, i+1+2N, ... of URLS, so the threads walk the list
-- side by side in its order. Exactly once: wrk asks delay() before each request; it answers 0
-- while the thread still has URLs to hand out and an hour once they are all handed out, so a
-- connection that finishes early idles instead of sending a request outside the list. When
-- every response of its share is in, a thread records its times and stops; the last one sends
-- wrk SIGINT, since wrk's main thread otherwise sleeps the whole -d duration whatever its
-- threads do. (A request lost to a socket error is never retried, so its thread never
-- finishes and the run ends at -d: the summary then shows fewer responses than URLs.)
--
-- Wall time is measured here with CLOCK_MONOTONIC, from the first request any thread sends to
-- the last response any thread receives, not by wrk (whose clock includes start-up and the
-- stop). Latency is measured here too, from request() to response(), which pairs up only
-- with one connection per thread. wrk's own histogram is no use for this: wrk 4.1 "corrects"
-- it for coordinated omission (stats_correct) before done() sees it, adding a synthetic sample
-- every mean-latency step below each slow one, so on a 0.3 s pass a single 100 ms stall
-- becomes a p99 of 100 ms; a closed-loop replay of a fixed list coordinates nothing.
-- Percentiles are nearest-rank over every answered request. done() prints one line:
--   RESULT urls=N responses=N errors=N wall_s=S p50_ms=X p99_ms=X kib_per_tile=X codes=200:N,...
--          socket=c/r/w/t      (errors: non-200 responses and URLs never answered;
--          kib_per_tile: bytes read, headers included, per response)

local ffi = require("ffi")
ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } gt_timespec;
    int clock_gettime(int clk_id, gt_timespec *tp);
    int getpid(void);
    int kill(int pid, int sig);
]]
local function now()
    local ts = ffi.new("gt_timespec")
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local function read_lines(path)
    local lines = {}
    for line in io.lines(path) do
        if line ~= "" then lines[#lines + 1] = line end
    end
    return lines
end

-- Main state: hands every thread its index.
local threads = {}
local next_id = 0
function setup(thread)
    thread:set("tid", next_id)
    next_id = next_id + 1
    threads[#threads + 1] = thread
end

-- Thread state.
local urls, share, handed, reserved, received
local codes = {}
-- Globals, so that done() can read them with thread:get().
total, t_first, t_last, codes_str, finished, extra = 0, nil, nil, "", false, 0
t_sent, lat = nil, {}

function init(args)
    urls = read_lines(args[1])
    done_dir = args[2]
    total = #urls
    -- Our share: lines tid+1, tid+1+T, ... (T comes from the done dir's "threads" file).
    local f = io.open(done_dir .. "/threads", "r")
    nthreads = tonumber(f:read("*n"))
    connections = tonumber(f:read("*n")) or nthreads
    f:close()
    share = {}
    for i = tid + 1, total, nthreads do share[#share + 1] = urls[i] end
    handed, reserved, received = 0, 0, 0
    if #share == 0 then finish() end
end

function delay()
    if reserved < #share then
        reserved = reserved + 1
        return 0
    end
    return 3600 * 1000
end

function request()
    if reserved == 0 then
        -- wrk calls request() once on thread 0 before the run, to count pipelined requests
        -- (script_verify_request); that request is never sent, so it must not use up a URL.
        return wrk.format("GET", share[1] or "/")
    end
    handed = handed + 1
    t_sent = now()
    if t_first == nil then t_first = t_sent end
    local path = share[handed]
    if path == nil then
        -- After a socket error wrk reconnects and sends a new request without asking delay(),
        -- so the list can run out one request early: the URL in flight was lost (wrk counts a
        -- socket error). Send something recognisable, and do not count its answer as a tile.
        extra = extra + 1
        path = "/replay.lua-ran-out-of-urls"
    end
    return wrk.format("GET", path)
end

function finish()
    finished = true
    local f = io.open(done_dir .. "/done." .. tid, "w")
    f:write(string.format("%.6f %.6f\n", t_first or 0, t_last or 0))
    f:close()
    -- The last thread to finish ends the run.
    local all = true
    for i = 0, nthreads - 1 do
        local g = io.open(done_dir .. "/done." .. i, "r")
        if g == nil then all = false else g:close() end
    end
    wrk.thread:stop()
    if all then ffi.C.kill(ffi.C.getpid(), 2) end
end

function response(status, headers, body)
    received = received + 1
    t_last = now()
    -- With one connection per thread, this response answers the last request() of the thread.
    if t_sent and connections == nthreads then lat[#lat + 1] = (t_last - t_sent) * 1000 end
    codes[status] = (codes[status] or 0) + 1
    -- thread:get() reads plain values best: keep the codes flattened ("200:17,404:1").
    local parts = {}
    for code, n in pairs(codes) do parts[#parts + 1] = code .. ":" .. n end
    codes_str = table.concat(parts, ",")
    if received >= #share and not finished then finish() end
end

function done(summary, latency, requests)
    local first, last, responses, errors, extras = nil, nil, 0, 0, 0
    local lats = {}
    local merged = {}
    local urls_n = 0
    for _, t in ipairs(threads) do
        local tf, tl = t:get("t_first"), t:get("t_last")
        if tf and (first == nil or tf < first) then first = tf end
        if tl and (last == nil or tl > last) then last = tl end
        local s = t:get("codes_str") or ""
        for code, n in string.gmatch(s, "(%d+):(%d+)") do
            merged[code] = (merged[code] or 0) + tonumber(n)
            responses = responses + tonumber(n)
            if code ~= "200" then errors = errors + tonumber(n) end
        end
        urls_n = t:get("total") or urls_n
        extras = extras + (t:get("extra") or 0)
        for _, v in ipairs(t:get("lat") or {}) do lats[#lats + 1] = v end
    end
    table.sort(lats)
    local source = "replay"
    local function percentile(q)
        if #lats == 0 then
            source = "wrk" -- several connections per thread: only wrk's (corrected) histogram
            return latency:percentile(q * 100) / 1000
        end
        return lats[math.max(1, math.ceil(q * #lats))]
    end
    -- Answers to requests outside the list (above) are neither tiles nor errors of the server.
    responses = responses - extras
    errors = errors - extras
    local e = summary.errors
    local socket = e.connect + e.read + e.write + e.timeout
    local missing = urls_n - responses
    local parts = {}
    for code, n in pairs(merged) do parts[#parts + 1] = code .. ":" .. n end
    table.sort(parts)
    local p50, p99 = percentile(0.50), percentile(0.99)
    io.write(string.format(
        "RESULT urls=%d responses=%d errors=%d wall_s=%.3f p50_ms=%.2f p99_ms=%.2f kib_per_tile=%.1f codes=%s socket=%d/%d/%d/%d latency_from=%s\n",
        urls_n, responses, errors + math.max(missing, 0), (last or 0) - (first or 0),
        p50, p99,
        summary.bytes / math.max(responses, 1) / 1024,
        table.concat(parts, ","), e.connect, e.read, e.write, e.timeout, source))
end
