-- wrk script for bench/history/run.sh: one page of a random Domain's call history, filtered by
-- one of its Extensions and a 30-day time range inside the seeded 90 days:
-- `GET /api/v1/domains/{id}/calls?extension_id=…&from=…&to=…&limit=50` with the platform
-- administrator's bearer token (BENCH_TOKEN). BENCH_PAIRS holds "domain_id extension_id" lines;
-- BENCH_NOW is the seed's "now" (epoch seconds), BENCH_DAYS (90) the days seeded before it.
--
-- Prints one line when done:
-- "RESULT <requests/s> <p50 ms> <p99 ms> <max ms> <requests> <non-2xx> <socket errors>
--  <200 answers> <empty pages> <bytes/answer>"
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
  table.insert(threads, thread)
end

local pairs_list = {}
local now, days
local headers = { ["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or ""), ["Accept"] = "application/json" }
ok, empty, bytes = 0, 0, 0

function init(args)
  math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919 + math.floor(os.clock() * 1e6))
  for line in io.lines(os.getenv("BENCH_PAIRS")) do
    local d, e = line:match("^(%S+)%s+(%S+)")
    if d then pairs_list[#pairs_list + 1] = { d, e } end
  end
  now = tonumber(os.getenv("BENCH_NOW"))
  days = tonumber(os.getenv("BENCH_DAYS") or "90")
end

local function rfc3339(t)
  -- ":" URL-encoded; "Z" needs nothing.
  return (os.date("!%Y-%m-%dT%H:%M:%SZ", t):gsub(":", "%%3A"))
end

request = function()
  local p = pairs_list[math.random(#pairs_list)]
  local from = now - days * 86400 + math.random(0, (days - 30) * 86400)
  local path = string.format("/api/v1/domains/%s/calls?extension_id=%s&from=%s&to=%s&limit=50",
    p[1], p[2], rfc3339(from), rfc3339(from + 30 * 86400))
  return wrk.format("GET", path, headers)
end

response = function(status, _, body)
  if status == 200 then
    ok = ok + 1
    bytes = bytes + #body
    if body:find('"items":[]', 1, true) then empty = empty + 1 end
  end
end

done = function(summary, latency, _)
  local o, e, b = 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + (t:get("ok") or 0)
    e = e + (t:get("empty") or 0)
    b = b + (t:get("bytes") or 0)
  end
  local seconds = summary.duration / 1e6
  local socket = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %.1f %.3f %.3f %.3f %d %d %d %d %d %d\n", summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests, summary.errors.status, socket, o, e, o > 0 and math.floor(b / o) or 0))
end
