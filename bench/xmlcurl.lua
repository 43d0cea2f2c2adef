-- Shared by the wrk scripts of bench/directory and bench/dialplan: mod_xml_curl requests as
-- FreeSWITCH sends them (BENCH_AUTH is the basic-auth header), built once before the run and
-- sent in turn (building a 1-6 KiB body per request in Lua would make wrk itself, which shares
-- the machine's cores with the server, the bottleneck), and one RESULT line when done:
-- "RESULT <requests/s> <p50 ms> <p99 ms> <errors>".
local M = {}

local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["User-Agent"] = "freeswitch-xml/1.0",
  ["Authorization"] = os.getenv("BENCH_AUTH"),
}

-- Installs wrk's init/request/done: `body_of(i)` is the body of the i-th of BENCH_REQUESTS
-- (default 20000) prebuilt requests.
function M.serve(body_of)
  local prebuilt = {}
  local count = tonumber(os.getenv("BENCH_REQUESTS") or "20000")

  -- In init, not at load: wrk.format fills in Host only once wrk knows the target.
  init = function(args)
    for i = 1, count do
      prebuilt[i] = wrk.format("POST", nil, headers, body_of(i))
    end
  end

  local n = 0
  request = function()
    n = n + 1
    return prebuilt[(n % count) + 1]
  end

  done = function(summary, latency, requests)
    local seconds = summary.duration / 1e6
    local errors = summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout
    io.write(string.format("RESULT %.1f %.3f %.3f %d\n", summary.requests / seconds,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
  end
end

return M
