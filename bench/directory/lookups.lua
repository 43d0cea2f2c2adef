-- wrk script for bench/directory/run.sh: mod_xml_curl lookups as FreeSWITCH sends them.
-- Half `sip_auth` for a random device, half `user_call` for a random Extension, each body the
-- captured request with the user and domain swapped in (BENCH_DATA names the templates the
-- runner wrote, BENCH_USERS the "kind user domain" lines). Prints one RESULT line when done (see ../xmlcurl.lua).
local data = dofile(os.getenv("BENCH_DATA"))
-- The shared part, beside this folder.
local xmlcurl = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "../xmlcurl.lua")
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

-- Random users, half each kind.
xmlcurl.serve(function(i)
  if i % 2 == 0 and #devices > 0 then
    local u = devices[math.random(#devices)]
    return body(data.sip_auth, u[2], u[3])
  end
  local u = extensions[math.random(#extensions)]
  return body(data.user_call, u[2], u[3])
end)
