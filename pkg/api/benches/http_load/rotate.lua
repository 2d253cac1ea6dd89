-- wrk script for benches/http_load.rs: rotates over the request paths in the file given after
-- `--` (one per line) and prints one machine-readable summary line (latencies in microseconds).
-- An optional second argument paces each wrk thread at that many requests per second: requests
-- follow a fixed schedule (a request waits for its slot and for a free connection), so the
-- latency is measured at a known offered load instead of at saturation.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } astrolabe_timespec;
int clock_gettime(int clk, astrolabe_timespec *tp);
]]
local ts = ffi.new("astrolabe_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function init(args)
  paths = {}
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  counter = (id * 7919) % #paths
  local rate = tonumber(args[2] or "0") or 0
  interval = rate > 0 and 1000 / rate or 0
  next_at = nil
end
function request()
  counter = counter % #paths + 1
  return wrk.format("GET", paths[counter])
end
function delay()
  if interval == 0 then return 0 end
  local now = now_ms()
  -- A slot more than a second in the past is dropped rather than sent in a burst.
  if next_at == nil or next_at < now - 1000 then next_at = now end
  local wait = next_at - now
  next_at = next_at + interval
  if wait <= 0 then return 0 end
  return math.floor(wait)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_SUMMARY requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(99), latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
