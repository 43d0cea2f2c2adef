# shellcheck shell=bash
# Shared by the benchmark scripts (source it): start and stop a switchboard server of our own,
# seed it through the API, a PostgreSQL database of the run's own, nginx and wrk, the packaged
# FreeSWITCH on loopback, static XML built from switchboard's own answers, and bench_cleanup
# (the EXIT trap that stops everything the script started).
#
# The caller sets ROOT (the repository), WORK (a scratch folder), ADMIN_EMAIL, ADMIN_PASSWORD and
# KEY_FILE (the SIP-secret key file; keep it with a database you reuse), and calls find_binary.

# find_binary: BIN = $SWITCHBOARD_BIN, else the release binary, built now (in $CARGO_TARGET_DIR
# when set).
find_binary() {
    if [ -n "${SWITCHBOARD_BIN:-}" ]; then
        BIN=$SWITCHBOARD_BIN
    else
        echo "building the release binary (cargo build --release -p switchboard-api)…" >&2
        (cd "$ROOT" && cargo build --release -q -p switchboard-api --bin switchboard)
        BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/switchboard
    fi
}

# start_server DATABASE_URL [NAME=VALUE ...]: starts `serve` on a free port with only the given
# environment (nothing of the caller's SWITCHBOARD_* leaks in), waits for its port, logs in as
# the administrator. Sets SERVER_PID, BASE (http://127.0.0.1:PORT) and TOKEN; the log is
# $WORK/server.log.
start_server() {
    local url=$1
    shift
    local log=$WORK/server.log
    : >"$log"
    env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
        SWITCHBOARD_DATABASE_URL="$url" \
        SWITCHBOARD_HTTP__PORT=0 \
        SWITCHBOARD_LOG__LEVEL=info \
        SWITCHBOARD_SECRETS__KEY_FILE="$KEY_FILE" \
        SWITCHBOARD_AUTH__ACCESS_TOKEN_TTL_SECS=86400 \
        SWITCHBOARD_BOOTSTRAP__ADMIN_EMAIL="$ADMIN_EMAIL" \
        SWITCHBOARD_BOOTSTRAP__ADMIN_PASSWORD="$ADMIN_PASSWORD" \
        "$@" \
        "$BIN" serve >"$log" 2>&1 &
    SERVER_PID=$!
    local port=""
    for _ in $(seq 1 600); do
        port=$(grep -oE 'port=[0-9]+' "$log" | head -1 | cut -d= -f2 || true)
        [ -n "$port" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; echo "the server did not start" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$log" >&2; echo "the server did not report its port" >&2; exit 1; }
    BASE=http://127.0.0.1:$port
    TOKEN=$(curl -sf -H 'content-type: application/json' \
        -d "{\"email\": \"$ADMIN_EMAIL\", \"password\": \"$ADMIN_PASSWORD\"}" \
        "$BASE/api/v1/auth/login" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
}

# stop_server: stops it (SIGTERM: a graceful shutdown) and waits.
stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# api PATH → the JSON of a GET with the administrator's token.
api() {
    curl -sf -H "authorization: Bearer $TOKEN" "$BASE$1"
}

# api_send METHOD PATH JSON → the JSON answer; fails (exit) on anything but 200/201.
api_send() {
    local status
    status=$(curl -s -o "$WORK/api-answer.json" -w '%{http_code}' -X "$1" \
        -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
        --data-binary "$3" "$BASE$2")
    case $status in
        200 | 201) cat "$WORK/api-answer.json" ;;
        *) echo "$1 $2 answered $status:" >&2; head -c 2000 "$WORK/api-answer.json" >&2; echo >&2; exit 1 ;;
    esac
}

# create_domain NAME SIP_DOMAIN → the new Domain's id.
create_domain() {
    api_send POST /api/v1/domains "{\"name\": \"$1\", \"sip_domain\": \"$2\"}" \
        | sed -E 's/.*"id":"([^"]+)".*/\1/'
}

# import_rows DOMAIN_ID FILE: a bulk import (`POST …/import`) that must answer 201.
import_rows() {
    local out
    out=$(curl -s -o "$WORK/import-answer.json" -w '%{http_code}' \
        -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
        --data-binary "@$2" "$BASE/api/v1/domains/$1/import")
    [ "$out" = 201 ] || { echo "import into $1 answered $out:" >&2; head -c 2000 "$WORK/import-answer.json" >&2; exit 1; }
}

