-- wrk script for bench/provision/run.sh: a boot storm. Every request is the next phone of
-- BENCH_PHONES ("<path> <Authorization value>" per line, one line per phone) fetching its own
-- file with its own credential (HTTP basic), with a Yealink's User-Agent. The requests are
-- built once in `init` (building them per request in Lua would make wrk, which shares the
-- machine's cores with the server, the bottleneck) and sent in turn. Prints one RESULT line
-- when done, as ../xmlcurl.lua does: "RESULT <requests/s> <p50 ms> <p99 ms> <errors>".
--
-- BENCH_MODE:
--   storm (default)  every thread sends all the phones in turn, starting at its own offset
--                    (thread k of n at phone k/n of the list), round and round until wrk's -d.
--   cold             the first pass: thread k of n (BENCH_THREADS) fetches the phones k, k+n,
--                    k+2n… once each, in order, and its connections then wait (see `delay`);
--                    once every phone of its share has been answered 200 (told apart by the
--                    `## switchboard: <model> <mac>` line the files begin with), it writes the
--                    time to BENCH_COLD_DIR/done.<k> and stops (BENCH_COLD_DIR/start.<k>: when
--                    its first request left). run.sh then ends wrk's run with SIGINT (not from
--                    here: a thread of wrk's own may take the signal, and wrk's sleep goes on).
--                    A phone answered other than 200 is not asked again: the run then lasts -d
--                    and the pass is incomplete.
local mode = os.getenv("BENCH_MODE") or "storm"
local threads = tonumber(os.getenv("BENCH_THREADS") or "2")
local cold_dir = os.getenv("BENCH_COLD_DIR") or "."
local agent = "Yealink SIP-T54W 96.86.0.100 00:15:65:00:00:00"

local phones = {}
for line in io.lines(os.getenv("BENCH_PHONES")) do
  local path, auth = line:match("^(%S+)%s+(.+)$")
  if path then
    phones[#phones + 1] = { path, auth }
  end
end

-- Thread numbers, 0…n-1 (`setup` runs in wrk's main Lua state, once per thread).
local created = 0
function setup(thread)
  thread:set("thread_number", created)
  created = created + 1
end

local function now()
  local p = io.popen("date +%s.%N")
  local t = p:read("*l")
  p:close()
  return t
end

local function write(file, text)
  local f = assert(io.open(file, "w"))
  f:write(text, "\n")
  f:close()
end

local prebuilt = {}
local n = 0
local me = 0

init = function(args)
  me = thread_number or 0
  for i = 1, #phones do
    if mode ~= "cold" or (i - 1) % threads == me then
      prebuilt[#prebuilt + 1] = wrk.format("GET", phones[i][1],
        { ["Authorization"] = phones[i][2], ["User-Agent"] = agent }, nil)
    end
  end
  if mode ~= "cold" then
    n = math.floor(#prebuilt * me / threads)
  end
end

if mode ~= "cold" then
  request = function()
    n = n + 1
    return prebuilt[(n - 1) % #prebuilt + 1]
  end
else
  local seen, count, finished, allowed = {}, 0, false, 0

  -- wrk asks `delay` before every request it sends (the wait is not part of any latency), but
  -- not before the one request it builds to check the script (thread 0, before the run). So a
  -- request is a phone only when `delay` allowed one more; once the share is allowed, the
  -- connections wait: every phone of the share is sent exactly once.
  delay = function()
    if allowed >= #prebuilt then
      return 600000
    end
    allowed = allowed + 1
    return 0
  end

  request = function()
    if n >= allowed then
      return prebuilt[1] -- wrk's check, not sent
    end
    if n == 0 then
      write(cold_dir .. "/start." .. me, now())
    end
    n = n + 1
    return prebuilt[n]
  end

  local function finish()
    finished = true
    write(cold_dir .. "/done." .. me, now())
    wrk.thread:stop()
  end

  response = function(status, headers, body)
    if finished or status ~= 200 then
      return
    end
    local phone = body:match("## switchboard: %S+ (%S+)") or body
    if not seen[phone] then
      seen[phone] = true
      count = count + 1
      if count == #prebuilt then
        finish()
      end
    end
  end
end

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %.1f %.3f %.3f %d\n", summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
