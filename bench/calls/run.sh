#!/usr/bin/env bash
# Calls per second through a real FreeSWITCH (the packaged 1.10.12, started with the shipped
# freeswitch/conf) with switchboard as its directory and dialplan over mod_xml_curl, side by
# side with the same FreeSWITCH serving the same users and the same dialplan from static XML.
# The twin of bench/register/run.sh.
#
# It seeds DOMAINS Domains × PER_DOMAIN Extensions (1000…), each owning a fixed Device, through
# the API import. The first half of each Domain's Devices are the callees: sipp registers them
# (bench/register/register.xml) with one Contact, the port of a sipp UAS that then answers every
# call (bench/calls/answer.xml: 180 and 200 at once, the caller's BYE). The other half are the
# callers: a sipp UAC (bench/calls/call.xml) authenticates as caller i (digest, 407) and dials
# the Extension of callee i: INVITE, 407, INVITE with credentials, 200, ACK, HOLD ms of call,
# BYE. FreeSWITCH does the digest check, asks the dialplan (the Domain's context), and bridges
# to `${sofia_contact(*/<callee>@<domain>)}`: switchboard's ring plan for the Extension.
#
# Each configuration starts a fresh FreeSWITCH and a fresh switchboard on the same database
# (the ESL bridge connected, as in a deployment, in both), registers the callees, then runs
# sipp at each rate of RATES for STEP_SECS seconds each:
#
#   switchboard   mod_xml_curl bound to the directory and the dialplan (freeswitch.xml_curl.
#                 cacheable_ms at its default, 300 000: FreeSWITCH caches a caller after its
#                 first call; every call asks switchboard's dialplan)
#   static XML    mod_xml_curl's binding removed (it asks for nothing); directory/ holds
#                 switchboard's own answers for every Device and Extension (as bench/register),
#                 dialplan/ one context per Domain with switchboard's own answer for every
#                 Extension (the same `bridge` to the same dial string)
#
# Both configurations raise switch.conf's sessions-per-second (shipped: 200, i.e. 100 calls/s,
# each call being two sessions) to SPS (default 1000) and widen the RTP range to RTP_PORTS
# ports; nothing else of the shipped configuration changes (vars.xml: ports, passwords, URL).
#
# Reported per rate step: calls/s completed (sipp's successful calls over the wall time of the
# run), failed calls, retransmissions, p50/p99 setup time (first INVITE → 200, -trace_rtt, 1 ms
# resolution; includes the 407 round trip), the directory and dialplan lookups switchboard
# answered, and the
# ratio to the static reference's calls/s at the same rate.
#
# Needs: cargo, curl, jq, awk, ss, sipp (apt-get install -y sip-tester), the packaged
# FreeSWITCH (SWITCHBOARD_FREESWITCH_DIR, default ../shared/freeswitch beside the repository)
# and its runtime packages.
#
#   bench/calls/run.sh                                 # SQLite, the defaults below
#   DOMAINS=2 PER_DOMAIN=100 RATES="10 20 30 40 50" STEP_SECS=15 HOLD=1000 LIMIT=400 bench/calls/run.sh
#   bench/calls/run.sh postgres                         # PostgreSQL (BENCH_POSTGRES_URL)
#   CONFIGS="static switchboard" bench/calls/run.sh     # order or subset of the configurations
#   SWITCHBOARD_BIN=target/release/switchboard bench/calls/run.sh   # skip the build
#   BENCH_LOG_DIR=/tmp/calls-logs bench/calls/run.sh    # keep the server, FreeSWITCH and sipp logs
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
DOMAINS=${DOMAINS:-2}
PER_DOMAIN=${PER_DOMAIN:-100}
RATES=${RATES:-10 20 30 40 50}
STEP_SECS=${STEP_SECS:-15}
HOLD=${HOLD:-1000}
LIMIT=${LIMIT:-400}
SPS=${SPS:-1000}
RTP_PORTS=${RTP_PORTS:-4000}
CONFIGS=${CONFIGS:-switchboard static}
BACKEND=${1:-sqlite}
ADMIN_EMAIL=bench@switchboard.test
ADMIN_PASSWORD=Bench-Password-Long-Enough-42
XML_CURL_PASSWORD=bench-xml-curl-password
ESL_PASSWORD=bench-esl-password