# extension_rows DOMAIN_NUMBER COUNT [EXTRA_JSON]: import rows of COUNT Extensions (1000…),
# each owning a fixed Device ("Desk <i>"); EXTRA_JSON (e.g. `, "dnd": false`) is added to every
# Extension, with @SEQ@ in it replaced by DOMAIN_NUMBER * 1000 + i on six digits.
extension_rows() {
    awk -v n="$2" -v d="$1" -v extra="${3:-}" 'BEGIN {
        printf "{\"extensions\": ["
        for (i = 0; i < n; i++) {
            e = extra
            gsub(/@SEQ@/, sprintf("%06d", d * 1000 + i), e)
            printf "%s{\"number\": \"%d\", \"display_name\": \"Person %d-%d\"%s}", (i ? "," : ""), 1000 + i, d, i, e
        }
        printf "], \"devices\": ["
        for (i = 0; i < n; i++)
            printf "%s{\"label\": \"Desk %d\", \"mode\": \"fixed\", \"owner_extension\": \"%d\"}", (i ? "," : ""), i, 1000 + i
        print "]}"
    }'
}

# device_credentials DOMAIN_ID → "sip_username;realm;sip_secret;" per Device of the Domain
# (one curl, one connection, for every secret), in the order of $WORK/devices.txt, which it
# writes: "id<TAB>label" per Device.
device_credentials() {
    local cursor="" page
    : >"$WORK/devices.txt"
    while :; do
        page=$(api "/api/v1/domains/$1/devices?limit=500${cursor:+&cursor=$cursor}")
        jq -r '.items[] | "\(.id)\t\(.label)"' <<<"$page" >>"$WORK/devices.txt"
        cursor=$(jq -r '.next_cursor // empty' <<<"$page")
        [ -n "$cursor" ] || break
    done
    cut -f1 "$WORK/devices.txt" | sed "s#^#$BASE/api/v1/domains/$1/devices/#; s#\$#/sip-secret#" \
        | xargs curl -sf -H "authorization: Bearer $TOKEN" \
        | jq -r '"\(.sip_username);\(.realm);\(.sip_secret);"'
}

# --- PostgreSQL ----------------------------------------------------------------------------

PG_URL=${PG_URL:-${BENCH_POSTGRES_URL:-${SWITCHBOARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}}}
PG_DB=""

# postgres_ready: whether psql is there and something answers at PG_URL.
postgres_ready() {
    command -v psql >/dev/null && psql -q "$PG_URL" -c 'select 1' >/dev/null 2>&1
}

# create_pg_database NAME: a new database beside PG_URL's; sets PG_DB (for drop_pg_database and
# bench_cleanup) and PG_DB_URL.
create_pg_database() {
    PG_DB=$1
    psql -q "$PG_URL" -c "CREATE DATABASE \"$PG_DB\"" >/dev/null
    PG_DB_URL=$(sed -E "s#^(postgres(ql)?://[^/]+)(/[^?]*)?#\\1/$PG_DB#" <<<"$PG_URL")
}

drop_pg_database() {
    if [ -n "$PG_DB" ]; then psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 || true; fi
    PG_DB=""
}

# --- processes and ports -------------------------------------------------------------------

# stop_pid PID: SIGTERM, then wait for it.
stop_pid() {
    if [ -n "${1:-}" ]; then kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi
}

# bench_cleanup: the EXIT trap of every script: sipp, FreeSWITCH, nginx and the server (those
# it started), the PostgreSQL database, the logs kept in BENCH_LOG_DIR, the scratch folder.
bench_cleanup() {
    stop_pid "${SIPP_PID:-}"
    stop_pid "${UAS_PID:-}"
    if [ -n "${FS_PID:-}" ]; then kill "$FS_PID" 2>/dev/null || true; sleep 1; kill -9 "$FS_PID" 2>/dev/null || true; wait "$FS_PID" 2>/dev/null || true; fi
    stop_pid "${NGINX_PID:-}"
    stop_pid "${SERVER_PID:-}"
    drop_pg_database
    if [ -n "${BENCH_LOG_DIR:-}" ] && [ -d "$WORK/logs" ]; then
        mkdir -p "$BENCH_LOG_DIR"
        cp -r "$WORK"/logs/. "$BENCH_LOG_DIR"/ 2>/dev/null || true
    fi
    rm -rf "$WORK"
}

