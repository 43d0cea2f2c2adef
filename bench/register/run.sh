#!/usr/bin/env bash
# REGISTERs per second through a real FreeSWITCH (the packaged 1.10.12, started with the shipped
# freeswitch/conf, only vars.xml rewritten) with switchboard as its directory over mod_xml_curl,
# side by side with the same FreeSWITCH serving the same users from static XML.
#
# It seeds DOMAINS Domains × PER_DOMAIN fixed Devices (each owned by an Extension) through the
# API import, reads every Device's SIP credentials from the API, and runs sipp as the phones:
# bench/register/register.xml over an injection file (one line per Device: user;domain;password),
# every call one registration with digest auth (REGISTER, 401, REGISTER with credentials, 200),
# REGS registrations per pass (default: every Device once), at up to RATE per second with at
# most LIMIT in flight. Every configuration starts a fresh FreeSWITCH (empty caches, no
# registrations) and a fresh switchboard on the same database, with the ESL bridge connected
# (so every registration is also ingested into the database, as in a deployment), and runs two
# passes:
#
#   switchboard, cache on   freeswitch.xml_curl.cacheable_ms at its default (300 000): pass 1
#                           asks switchboard for every user (cold), pass 2 re-registers every
#                           user from FreeSWITCH's user cache (warm)
#   switchboard, cache off  cacheable_ms = 0: every authenticated REGISTER asks switchboard
#   static XML              the reference: mod_xml_curl bound to the dialplan only, and the same
#                           users (switchboard's own answers for every Device and every
#                           Extension, without `cacheable`) as static directory files, one per
#                           Domain
#
# Pass 2 of every configuration is a re-registration (refresh) of the same users, so compare
# pass with pass. The table gives registrations per second (each is two REGISTERs), failures,
# sipp's retransmissions, the response time of the whole exchange (first REGISTER → 200), the
# mod_xml_curl lookups switchboard answered, the seconds the bridge needed after sipp ended to
# ingest every sofia::register event, and the ratio to the static reference's same pass.
#
# Needs: cargo, curl, jq, awk, sipp (apt-get install -y sip-tester), the packaged FreeSWITCH
# (SWITCHBOARD_FREESWITCH_DIR, default ../shared/freeswitch beside the repository) and its
# runtime packages; sqlite3 or psql to count the stored registrations.
#
#   bench/register/run.sh                    # SQLite
#   bench/register/run.sh postgres           # PostgreSQL (BENCH_POSTGRES_URL, own database)
#   DOMAINS=20 PER_DOMAIN=100 RATE=2000 LIMIT=20 bench/register/run.sh   # the defaults
#   SWITCHBOARD_BIN=target/release/switchboard bench/register/run.sh   # skip the build
#   CONFIGS="static cache-on" bench/register/run.sh   # a subset (cache-on cache-off static)
#   BENCH_LOG_DIR=/tmp/reg-logs bench/register/run.sh  # keep the server, FreeSWITCH and sipp logs
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
DOMAINS=${DOMAINS:-20}
PER_DOMAIN=${PER_DOMAIN:-100}
RATE=${RATE:-2000}
LIMIT=${LIMIT:-20}
CONFIGS=${CONFIGS:-cache-on cache-off static}
FS_LOGLEVEL=${FS_LOGLEVEL:-warning}
BACKEND=${1:-sqlite}
FS_DIR=${SWITCHBOARD_FREESWITCH_DIR:-$ROOT/../shared/freeswitch}
PG_URL=${BENCH_POSTGRES_URL:-${SWITCHBOARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}}
ADMIN_EMAIL=bench@switchboard.test
ADMIN_PASSWORD=Bench-Password-Long-Enough-42
XML_CURL_PASSWORD=bench-xml-curl-password
ESL_PASSWORD=bench-esl-password
SCENARIO=$ROOT/bench/register/register.xml
FIXTURE=$ROOT/tests/fixtures/freeswitch/xmlcurl/directory-sip_auth-register.body

