-- wrk script for bench/directory/run.sh: mod_xml_curl lookups as FreeSWITCH sends them.
-- Half `sip_auth` for a random device, half `user_call` for a random Extension, each body the
-- captured request with the user and domain swapped in (BENCH_DATA names the templates the
-- runner wrote, BENCH_USERS the "kind user domain" lines; BENCH_AUTH is the basic-auth header). Prints one RESULT line when done.
local data = dofile(os.getenv("BENCH_DATA"))
local auth = os.getenv("BENCH_AUTH")
local devices, extensions = {}, {}
for line in io.lines(os.getenv("BENCH_USERS")) do
  local kind, user, domain = line:match("^(%S+) (%S+) (%S+)$")
  if kind == "sip_auth" then
    devices[#devices + 1] = { kind, user, domain }
  elseif kind == "user_call" then
    extensions[#extensions + 1] = { kind, user, domain }
  end
end

local function body(template, user, domain)
  return (template:gsub("@USER@", user):gsub("@DOMAIN@", domain))
end

local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["User-Agent"] = "freeswitch-xml/1.0",
  ["Authorization"] = auth,
}

-- Requests are built once, before the run (random users, half each kind), and sent in turn:
-- building a 1-6 KiB body per request in Lua would make wrk itself, which shares the machine's
-- cores with the server, the bottleneck.
local prebuilt = {}
local count = tonumber(os.getenv("BENCH_REQUESTS") or "20000")

-- In init, not at load: wrk.format fills in Host only once wrk knows the target.
init = function(args)
  for i = 1, count do
    local u, template
    if i % 2 == 0 and #devices > 0 then
      u = devices[math.random(#devices)]
      template = data.sip_auth
    else
      u = extensions[math.random(#extensions)]
      template = data.user_call
    end
    prebuilt[i] = wrk.format("POST", nil, headers, body(template, u[2], u[3]))
  end
end

local n = 0
request = function()
  n = n + 1
  return prebuilt[(n % count) + 1]
end

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local non2xx = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %.1f %.3f %.3f %d\n", summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, non2xx))
end