# free_port: a port of 127.0.0.1 free for TCP and UDP (SIP listens on both), never one this run
# handed out already.
USED_PORTS=" "
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 30000))
        case $USED_PORTS in *" $port "*) continue ;; esac
        if ! ss -Htuan "( sport = :$port )" | grep -q .; then
            USED_PORTS="$USED_PORTS$port "
            echo "$port"
            return
        fi
    done
}

# machine: one line describing this machine, for the tables.
machine() {
    local cpu
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || uname -p)
    echo "$cpu, $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null) RAM, $(uname -sr)"
}

# metric_sum PREFIX [FILTER]: the sum of a metric's series on /metrics.
metric_sum() {
    curl -sf "$BASE/metrics" | awk -v p="$1{" -v f="${2:-}" 'index($0, p) == 1 && index($0, f) { s += $NF } END { printf "%d\n", s }'
}

# --- wrk and nginx -------------------------------------------------------------------------

# run_wrk LUA CONNECTIONS URL → "requests/s p50_ms p99_ms errors"; the Lua script gets
# BENCH_AUTH (the basic-auth header) and whatever the caller exported.
run_wrk() {
    (cd "$WORK" && BENCH_AUTH="$AUTH" \
        wrk -t2 -c"$2" -d"${DURATION}s" --timeout 5s -s "$1" "$3/freeswitch/xml") \
        | awk '/^RESULT/ { print $2, $3, $4, $5 }'
}

# start_nginx DOCUMENT_FILE: nginx (2 workers) on 127.0.0.1:NGINX_PORT answering every request
# with the document. Sets NGINX_PID and NGINX_URL.
start_nginx() {
    NGINX_PORT=${NGINX_PORT:-18089}
    mkdir -p "$WORK/nginx"
    # The same bytes, minus the characters nginx's `return` would interpret ($) or end on (').
    local body
    body=$(tr "\$'" 'xx' <"$1")
    cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes 2;
daemon off;
user root;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            default_type text/xml;
            return 200 '$body';
        }
    }
}
CONF
    nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
    NGINX_PID=$!
    NGINX_URL=http://127.0.0.1:$NGINX_PORT
    for _ in $(seq 1 50); do
        curl -sf -o /dev/null -X POST "$NGINX_URL/freeswitch/xml" && return 0
        sleep 0.1
    done
    cat "$WORK/nginx/error.log" >&2
    echo "nginx did not start" >&2
    exit 1
}

stop_nginx() {
    stop_pid "$NGINX_PID"
    NGINX_PID=""
}

# --- FreeSWITCH ----------------------------------------------------------------------------
#
# The caller sets FS_DIR (the packaged FreeSWITCH, see fs_check), ESL_PORT, ESL_PASSWORD,
# SIP_PORT, RTP_PORT (the first of RTP_PORTS, default 100) and XML_CURL_PASSWORD, and has a
# server started (BASE). FS_LOGLEVEL (default warning) is set after start.

# fs_check: FS_DIR, made absolute (default ../shared/freeswitch beside the repository).
fs_check() {
    FS_DIR=${SWITCHBOARD_FREESWITCH_DIR:-$ROOT/../shared/freeswitch}
    [ -x "$FS_DIR/bin/freeswitch" ] || { echo "FreeSWITCH is missing at $FS_DIR (set SWITCHBOARD_FREESWITCH_DIR; see /work/shared/freeswitch/README.md)" >&2; exit 2; }
    FS_DIR=$(cd "$FS_DIR" && pwd)
}

fs_cli() {
    LD_LIBRARY_PATH=$FS_DIR/lib "$FS_DIR/bin/fs_cli" -H 127.0.0.1 -P "$ESL_PORT" -p "$ESL_PASSWORD" -x "$1"
}

fs_version() {
    LD_LIBRARY_PATH=$FS_DIR/lib "$FS_DIR/bin/freeswitch" -version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1
}

set_var() { # FILE NAME VALUE
    sed -i -E "s#data=\"$2=[^\"]*\"#data=\"$2=$3\"#" "$1"
    grep -q "data=\"$2=$3\"" "$1" || { echo "vars.xml does not set $2" >&2; exit 1; }
}