for tool in curl jq awk sipp ss; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install -y curl jq sip-tester iproute2)" >&2; exit 2; }
done
[ -x "$FS_DIR/bin/freeswitch" ] || { echo "FreeSWITCH is missing at $FS_DIR (set SWITCHBOARD_FREESWITCH_DIR; see /work/shared/freeswitch/README.md)" >&2; exit 2; }
FS_DIR=$(cd "$FS_DIR" && pwd)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench-register.XXXXXX")
SERVER_PID=""
FS_PID=""
SIPP_PID=""
PG_DB=""
cleanup() {
    if [ -n "$SIPP_PID" ]; then kill "$SIPP_PID" 2>/dev/null || true; wait "$SIPP_PID" 2>/dev/null || true; fi
    if [ -n "$FS_PID" ]; then kill "$FS_PID" 2>/dev/null || true; wait "$FS_PID" 2>/dev/null || true; fi
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [ -n "$PG_DB" ]; then psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 || true; fi
    if [ -n "${BENCH_LOG_DIR:-}" ]; then
        mkdir -p "$BENCH_LOG_DIR"
        cp -r "$WORK"/logs/. "$BENCH_LOG_DIR"/ 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/logs"

# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"
find_binary

# free_port: a port of 127.0.0.1 free for TCP and UDP (SIP listens on both).
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

SIP_PORT=$(free_port)
ESL_PORT=$(free_port)
SIPP_PORT=$(free_port)
OUTBOUND_PORT=$(free_port)
RTP_PORT=$((20000 + (RANDOM % 300) * 100))

# --- the database --------------------------------------------------------------------------

KEY_FILE=$WORK/secrets.key
case $BACKEND in
    sqlite)
        DB_URL="sqlite://$WORK/bench.db?mode=rwc"
        count_registrations() { sqlite3 "$WORK/bench.db" 'SELECT count(*) FROM registrations'; }
        ;;
    postgres)
        command -v psql >/dev/null && psql -q "$PG_URL" -c 'select 1' >/dev/null 2>&1 \
            || { echo "postgres: nothing answers at $PG_URL (or psql is missing)" >&2; exit 2; }
        PG_DB=switchboard_bench_reg_$$
        psql -q "$PG_URL" -c "CREATE DATABASE \"$PG_DB\"" >/dev/null
        DB_URL=$(sed -E "s#^(postgres(ql)?://[^/]+)(/[^?]*)?#\\1/$PG_DB#" <<<"$PG_URL")
        count_registrations() { psql -qAt "$DB_URL" -c 'SELECT count(*) FROM registrations'; }
        ;;
    *) echo "unknown backend $BACKEND (sqlite or postgres)" >&2; exit 2 ;;
esac

# The bridge's node: the FreeSWITCH of the moment (every one listens on the same ESL port).
cat >"$WORK/switchboard.toml" <<TOML
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

# server CACHEABLE_MS: starts switchboard on the database with the bridge configured.
server() {
    start_server "$DB_URL" \
        SWITCHBOARD_CONFIG="$WORK/switchboard.toml" \
        SWITCHBOARD_LOG__LEVEL="warn,switchboard_api::cli=info" \
        SWITCHBOARD_FREESWITCH__XML_CURL__PASSWORD="$XML_CURL_PASSWORD" \
        SWITCHBOARD_FREESWITCH__XML_CURL__CACHEABLE_MS="$1"
    [ -n "$TOKEN" ] || { cat "$WORK/server.log" >&2; echo "logging in failed" >&2; exit 1; }
}

api() { # PATH → JSON
    curl -sf -H "authorization: Bearer $TOKEN" "$BASE$1"
}

# --- the data ------------------------------------------------------------------------------

