-- wrk script for bench/history/run.sh: CDRs as FreeSWITCH's mod_json_cdr posts them
-- (`POST /freeswitch/cdr?uuid=<leg uuid>`, the JSON CDR as the body, basic auth BENCH_AUTH).
--
-- Requests alternate per wrk thread: a call's first leg (uuid = call_uuid, fresh), then its
-- bridged second leg (a fresh uuid, call_uuid and originating_leg_uuid = the first leg's), so
-- that every call is summarised from two legs. The bodies come from the templates BENCH_LEG_A
-- and BENCH_LEG_B (a captured channel's ~170 variables, see run.sh) with @NAME@ placeholders,
-- split once at init; a request only joins the parts. The Domain is a random line of
-- BENCH_DOMAINS (Domain ids that exist); Extensions and Devices are random ids of a pool per
-- Domain (the history names them without foreign keys).
--
-- Prints one line when done:
-- "RESULT <requests/s> <p50 ms> <p99 ms> <max ms> <requests> <non-2xx> <socket errors>
--  <stored> <duplicate> <503>"
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
  table.insert(threads, thread)
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- The template as a list of literal parts and placeholder names, in order.
local function split(template)
  local parts = {}
  local pos = 1
  while true do
    local s, e, name = template:find("@(%u+)@", pos)
    if not s then break end
    parts[#parts + 1] = template:sub(pos, s - 1)
    parts[#parts + 1] = { name }
    pos = e + 1
  end
  parts[#parts + 1] = template:sub(pos)
  return parts
end

local function fill(parts, values)
  local out = {}
  for i = 1, #parts do
    local p = parts[i]
    if type(p) == "table" then out[i] = values[p[1]] else out[i] = p end
  end
  return table.concat(out)
end

local r = math.random
local function uuid4()
  return string.format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x", r(0, 0xffff), r(0, 0xffff),
    r(0, 0xffff), r(0, 0xfff), 0x8000 + r(0, 0x3fff), r(0, 0xffff), r(0, 0xffff), r(0, 0xffff))
end

local leg_a, leg_b, domains, pools
local headers = {
  ["Content-Type"] = "application/json",
  ["User-Agent"] = "freeswitch-json/1.0",
  ["Authorization"] = os.getenv("BENCH_AUTH"),
}
stored, duplicate, unavailable, other = 0, 0, 0, 0

function init(args)
  math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919 + math.floor(os.clock() * 1e6))
  leg_a = split(read(os.getenv("BENCH_LEG_A")))
  leg_b = split(read(os.getenv("BENCH_LEG_B")))
  domains, pools = {}, {}
  for line in io.lines(os.getenv("BENCH_DOMAINS")) do
    if line:match("%S") then
      domains[#domains + 1] = line:match("%S+")
      local pool = {}
      for i = 1, 20 do pool[i] = { ext = uuid4(), dev = uuid4(), number = tostring(199 + i) } end
      pools[#pools + 1] = pool
    end
  end
end

local pending = nil -- the first leg whose second leg goes next

request = function()
  local v
  if pending == nil then
    local d = r(#domains)
    local pool = pools[d]
    local caller = pool[r(#pool)]
    local callee = pool[r(#pool)]
    -- A call of 5–120 s that started up to a minute ago, answered after 2 s.
    local now_us = math.floor(os.time() * 1e6)
    local start = now_us - r(5, 180) * 1000000 - r(0, 999999)
    local answer = start + 2000000 + r(0, 999999)
    local finish = answer + r(3, 118) * 1000000
    v = {
      UUID = uuid4(), DOMAIN = domains[d], EXT = caller.ext, EXTNUM = caller.number,
      DEV = caller.dev, CEXT = callee.ext, CEXTNUM = callee.number, CDEV = callee.dev,
      START = string.format("%d", start), ANSWER = string.format("%d", answer),
      END = string.format("%d", finish), BILLSEC = tostring(math.floor((finish - answer) / 1e6)),
      PROFILE = string.format("%d", start),
    }
    v.CALL = v.UUID
    pending = v
    return wrk.format("POST", "/freeswitch/cdr?uuid=" .. v.UUID, headers, fill(leg_a, v))
  end
  -- The bridged leg: created 20 ms after the first, answered at the same time, the callee's
  -- phone.
  local a = pending
  pending = nil
  v = {}
  for k, x in pairs(a) do v[k] = x end
  v.UUID = uuid4()
  v.CALL = a.UUID
  v.ORIG = a.UUID
  v.START = string.format("%d", tonumber(a.START) + 20000)
  v.PROFILE = v.START
  return wrk.format("POST", "/freeswitch/cdr?uuid=" .. v.UUID, headers, fill(leg_b, v))
end

response = function(status, _, body)
  if status == 200 then
    if body and body:find("duplicate", 1, true) then duplicate = duplicate + 1 else stored = stored + 1 end
  elseif status == 503 then
    unavailable = unavailable + 1
  else
    other = other + 1
  end
end

done = function(summary, latency, _)
  local s, d, u = 0, 0, 0
  for _, t in ipairs(threads) do
    s = s + (t:get("stored") or 0)
    d = d + (t:get("duplicate") or 0)
    u = u + (t:get("unavailable") or 0)
  end
  local seconds = summary.duration / 1e6
  local socket = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %.1f %.3f %.3f %.3f %d %d %d %d %d %d\n", summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests, summary.errors.status, socket, s, d, u))
end