# fs_prepare NAME: $WORK/fs-NAME (FS_RUN) with a copy of the shipped freeswitch/conf, vars.xml
# set for this run. The caller may edit $FS_RUN/conf before fs_launch.
fs_prepare() {
    local sub
    FS_RUN=$WORK/fs-$1
    rm -rf "$FS_RUN"
    mkdir -p "$FS_RUN"
    cp -r "$ROOT/freeswitch/conf" "$FS_RUN/conf"
    local vars=$FS_RUN/conf/vars.xml
    set_var "$vars" switchboard_xml_curl_url "$BASE/freeswitch/xml"
    set_var "$vars" switchboard_xml_curl_credentials "freeswitch:$XML_CURL_PASSWORD"
    set_var "$vars" event_socket_port "$ESL_PORT"
    set_var "$vars" event_socket_password "$ESL_PASSWORD"
    set_var "$vars" sip_port "$SIP_PORT"
    set_var "$vars" rtp_start_port "$RTP_PORT"
    set_var "$vars" rtp_end_port "$((RTP_PORT + ${RTP_PORTS:-100} - 1))"
    set_var "$vars" console_loglevel err
    for sub in log db run temp storage recordings sounds cache certs scripts; do mkdir -p "$FS_RUN/$sub"; done
}

# fs_unbind_directory: the prepared FreeSWITCH asks mod_xml_curl for the dialplan only.
fs_unbind_directory() {
    local conf=$FS_RUN/conf/autoload_configs/xml_curl.conf.xml
    sed -i 's/bindings="directory|dialplan"/bindings="dialplan"/' "$conf"
    grep -q 'bindings="dialplan"' "$conf" || { echo "could not unbind the directory" >&2; exit 1; }
}

# fs_unbind_all: the prepared FreeSWITCH asks mod_xml_curl for nothing (its binding removed:
# an empty `bindings` would bind every section).
fs_unbind_all() {
    local conf=$FS_RUN/conf/autoload_configs/xml_curl.conf.xml
    sed -i '/<binding name="switchboard">/,/<\/binding>/d' "$conf"
    ! grep -q 'gateway-url' "$conf" || { echo "could not unbind mod_xml_curl" >&2; exit 1; }
}

# fs_launch NAME: starts the prepared FreeSWITCH (FS_PID), waits until it is ready and the
# internal profile listens, sets the log level. Its console log is $WORK/logs/freeswitch-NAME.console.log.
fs_launch() {
    local run=$FS_RUN
    mkdir -p "$WORK/logs"
    LD_LIBRARY_PATH=$FS_DIR/lib "$FS_DIR/bin/freeswitch" -nonat -nc -nf -mod "$FS_DIR/mod" -conf "$run/conf" \
        -log "$run/log" -db "$run/db" -run "$run/run" -temp "$run/temp" -storage "$run/storage" \
        -recordings "$run/recordings" -sounds "$run/sounds" -cache "$run/cache" -certs "$run/certs" \
        -scripts "$run/scripts" </dev/null >"$WORK/logs/freeswitch-$1.console.log" 2>&1 &
    FS_PID=$!
    for _ in $(seq 1 150); do
        kill -0 "$FS_PID" 2>/dev/null || { tail -50 "$WORK/logs/freeswitch-$1.console.log" >&2; echo "FreeSWITCH exited at start" >&2; exit 1; }
        if fs_cli status 2>/dev/null | grep -q "is ready"; then break; fi
        sleep 0.2
    done
    fs_cli status | grep -q "is ready" || { echo "FreeSWITCH was not ready within 30 s" >&2; exit 1; }
    # Keep FreeSWITCH's logging cheap: the shipped switch.conf logs at debug into log/.
    fs_cli "fsctl loglevel ${FS_LOGLEVEL:-warning}" >/dev/null
    # sofia's profile is up when it lists its port.
    for _ in $(seq 1 50); do
        if fs_cli "sofia status profile internal" | grep -q "$SIP_PORT"; then break; fi
        sleep 0.2
    done
}

# stop_freeswitch NAME: shuts it down; its log is kept as $WORK/logs/freeswitch-NAME.log.
stop_freeswitch() {
    fs_cli "shutdown" >/dev/null 2>&1 || kill "$FS_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$FS_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$FS_PID" 2>/dev/null || true
    wait "$FS_PID" 2>/dev/null || true
    FS_PID=""
    cp "$FS_RUN/log/freeswitch.log" "$WORK/logs/freeswitch-$1.log" 2>/dev/null || true
}