rows() { # DOMAIN_NUMBER: PER_DOMAIN Extensions, each owning a fixed Device
    awk -v n="$PER_DOMAIN" -v d="$1" 'BEGIN {
        printf "{\"extensions\": ["
        for (i = 0; i < n; i++)
            printf "%s{\"number\": \"%d\", \"display_name\": \"Person %d-%d\"}", (i ? "," : ""), 1000 + i, d, i
        printf "], \"devices\": ["
        for (i = 0; i < n; i++)
            printf "%s{\"label\": \"Desk %d\", \"mode\": \"fixed\", \"owner_extension\": \"%d\"}", (i ? "," : ""), i, 1000 + i
        print "]}"
    }'
}

# seed → $WORK/users.csv (sipp's injection file) and $WORK/domains.txt ("id sip_domain").
seed() {
    local d domain_id sip_domain out cursor page
    : >"$WORK/domains.txt"
    echo "SEQUENTIAL" >"$WORK/users.csv"
    for d in $(seq 1 "$DOMAINS"); do
        sip_domain=t$d.register.test
        domain_id=$(curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
            -d "{\"name\": \"Tenant $d\", \"sip_domain\": \"$sip_domain\"}" \
            "$BASE/api/v1/domains" | jq -r .id)
        rows "$d" >"$WORK/rows.json"
        out=$(curl -s -o "$WORK/response.json" -w '%{http_code}' \
            -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
            --data-binary "@$WORK/rows.json" "$BASE/api/v1/domains/$domain_id/import")
        [ "$out" = 201 ] || { echo "import into $sip_domain answered $out:" >&2; head -c 2000 "$WORK/response.json" >&2; exit 1; }
        echo "$domain_id $sip_domain" >>"$WORK/domains.txt"
        # Every Device's credentials: one curl (one connection) for the Domain's secrets.
        cursor=""
        : >"$WORK/device-ids.txt"
        while :; do
            page=$(api "/api/v1/domains/$domain_id/devices?limit=500${cursor:+&cursor=$cursor}")
            jq -r '.items[].id' <<<"$page" >>"$WORK/device-ids.txt"
            cursor=$(jq -r '.next_cursor // empty' <<<"$page")
            [ -n "$cursor" ] || break
        done
        sed "s#^#$BASE/api/v1/domains/$domain_id/devices/#; s#\$#/sip-secret#" "$WORK/device-ids.txt" \
            | xargs curl -sf -H "authorization: Bearer $TOKEN" \
            | jq -r '"\(.sip_username);\(.realm);\(.sip_secret);"' >>"$WORK/users.csv"
    done
    USERS=$(($(wc -l <"$WORK/users.csv") - 1))
    [ "$USERS" = $((DOMAINS * PER_DOMAIN)) ] || { echo "read $USERS credentials, expected $((DOMAINS * PER_DOMAIN))" >&2; exit 1; }
}

# static_user USER DOMAIN: switchboard's sip_auth answer for the user, appended to the Domain's
# static users (the first answer of a Domain also gives the Domain's params and variables).
static_user() {
    local body
    body=$(sed -e "s/d-7f3a/$1/g; s/acme\.example\.net/$2/g" "$FIXTURE")
    curl -sf -u "freeswitch:$XML_CURL_PASSWORD" -H 'content-type: application/x-www-form-urlencoded' \
        --data-binary "$body" "$BASE/freeswitch/xml" >"$WORK/answer.xml"
    grep -q "<user id=\"$1\"" "$WORK/answer.xml" || { echo "$1@$2 was not answered:" >&2; cat "$WORK/answer.xml" >&2; exit 1; }
    if [ ! -f "$WORK/static/$2.head" ]; then
        # The Domain element as switchboard answers it, its users left out.
        awk '/<domain /, 0' "$WORK/answer.xml" | awk '/<(users|groups)>/ { exit } { print }' >"$WORK/static/$2.head"
    fi
    # The <user>…</user> element (one line), without cacheable="…".
    tr '\n' '\r' <"$WORK/answer.xml" | grep -oE '<user id=.*</user>' | tr '\r' '\n' \
        | sed -E '1s/ cacheable="[0-9]*"//' >>"$WORK/static/$2.users"
}