for tool in curl jq awk sipp ss; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install -y curl jq sip-tester iproute2)" >&2; exit 2; }
done
[ $((PER_DOMAIN % 2)) = 0 ] || { echo "PER_DOMAIN must be even (half callers, half callees)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench-calls.XXXXXX")
SERVER_PID=""
FS_PID=""
SIPP_PID=""
UAS_PID=""
# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"
trap bench_cleanup EXIT
mkdir -p "$WORK/logs"
fs_check
find_binary

SIP_PORT=$(free_port)
ESL_PORT=$(free_port)
UAS_PORT=$(free_port)
UAC_PORT=$(free_port)
OUTBOUND_PORT=$(free_port)
# Above free_port's range (20000–49999): RTP_PORTS ports for FreeSWITCH.
RTP_PORT=$((50000 + (RANDOM % 10) * 1000))
[ $((RTP_PORT + RTP_PORTS)) -le 65000 ] || { echo "RTP_PORTS is too large" >&2; exit 2; }

KEY_FILE=$WORK/secrets.key
case $BACKEND in
    sqlite) DB_URL="sqlite://$WORK/bench.db?mode=rwc" ;;
    postgres)
        postgres_ready || { echo "postgres: nothing answers at $PG_URL (or psql is missing)" >&2; exit 2; }
        create_pg_database "switchboard_bench_calls_$$"
        DB_URL=$PG_DB_URL
        ;;
    *) echo "unknown backend $BACKEND (sqlite or postgres)" >&2; exit 2 ;;
esac
bridge_config "$WORK/switchboard.toml"

server() {
    start_server "$DB_URL" \
        SWITCHBOARD_CONFIG="$WORK/switchboard.toml" \
        SWITCHBOARD_LOG__LEVEL="warn,switchboard_api::cli=info" \
        SWITCHBOARD_FREESWITCH__XML_CURL__PASSWORD="$XML_CURL_PASSWORD"
    [ -n "$TOKEN" ] || { cat "$WORK/server.log" >&2; echo "logging in failed" >&2; exit 1; }
}

# --- the data ------------------------------------------------------------------------------

# seed → $WORK/callees.csv (register.xml's injection file: user;domain;password;),
# $WORK/callers.csv (call.xml's: user;domain;password;number dialled;) and $WORK/domains.txt.
seed() {
    local d domain_id sip_domain half=$((PER_DOMAIN / 2))
    : >"$WORK/domains.txt"
    echo "SEQUENTIAL" >"$WORK/callees.csv"
    echo "SEQUENTIAL" >"$WORK/callers.csv"
    for d in $(seq 1 "$DOMAINS"); do
        sip_domain=t$d.calls.test
        domain_id=$(create_domain "Tenant $d" "$sip_domain")
        # No voicemail: a ring that fails (under overload) ends the call in both configurations
        # instead of holding a voicemail session in switchboard's only.
        extension_rows "$d" "$PER_DOMAIN" ', "voicemail_enabled": false' >"$WORK/rows.json"
        import_rows "$domain_id" "$WORK/rows.json"
        echo "$domain_id $sip_domain" >>"$WORK/domains.txt"
        device_credentials "$domain_id" >"$WORK/credentials.txt"
        # "Desk i" is owned by Extension 1000 + i: the first half answers, the second half
        # calls the first (Desk half + i calls 1000 + i).
        paste -d';' <(cut -f2 "$WORK/devices.txt" | sed 's/^Desk //') "$WORK/credentials.txt" \
            | awk -F';' -v h="$half" '$1 < h { print $2 ";" $3 ";" $4 ";" >>"'"$WORK/callees.csv"'" }
                                      $1 >= h { print $2 ";" $3 ";" $4 ";" 1000 + $1 - h ";" >>"'"$WORK/callers.csv"'" }'
    done
    CALLEES=$(($(wc -l <"$WORK/callees.csv") - 1))
    CALLERS=$(($(wc -l <"$WORK/callers.csv") - 1))
    if [ "$CALLEES" != $((DOMAINS * half)) ] || [ "$CALLERS" != $((DOMAINS * half)) ]; then
        echo "read $CALLEES callees and $CALLERS callers, expected $((DOMAINS * half)) each" >&2
        exit 1
    fi
}

