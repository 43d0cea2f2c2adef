-- wrk script for bench/flows/run.sh: mod_xml_curl dialplan lookups of call flows as FreeSWITCH
-- sends them. The kinds of BENCH_KINDS in turn (default: group condition ivr key), each a random
-- line of that kind from BENCH_CALLS ("kind domain user value dest [expect]", see run.sh) put
-- into its template from BENCH_DATA (the captured request with placeholders). BENCH_AUTH is the
-- basic-auth header. Prints one RESULT line when done.
local data = dofile(os.getenv("BENCH_DATA"))
-- The shared part, beside this folder.
local xmlcurl = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "../xmlcurl.lua")
-- internal: a phone dials an Extension; group: a phone dials a ring group's number; condition,
-- ivr, key: the lookups after switchboard's transfer of a carrier's call (entering a time
-- condition, entering an IVR menu, the menu's key 1); inbound: the carrier's call itself.
local template = {
  internal = "phone", group = "phone",
  condition = "transfer", ivr = "transfer", key = "transfer",
  inbound = "carrier",
}
local kinds = {}
for k in (os.getenv("BENCH_KINDS") or "group condition ivr key"):gmatch("%S+") do
  kinds[#kinds + 1] = k
end
local calls = {}
for k in pairs(template) do calls[k] = {} end
for line in io.lines(os.getenv("BENCH_CALLS")) do
  local kind, domain, user, value, dest = line:match("^(%S+) (%S+) (%S+) (%S+) (%S+)")
  if calls[kind] then
    local list = calls[kind]
    list[#list + 1] = { domain, user, value, dest }
  end
end
for _, k in ipairs(kinds) do
  assert(calls[k] and #calls[k] > 0, "no lookups of kind " .. k)
end

-- "+" and "@" url-encoded, as FreeSWITCH sends them.
local function encode(s)
  return (s:gsub("%+", "%%2B"):gsub("@", "%%40"))
end

-- Literal replacement: a function as the replacement, so that "%" in a value is no capture.
local function body(kind, c)
  local values = { DOMAIN = c[1], USER = c[2], VALUE = encode(c[3]), DEST = encode(c[4]) }
  return (data[template[kind]]:gsub("@(%u+)@", function(name) return values[name] end))
end

xmlcurl.serve(function(i)
  local kind = kinds[(i - 1) % #kinds + 1]
  local list = calls[kind]
  return body(kind, list[math.random(#list)])
end)