# static_directory → $WORK/static/<domain>.xml: every user switchboard answers for, as it answers
# (the same params and variables), without `cacheable`, one file per Domain: the Devices, and
# the Extensions that own them (a Device's mwi-account, which mod_voicemail looks up after every
# registration because of send-message-query-on-register).
static_directory() {
    local user domain password _id i
    mkdir -p "$WORK/static"
    rm -f "$WORK"/static/*
    while IFS=';' read -r user domain password _; do
        [ "$user" = SEQUENTIAL ] && continue
        static_user "$user" "$domain"
    done <"$WORK/users.csv"
    while read -r _id domain; do
        for i in $(seq 0 $((PER_DOMAIN - 1))); do static_user $((1000 + i)) "$domain"; done
    done <"$WORK/domains.txt"
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

# --- FreeSWITCH ----------------------------------------------------------------------------

fs_cli() {
    LD_LIBRARY_PATH=$FS_DIR/lib "$FS_DIR/bin/fs_cli" -H 127.0.0.1 -P "$ESL_PORT" -p "$ESL_PASSWORD" -x "$1"
}

set_var() { # FILE NAME VALUE
    sed -i -E "s#data=\"$2=[^\"]*\"#data=\"$2=$3\"#" "$1"
    grep -q "data=\"$2=$3\"" "$1" || { echo "vars.xml does not set $2" >&2; exit 1; }
}

# start_freeswitch NAME switchboard|static: the shipped configuration with this run's vars.
start_freeswitch() {
    local run=$WORK/fs-$1 sub
    rm -rf "$run"
    mkdir -p "$run"
    cp -r "$ROOT/freeswitch/conf" "$run/conf"
    local vars=$run/conf/vars.xml
    set_var "$vars" switchboard_xml_curl_url "$BASE/freeswitch/xml"
    set_var "$vars" switchboard_xml_curl_credentials "freeswitch:$XML_CURL_PASSWORD"
    set_var "$vars" event_socket_port "$ESL_PORT"
    set_var "$vars" event_socket_password "$ESL_PASSWORD"
    set_var "$vars" sip_port "$SIP_PORT"
    set_var "$vars" rtp_start_port "$RTP_PORT"
    set_var "$vars" rtp_end_port "$((RTP_PORT + 99))"
    set_var "$vars" console_loglevel err
    if [ "$2" = static ]; then
        # The reference: the directory from files, mod_xml_curl for the dialplan only.
        sed -i 's/bindings="directory|dialplan"/bindings="dialplan"/' "$run/conf/autoload_configs/xml_curl.conf.xml"
        grep -q 'bindings="dialplan"' "$run/conf/autoload_configs/xml_curl.conf.xml" || { echo "could not unbind the directory" >&2; exit 1; }
        cp "$WORK"/static/*.xml "$run/conf/directory/"
    fi
    for sub in log db run temp storage recordings sounds cache certs scripts; do mkdir -p "$run/$sub"; done
    LD_LIBRARY_PATH=$FS_DIR/lib "$FS_DIR/bin/freeswitch" -nonat -nc -nf -mod "$FS_DIR/mod" -conf "$run/conf" \
        -log "$run/log" -db "$run/db" -run "$run/run" -temp "$run/temp" -storage "$run/storage" \
        -recordings "$run/recordings" -sounds "$run/sounds" -cache "$run/cache" -certs "$run/certs" \
        -scripts "$run/scripts" </dev/null >"$WORK/logs/freeswitch-$1.console.log" 2>&1 &
    FS_PID=$!
    FS_RUN=$run
    for _ in $(seq 1 150); do
        kill -0 "$FS_PID" 2>/dev/null || { tail -50 "$WORK/logs/freeswitch-$1.console.log" >&2; echo "FreeSWITCH exited at start" >&2; exit 1; }
        if fs_cli status 2>/dev/null | grep -q "is ready"; then break; fi
        sleep 0.2
    done
    fs_cli status | grep -q "is ready" || { echo "FreeSWITCH was not ready within 30 s" >&2; exit 1; }
    # Keep FreeSWITCH's logging cheap: the shipped switch.conf logs at debug into log/.
    fs_cli "fsctl loglevel $FS_LOGLEVEL" >/dev/null
    # sofia's profile is up when it lists its port.
    for _ in $(seq 1 50); do
        if fs_cli "sofia status profile internal" | grep -q "$SIP_PORT"; then break; fi
        sleep 0.2
    done
}

stop_freeswitch() {
    local name=$1
    fs_cli "shutdown" >/dev/null 2>&1 || kill "$FS_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$FS_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$FS_PID" 2>/dev/null || true
    wait "$FS_PID" 2>/dev/null || true
    FS_PID=""
    cp "$FS_RUN/log/freeswitch.log" "$WORK/logs/freeswitch-$name.log" 2>/dev/null || true
}

wait_bridge() {
    for _ in $(seq 1 100); do
        if [ "$(api /api/v1/freeswitch/nodes | jq -r '.items[0].state')" = connected ]; then return; fi
        sleep 0.1
    done
    echo "the bridge did not connect to FreeSWITCH within 10 s" >&2
    exit 1
}

# --- the load ------------------------------------------------------------------------------

metric_sum() { # PREFIX [FILTER]: the sum of a metric's series
    curl -sf "$BASE/metrics" | awk -v p="$1{" -v f="${2:-}" 'index($0, p) == 1 && index($0, f) { s += $NF } END { printf "%d\n", s }'
}
registers_ingested() { metric_sum switchboard_freeswitch_events_received_total 'sofia::register'; }
user_lookups() { metric_sum switchboard_xml_curl_answers_total; }

# pass CONFIG PASS: one sipp run of USERS registrations; appends a line to results.tsv.
pass() {
    local name=$1-pass$2 before_lookups before_events start end secs rc=0
    local dir=$WORK/sipp-$name
    mkdir -p "$dir"
    before_lookups=$(user_lookups)
    before_events=$(registers_ingested)
    start=$(date +%s%N)
    (cd "$dir" && exec sipp "127.0.0.1:$SIP_PORT" -sf "$SCENARIO" -inf "$WORK/users.csv" -au '[field0]' -ap '[field2]' \
        -i 127.0.0.1 -p "$SIPP_PORT" -t u1 -m "$USERS" -r "$RATE" -l "$LIMIT" \
        -key expires 3600 -nostdin -recv_timeout 10000 -timeout 300 \
        -trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 10 -trace_screen -trace_err \
        >"$dir/stdout.log" 2>&1) &
    SIPP_PID=$!
    wait "$SIPP_PID" || rc=$?
    SIPP_PID=""
    end=$(date +%s%N)
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    # The last statistics line: successful and failed calls, retransmissions.
    local ok failed retrans
    read -r ok failed retrans < <(awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        { last = $0 } END { split(last, v, ";"); print v[col["SuccessfulCall(C)"]], v[col["FailedCall(C)"]], v[col["Retransmissions(C)"]] }' "$dir/stat.csv")
    # Response times (ms) of the successful exchanges.
    local p50 p99
    read -r p50 p99 < <(cat "$dir"/*_rtt.csv 2>/dev/null | awk -F';' '$2 ~ /^[0-9.]+$/ { print $2 }' | sort -n \
        | awk '{ v[NR] = $1 } END { if (NR) printf "%.1f %.1f\n", v[int(NR * 0.5 + 0.5)], v[int(NR * 0.99 + 0.5)]; else print "- -" }')
    local lookups=$(($(user_lookups) - before_lookups))
    # The bridge: every sofia::register ingested and every registration FreeSWITCH holds stored
    # (seconds after sipp ended). A retransmitted REGISTER can give a user two events, so the
    # event count alone does not say every user is in.
    local lag="-" waited=0 now fs_regs stored events
    fs_regs=$(fs_cli "sofia xmlstatus profile internal reg" | grep -c '<registration>' || true)
    while :; do
        now=$(registers_ingested)
        stored=$(count_registrations)
        if [ $((now - before_events)) -ge "$ok" ] && [ "$stored" -ge "$fs_regs" ]; then
            lag=$(awk -v a="$end" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
            break
        fi
        waited=$((waited + 1))
        [ "$waited" -le 300 ] || { lag="missing $((fs_regs - stored))"; break; }
        sleep 0.1
    done
    events=$((now - before_events))
    local rate
    rate=$(awk -v n="$ok" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
    echo "  pass $2: $ok ok, $failed failed, $retrans retransmissions in $secs s = $rate registrations/s; p50 $p50 ms, p99 $p99 ms; $lookups directory answers; $events sofia::register events, all stored +${lag}s; FreeSWITCH holds $fs_regs, the database $stored (sipp rc $rc)" >&2
    curl -sf "$BASE/metrics" | grep -E '^switchboard_xml_curl_(answers|refusals)_total' | sed 's/^/    /' >&2 || true
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$rate" "$ok" "$failed" "$retrans" "$p50" "$p99" "$lookups" "$lag" "$fs_regs" "$stored" >>"$WORK/results.tsv"
    cp "$dir/stdout.log" "$WORK/logs/sipp-$name.log" 2>/dev/null || true
    cp "$dir"/*_errors.log "$WORK/logs/sipp-$name-errors.log" 2>/dev/null || true
    cp "$dir"/*_screen.log "$WORK/logs/sipp-$name-screen.log" 2>/dev/null || true
}

# --- the run -------------------------------------------------------------------------------

echo "$BACKEND: seeding $DOMAINS Domains × $PER_DOMAIN Devices (fixed, owned by an Extension)…" >&2
server 300000
seed
echo "  $USERS SIP users; writing the static directory for the reference…" >&2
static_directory
stop_server
: >"$WORK/results.tsv"

for config in $CONFIGS; do
    case $config in
        cache-on) cacheable=300000; directory=switchboard ;;
        cache-off) cacheable=0; directory=switchboard ;;
        static) cacheable=300000; directory=static ;;
        *) echo "unknown configuration $config (cache-on cache-off static)" >&2; exit 2 ;;
    esac
    echo "$config: switchboard (cacheable_ms=$cacheable), FreeSWITCH with the $directory directory…" >&2
    server "$cacheable"
    start_freeswitch "$config" "$directory"
    wait_bridge
    pass "$config" 1
    pass "$config" 2
    stop_freeswitch "$config"
    cp "$WORK/server.log" "$WORK/logs/server-$config.log"
    stop_server
done

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || uname -p)
echo
echo "Machine: $cpu, $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null) RAM, $(uname -sr); FreeSWITCH $(LD_LIBRARY_PATH=$FS_DIR/lib "$FS_DIR/bin/freeswitch" -version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1); $("$(command -v sipp)" -v 2>&1 | grep -oE 'SIPp v[0-9.]+' | head -1); $BACKEND; $DOMAINS Domains × $PER_DOMAIN Devices; sipp -r $RATE -l $LIMIT, $USERS registrations per pass, bridge connected; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| configuration | pass | registrations/s | ok | failed | retransmissions | p50 ms | p99 ms | directory answers | all stored after (s) | vs static |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '
    { line[NR] = $0; if ($1 == "static") ref[$2] = $3 }
    END {
        for (i = 1; i <= NR; i++) {
            split(line[i], f, "\t")
            name = f[1] == "cache-on" ? "switchboard, cache on" : f[1] == "cache-off" ? "switchboard, cache off" : "static XML (reference)"
            pass = f[2] == 1 ? "1 (new)" : "2 (refresh)"
            ratio = (f[2] in ref && ref[f[2]] > 0) ? sprintf("%.2f", f[3] / ref[f[2]]) : "-"
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, pass, f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], ratio
        }
    }' "$WORK/results.tsv"