# bridge_config FILE: switchboard's configuration with one node, the FreeSWITCH of the moment
# (every one listens on ESL_PORT), and the outbound socket on OUTBOUND_PORT.
bridge_config() {
    cat >"$1" <<TOML
[freeswitch]
outbound_socket = "127.0.0.1:$OUTBOUND_PORT"

[freeswitch.link]
reconnect_initial_ms = 100
reconnect_max_secs = 1

[[freeswitch.nodes]]
name = "fs1"
host = "127.0.0.1"
port = $ESL_PORT
password = "$ESL_PASSWORD"
profile = "internal"
TOML
}

# wait_bridge: until the server's bridge is connected to FreeSWITCH (10 s).
wait_bridge() {
    for _ in $(seq 1 100); do
        if [ "$(api /api/v1/freeswitch/nodes | jq -r '.items[0].state')" = connected ]; then return; fi
        sleep 0.1
    done
    echo "the bridge did not connect to FreeSWITCH within 10 s" >&2
    exit 1
}

# --- mod_xml_curl requests ---------------------------------------------------------------

# set_fields FILE NAME=VALUE…: the url-encoded body with these fields set (appended when
# missing; VALUE already encoded), NAME= alone removes the field.
set_fields() {
    local file=$1
    shift
    awk -v sets="$(printf '%s\n' "$@")" 'BEGIN { RS = "&"; ORS = ""; n = split(sets, s, "\n")
            for (i = 1; i <= n; i++) { k = s[i]; sub(/=.*/, "", k); v = substr(s[i], length(k) + 2); val[k] = v; order[i] = k } }
        { sub(/\n$/, ""); k = $0; sub(/=.*/, "", k)
          if (k in val) { if (val[k] != "") { out = out sep k "=" val[k]; sep = "&" }; done[k] = 1 }
          else { out = out sep $0; sep = "&" } }
        END { for (i = 1; i <= n; i++) if (!(order[i] in done) && val[order[i]] != "") { out = out sep order[i] "=" val[order[i]]; sep = "&" }
              print out }' "$file"
}

# --- static XML from switchboard's own answers ----------------------------------------------

# ask_xml_curl BODY_FILE OUT_FILE: POST a mod_xml_curl request body to the server.
ask_xml_curl() {
    curl -sf -u "freeswitch:$XML_CURL_PASSWORD" -H 'content-type: application/x-www-form-urlencoded' \
        --data-binary "@$1" "$BASE/freeswitch/xml" >"$2"
}

# static_user USER DOMAIN: switchboard's sip_auth answer for the user, appended to the Domain's
# static users in $WORK/static (the first answer of a Domain also gives the Domain's params and
# variables). static_directory_files then writes one file per Domain.
static_user() {
    sed -e "s/d-7f3a/$1/g; s/acme\.example\.net/$2/g" \
        "$ROOT/tests/fixtures/freeswitch/xmlcurl/directory-sip_auth-register.body" >"$WORK/static-req.body"
    ask_xml_curl "$WORK/static-req.body" "$WORK/answer.xml"
    grep -q "<user id=\"$1\"" "$WORK/answer.xml" || { echo "$1@$2 was not answered:" >&2; cat "$WORK/answer.xml" >&2; exit 1; }
    mkdir -p "$WORK/static"
    if [ ! -f "$WORK/static/$2.head" ]; then
        # The Domain element as switchboard answers it, its users left out.
        awk '/<domain /, 0' "$WORK/answer.xml" | awk '/<(users|groups)>/ { exit } { print }' >"$WORK/static/$2.head"
    fi
    # The <user>…</user> element (one line), without cacheable="…".
    tr '\n' '\r' <"$WORK/answer.xml" | grep -oE '<user id=.*</user>' | tr '\r' '\n' \
        | sed -E '1s/ cacheable="[0-9]*"//' >>"$WORK/static/$2.users"
}

# static_directory_files: $WORK/static/<domain>.xml from what static_user gathered, under
# <groups><group name="default"><users> as switchboard answers.
static_directory_files() {
    local head domain
    for head in "$WORK"/static/*.head; do
        domain=$(basename "$head" .head)
        # <include> and </include> on lines of their own: FreeSWITCH's preprocessor drops the
        # rest of their lines (a domain on the same line is silently lost).
        { echo "<include>"; cat "$head"; echo '<groups><group name="default"><users>'; cat "$WORK/static/$domain.users"
          echo "</users></group></groups>"; echo "</domain>"; echo "</include>"; } \
            >"$WORK/static/$domain.xml"
        rm -f "$head" "$WORK/static/$domain.users"
    done
}
