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
ADMIN_EMAIL=bench@switchboard.test
ADMIN_PASSWORD=Bench-Password-Long-Enough-42
XML_CURL_PASSWORD=bench-xml-curl-password
ESL_PASSWORD=bench-esl-password
SCENARIO=$ROOT/bench/register/register.xml

for tool in curl jq awk sipp ss; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install -y curl jq sip-tester iproute2)" >&2; exit 2; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench-register.XXXXXX")
SERVER_PID=""
FS_PID=""
SIPP_PID=""
# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"
trap bench_cleanup EXIT
mkdir -p "$WORK/logs"
fs_check
find_binary

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
        postgres_ready || { echo "postgres: nothing answers at $PG_URL (or psql is missing)" >&2; exit 2; }
        create_pg_database "switchboard_bench_reg_$$"
        DB_URL=$PG_DB_URL
        count_registrations() { psql -qAt "$DB_URL" -c 'SELECT count(*) FROM registrations'; }
        ;;
    *) echo "unknown backend $BACKEND (sqlite or postgres)" >&2; exit 2 ;;
esac

bridge_config "$WORK/switchboard.toml"

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

# seed → $WORK/users.csv (sipp's injection file) and $WORK/domains.txt ("id sip_domain"):
# PER_DOMAIN Extensions per Domain, each owning a fixed Device.
seed() {
    local d domain_id sip_domain
    : >"$WORK/domains.txt"
    echo "SEQUENTIAL" >"$WORK/users.csv"
    for d in $(seq 1 "$DOMAINS"); do
        sip_domain=t$d.register.test
        domain_id=$(create_domain "Tenant $d" "$sip_domain")
        extension_rows "$d" "$PER_DOMAIN" >"$WORK/rows.json"
        import_rows "$domain_id" "$WORK/rows.json"
        echo "$domain_id $sip_domain" >>"$WORK/domains.txt"
        device_credentials "$domain_id" >>"$WORK/users.csv"
    done
    USERS=$(($(wc -l <"$WORK/users.csv") - 1))
    [ "$USERS" = $((DOMAINS * PER_DOMAIN)) ] || { echo "read $USERS credentials, expected $((DOMAINS * PER_DOMAIN))" >&2; exit 1; }
}

# static_directory → $WORK/static/<domain>.xml: every user switchboard answers for, as it answers
# (the same params and variables), without `cacheable`, one file per Domain: the Devices, and
# the Extensions that own them (a Device's mwi-account, which mod_voicemail looks up after every
# registration because of send-message-query-on-register).
static_directory() {
    local user domain _id i
    mkdir -p "$WORK/static"
    rm -f "$WORK"/static/*
    while IFS=";" read -r user domain _; do
        [ "$user" = SEQUENTIAL ] && continue
        static_user "$user" "$domain"
    done <"$WORK/users.csv"
    while read -r _id domain; do
        for i in $(seq 0 $((PER_DOMAIN - 1))); do static_user $((1000 + i)) "$domain"; done
    done <"$WORK/domains.txt"
    static_directory_files
}

# --- FreeSWITCH ----------------------------------------------------------------------------

# start_freeswitch NAME switchboard|static: the shipped configuration with this run's vars.
start_freeswitch() {
    fs_prepare "$1"
    if [ "$2" = static ]; then
        # The reference: the directory from files, mod_xml_curl for the dialplan only.
        fs_unbind_directory
        cp "$WORK"/static/*.xml "$FS_RUN/conf/directory/"
    fi
    fs_launch "$1"
}

# --- the load ------------------------------------------------------------------------------

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

echo
echo "Machine: $(machine); FreeSWITCH $(fs_version); $("$(command -v sipp)" -v 2>&1 | grep -oE 'SIPp v[0-9.]+' | head -1); $BACKEND; $DOMAINS Domains × $PER_DOMAIN Devices; sipp -r $RATE -l $LIMIT, $USERS registrations per pass, bridge connected; load average $(cut -d' ' -f1-3 /proc/loadavg)"
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