# static_files → $WORK/static/<domain>.xml (directory: every Device and Extension as switchboard
# answers it) and $WORK/static-dialplan/<domain>.xml (the Domain's context: switchboard's answer
# to a call to every callee Extension).
static_files() {
    local _id domain i user dial
    rm -rf "$WORK/static" "$WORK/static-dialplan"
    mkdir -p "$WORK/static" "$WORK/static-dialplan"
    while IFS=';' read -r user domain _; do
        [ "$user" = SEQUENTIAL ] && continue
        static_user "$user" "$domain"
    done < <(cat "$WORK/callees.csv" "$WORK/callers.csv")
    while read -r _id domain; do
        for i in $(seq 0 $((PER_DOMAIN - 1))); do static_user $((1000 + i)) "$domain"; done
    done <"$WORK/domains.txt"
    static_directory_files
    # The dialplan: the call from each caller to its callee, as switchboard answers it.
    while IFS=';' read -r user domain _ dial _; do
        [ "$user" = SEQUENTIAL ] && continue
        dialplan_request "$user" "$domain" "$dial" >"$WORK/req.body"
        ask_xml_curl "$WORK/req.body" "$WORK/answer.xml"
        grep -q 'application="bridge"' "$WORK/answer.xml" || { echo "a call from $user@$domain to $dial does not bridge:" >&2; cat "$WORK/answer.xml" >&2; exit 1; }
        [ -f "$WORK/static-dialplan/$domain.xml" ] || printf '<include>\n<context name="%s">\n' "$domain" >"$WORK/static-dialplan/$domain.xml"
        # The <extension>…</extension> element.
        awk '/<extension /, /<\/extension>/' "$WORK/answer.xml" >>"$WORK/static-dialplan/$domain.xml"
    done <"$WORK/callers.csv"
    for f in "$WORK"/static-dialplan/*.xml; do printf '</context>\n</include>\n' >>"$f"; done
}

# dialplan_request USER DOMAIN DIALLED: the captured dialplan request of a call from the
# Device (its id from DEVICE_IDS, as switchboard's directory sets it) to the number.
dialplan_request() {
    sed -e "s/d-7f3a/$1/g; s/acme\\.example\\.net/$2/g; s/=202&/=$3\\&/g; s/202%40/$3%40/g" \
        "$ROOT/tests/fixtures/freeswitch/xmlcurl/dialplan-not-found-202.body" >"$WORK/captured.body"
    set_fields "$WORK/captured.body" variable_switchboard_domain="$2" variable_switchboard_device_id="${DEVICE_IDS[$1@$2]}"
}

# --- FreeSWITCH ----------------------------------------------------------------------------

# start_freeswitch NAME switchboard|static
start_freeswitch() {
    fs_prepare "$1"
    local switch=$FS_RUN/conf/autoload_configs/switch.conf.xml
    sed -i -E "s#(name=\"sessions-per-second\" value=)\"[0-9]+\"#\\1\"$SPS\"#" "$switch"
    grep -q "name=\"sessions-per-second\" value=\"$SPS\"" "$switch" || { echo "could not set sessions-per-second" >&2; exit 1; }
    if [ "$2" = static ]; then
        fs_unbind_all
        cp "$WORK"/static/*.xml "$FS_RUN/conf/directory/"
        cp "$WORK"/static-dialplan/*.xml "$FS_RUN/conf/dialplan/"
    fi
    fs_launch "$1"
}

# --- the load ------------------------------------------------------------------------------

# xml_curl_answers → "directory dialplan": the lookups switchboard answered so far (a user; any
# dialplan answer).
xml_curl_answers() {
    curl -sf "$BASE/metrics" | awk 'index($0, "switchboard_xml_curl_answers_total{") == 1 {
        if (index($0, "kind=\"user\"")) u += $NF; else if (!index($0, "kind=\"domain\"") && !index($0, "kind=\"group\"") && !index($0, "kind=\"gateways\"") && !index($0, "kind=\"network_list\"")) d += $NF }
        END { printf "%d %d\n", u, d }'
}

# sipp_stats DIR → "successful failed retransmissions p50 p99" (the last statistics line; the
# response times of the successful calls, ms).
sipp_stats() {
    local ok failed retrans p50 p99
    read -r ok failed retrans < <(awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        { last = $0 } END { split(last, v, ";"); print v[col["SuccessfulCall(C)"]], v[col["FailedCall(C)"]], v[col["Retransmissions(C)"]] }' "$1/stat.csv")
    read -r p50 p99 < <(cat "$1"/*_rtt.csv 2>/dev/null | awk -F';' '$2 ~ /^[0-9.]+$/ { print $2 }' | sort -n \
        | awk '{ v[NR] = $1 } END { if (NR) printf "%.1f %.1f\n", v[int(NR * 0.5 + 0.5)], v[int(NR * 0.99 + 0.5)]; else print "- -" }')
    echo "$ok $failed $retrans $p50 $p99"
}

# register_callees NAME: every callee registers with the UAS's port as its Contact.
register_callees() {
    local dir=$WORK/sipp-$1-register ok failed
    mkdir -p "$dir"
    (cd "$dir" && exec sipp "127.0.0.1:$SIP_PORT" -sf "$ROOT/bench/register/register.xml" -inf "$WORK/callees.csv" \
        -au '[field0]' -ap '[field2]' -i 127.0.0.1 -p "$UAS_PORT" -mp $((UAS_PORT + 2)) -t u1 -m "$CALLEES" -r 200 -l 20 \
        -key expires 3600 -nostdin -recv_timeout 10000 -timeout 120 -trace_stat -stf stat.csv -fd 1 -trace_err \
        >"$dir/stdout.log" 2>&1) || true
    read -r ok failed _ < <(sipp_stats "$dir")
    cp "$dir"/*_errors.log "$WORK/logs/sipp-$1-register-errors.log" 2>/dev/null || true
    [ "$ok" = "$CALLEES" ] || { echo "only $ok of $CALLEES callees registered ($failed failed)" >&2; tail -20 "$dir/stdout.log" >&2; exit 1; }
}

# start_uas NAME: the callees' phone, answering every call, on UAS_PORT.
start_uas() {
    local dir=$WORK/sipp-$1-uas
    mkdir -p "$dir"
    (cd "$dir" && exec sipp -sf "$ROOT/bench/calls/answer.xml" -i 127.0.0.1 -p "$UAS_PORT" -mp $((UAS_PORT + 2)) -t u1 \
        -aa -nostdin -trace_stat -stf stat.csv -fd 1 -trace_err >"$dir/stdout.log" 2>&1) &
    UAS_PID=$!
    sleep 0.5
    kill -0 "$UAS_PID" 2>/dev/null || { cat "$dir/stdout.log" >&2; echo "the UAS did not start" >&2; exit 1; }
}

stop_uas() {
    local dir=$WORK/sipp-$1-uas
    stop_pid "$UAS_PID"
    UAS_PID=""
    cp "$dir/stdout.log" "$WORK/logs/sipp-$1-uas.log" 2>/dev/null || true
    cp "$dir"/*_errors.log "$WORK/logs/sipp-$1-uas-errors.log" 2>/dev/null || true
}

# drain: waits until FreeSWITCH holds no channel (60 s), then hangs up what is left, so that an
# overloaded step does not weigh on the next one. → the channels that were left.
drain() {
    local n=0
    for _ in $(seq 1 120); do
        n=$(fs_cli "show channels count" | grep -oE '^[0-9]+' | head -1)
        [ "${n:-0}" = 0 ] && { echo 0; return; }
        sleep 0.5
    done
    fs_cli "hupall NORMAL_CLEARING" >/dev/null
    sleep 2
    echo "$n"
}

# step CONFIG RATE: RATE × STEP_SECS calls at RATE per second; appends a line to results.tsv.
step() {
    local name=$1-r$2 calls=$(($2 * STEP_SECS)) before_dir before_dp start end secs rc=0
    local dir=$WORK/sipp-$name
    mkdir -p "$dir"
    read -r before_dir before_dp < <(xml_curl_answers)
    start=$(date +%s%N)
    (cd "$dir" && exec sipp "127.0.0.1:$SIP_PORT" -sf "$ROOT/bench/calls/call.xml" -inf "$WORK/callers.csv" \
        -au '[field0]' -ap '[field2]' -i 127.0.0.1 -p "$UAC_PORT" -mp $((UAC_PORT + 2)) -t u1 \
        -m "$calls" -r "$2" -l "$LIMIT" -d "$HOLD" -aa -nostdin -recv_timeout 10000 -timeout $((STEP_SECS * 5 + 60)) \
        -trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 10 -trace_err \
        >"$dir/stdout.log" 2>&1) &
    SIPP_PID=$!
    wait "$SIPP_PID" || rc=$?
    SIPP_PID=""
    end=$(date +%s%N)
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    local ok failed retrans p50 p99 dir_answers dp_answers cps
    read -r ok failed retrans p50 p99 < <(sipp_stats "$dir")
    read -r dir_answers dp_answers < <(xml_curl_answers)
    dir_answers=$((dir_answers - before_dir))
    dp_answers=$((dp_answers - before_dp))
    # Calls completed per second: the sipp run lasts calls/rate plus the last call's setup and
    # HOLD; take the calls over the time the calls were being placed and completed.
    cps=$(awk -v n="$ok" -v s="$secs" -v h="$HOLD" 'BEGIN { printf "%.1f", n / (s - h / 1000) }')
    echo "  $2 calls/s offered: $ok ok, $failed failed, $retrans retransmissions in $secs s = $cps calls/s; setup p50 $p50 ms, p99 $p99 ms; switchboard answered $dir_answers directory and $dp_answers dialplan lookups (sipp rc $rc)" >&2
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$calls" "$cps" "$ok" "$failed" "$retrans" "$p50" "$p99" "$dir_answers" "$dp_answers" >>"$WORK/results.tsv"
    cp "$dir/stdout.log" "$WORK/logs/sipp-$name.log" 2>/dev/null || true
    cp "$dir"/*_errors.log "$WORK/logs/sipp-$name-errors.log" 2>/dev/null || true
    local left
    left=$(drain)
    [ "$left" = 0 ] || echo "  $left channels were still up 60 s after the step: hung up" >&2
}

# --- the run -------------------------------------------------------------------------------

echo "$BACKEND: seeding $DOMAINS Domains × $PER_DOMAIN Extensions, each owning a fixed Device…" >&2
server
seed
declare -A DEVICE_IDS
while read -r _id domain; do
    device_credentials "$_id" >"$WORK/credentials.txt"
    while IFS=';' read -r id user _; do DEVICE_IDS[$user@$domain]=${id%%$'\t'*}; done \
        < <(paste -d';' "$WORK/devices.txt" "$WORK/credentials.txt")
done <"$WORK/domains.txt"
echo "  $CALLEES callees, $CALLERS callers; writing the static directory and dialplan from switchboard's answers…" >&2
static_files
stop_server
: >"$WORK/results.tsv"

for config in $CONFIGS; do
    case $config in switchboard | static) ;; *) echo "unknown configuration $config (switchboard static)" >&2; exit 2 ;; esac
    echo "$config: FreeSWITCH with the $config directory and dialplan, sessions-per-second $SPS…" >&2
    server
    start_freeswitch "$config" "$config"
    wait_bridge
    register_callees "$config"
    start_uas "$config"
    for rate in $RATES; do step "$config" "$rate"; done
    stop_uas "$config"
    stop_freeswitch "$config"
    cp "$WORK/server.log" "$WORK/logs/server-$config.log"
    stop_server
done

echo
echo "Machine: $(machine); FreeSWITCH $(fs_version) (sessions-per-second $SPS, RTP ports $RTP_PORTS); $("$(command -v sipp)" -v 2>&1 | grep -oE 'SIPp v[0-9.]+' | head -1); $BACKEND; $DOMAINS Domains, $CALLERS callers calling $CALLEES registered callees; $STEP_SECS s per rate, calls held $HOLD ms, at most $LIMIT in flight; bridge connected; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| configuration | offered calls/s | calls | completed calls/s | ok | failed | retransmissions | setup p50 ms | setup p99 ms | directory answers | dialplan answers | vs static |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '
    { line[NR] = $0; if ($1 == "static") ref[$2] = $4 }
    END {
        for (i = 1; i <= NR; i++) {
            split(line[i], f, "\t")
            name = f[1] == "static" ? "static XML (reference)" : "switchboard"
            ratio = (f[2] in ref && ref[f[2]] > 0) ? sprintf("%.2f", f[4] / ref[f[2]]) : "-"
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], ratio
        }
    }' "$WORK/results.tsv"
