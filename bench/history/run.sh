#!/usr/bin/env bash
# Call history benchmark: CDR ingestion (`POST /freeswitch/cdr`, as mod_json_cdr posts them),
# the history's list query (`GET /api/v1/domains/{id}/calls`, one Extension, 30 days) and the
# CSV export (`GET …/calls.csv`) in constant memory, on SQLite and PostgreSQL, next to nginx
# answering the same POSTs and GETs with a fixed body (the practical ceiling of HTTP here).
#
# For each database, on a fresh database of its own:
#
#   ingestion  INGEST_DOMAINS (10) Domains through the API; wrk with bench/history/cdr.lua posts
#              JSON CDRs built from a captured channel's ~170 variables (9–10 KiB each), a
#              fresh leg uuid per request, a call's first leg then its bridged second leg in
#              turn, at INGEST_CONNS (16 64) connections for DURATION (15) s each. Afterwards
#              the database must hold one call_legs row per `stored` answer (lost = answers
#              without a row; rows without a counted answer are requests still in flight when
#              wrk stopped, at most one per connection). Server and PostgreSQL CPU time and
#              PostgreSQL's wait events (sampled from pg_stat_activity) are logged.
#   query      the server stopped, DOMAINS (1 000) Domains × CALLS (1 000) calls between EXTS
#              (20) Extensions each over the DAYS (90) days before now, seeded straight into
#              `domains` and `calls` with SQL (seed-postgres.sql: generate_series;
#              seed-sqlite.sql: recursive CTEs), ids UUIDv7 of the start time as the server
#              makes them; then ANALYZE. curl checks sample pages have items; wrk with
#              bench/history/query.lua asks random Domains' first page (limit 50) filtered by
#              one Extension and a random 30-day range, as the platform administrator, at
#              QUERY_CONNS (1 16) connections. The plan of the query is logged (EXPLAIN).
#   export     two more Domains seeded with EXPORT_BIG (100 000) and EXPORT_SMALL (10 000)
#              calls; a freshly started server exports the small one, then the big one (curl,
#              lines counted), the server's peak RSS (VmHWM) read before and after each.
#
# Then nginx (2 workers) answers the same wrk loads: the POSTs with `stored`, the GETs with a
# page the server answered (of the mean size).
#
# Needs: cargo, curl, jq, awk, wrk, nginx, sqlite3; psql for PostgreSQL.
#
#   bench/history/run.sh                    # SQLite
#   bench/history/run.sh sqlite postgres    # both (PostgreSQL at BENCH_POSTGRES_URL)
#   SWITCHBOARD_BIN=target/release/switchboard bench/history/run.sh sqlite postgres  # no build
#   DURATION=15 DOMAINS=1000 CALLS=1000 EXTS=20 DAYS=90 EXPORT_BIG=100000 EXPORT_SMALL=10000 \
#     INGEST_CONNS="16 64" QUERY_CONNS="1 16" MAX_CONNECTIONS=32 bench/history/run.sh  # defaults
#   BENCH_LOG_DIR=/tmp/history-logs bench/history/run.sh   # keep server logs, plans, samples
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
HERE=$ROOT/bench/history
DURATION=${DURATION:-15}
DOMAINS=${DOMAINS:-1000}
CALLS=${CALLS:-1000}
EXTS=${EXTS:-20}
DAYS=${DAYS:-90}
EXPORT_BIG=${EXPORT_BIG:-100000}
EXPORT_SMALL=${EXPORT_SMALL:-10000}
INGEST_DOMAINS=${INGEST_DOMAINS:-10}
INGEST_CONNS=${INGEST_CONNS:-16 64}
QUERY_CONNS=${QUERY_CONNS:-1 16}
MAX_CONNECTIONS=${MAX_CONNECTIONS:-32}
if [ $# -gt 0 ]; then BACKENDS=("$@"); else BACKENDS=(sqlite); fi
ADMIN_EMAIL=bench@switchboard.test
ADMIN_PASSWORD=Bench-Password-Long-Enough-42
XML_CURL_PASSWORD=bench-xml-curl-password
AUTH="Basic $(printf 'freeswitch:%s' "$XML_CURL_PASSWORD" | base64 -w0)"
FIXTURE=$ROOT/tests/fixtures/freeswitch/esl/event-json-channel_hangup_complete.txt

for tool in curl jq awk wrk nginx sqlite3; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install wrk nginx-light curl jq sqlite3)" >&2; exit 2; }
done
[ "$DAYS" -gt 30 ] || { echo "DAYS must be above 30 (the queries ask for 30 days)" >&2; exit 2; }
[ "$EXTS" -ge 2 ] || { echo "EXTS must be at least 2" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench-history.XXXXXX")
SERVER_PID=""
NGINX_PID=""
# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"
trap bench_cleanup EXIT
find_binary
mkdir -p "$WORK/logs"
KEY_FILE=$WORK/secrets.key
NOW=$(date +%s)
CLK_TCK=$(getconf CLK_TCK)

# --- helpers -------------------------------------------------------------------------------

# sql QUERY → the rows (fields separated by a space) on this backend's database.
sql() {
    case $DB_KIND in
        sqlite) sqlite3 -separator ' ' "$DB_FILE" "$1" ;;
        postgres) psql -qAt -F ' ' -v ON_ERROR_STOP=1 "$PG_DB_URL" -c "$1" ;;
    esac
}

# serve: starts the server on this backend's database (BASE, TOKEN, SERVER_PID).
serve() {
    start_server "$DB_URL" SWITCHBOARD_FREESWITCH__XML_CURL__PASSWORD="$XML_CURL_PASSWORD" \
        SWITCHBOARD_DATABASE__MAX_CONNECTIONS="$MAX_CONNECTIONS"
    [ -n "$TOKEN" ] || { cat "$WORK/server.log" >&2; echo "could not log in" >&2; exit 1; }
}

# halt NAME: stops the server, keeping its log as $WORK/logs/NAME.log.
halt() {
    stop_server
    cp "$WORK/server.log" "$WORK/logs/$1.log"
}

# hwrk LUA CONNECTIONS URL → the RESULT fields of the Lua script (wrk's own output is logged);
# WRK_CPU = wrk's CPU seconds (user + system).
hwrk() {
    local threads=2 log TIMEFORMAT='%U %S'
    [ "$2" -ge 2 ] || threads=1
    log=$WORK/logs/wrk-$(basename "$1" .lua)-$2-$RANDOM.txt
    # (`time` of a subshell with redirections reports nothing: a plain command.)
    { time env BENCH_AUTH="$AUTH" BENCH_TOKEN="$TOKEN" \
        wrk -t"$threads" -c"$2" -d"${DURATION}s" --timeout 5s --latency -s "$1" "$3" >"$log" 2>&1; } 2>"$log.time"
    WRK_CPU=$(awk '{ printf "%.1f\n", $1 + $2 }' "$log.time")
    awk '/^RESULT/ { $1 = ""; sub(/^ /, ""); print }' "$log"
}

# cpu_of PID → its user + system CPU seconds so far.
cpu_of() {
    awk -v t="$CLK_TCK" '{ printf "%.2f\n", ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# pg_cpu → CPU seconds of every postgres process so far (the whole cluster; a backend that
# exits meanwhile takes its share with it).
pg_cpu() {
    local p files=()
    for p in $(pgrep -x postgres || true); do files+=("/proc/$p/stat"); done
    [ ${#files[@]} -gt 0 ] || { echo 0; return; }
    { cat "${files[@]}" 2>/dev/null || true; } | awk -v t="$CLK_TCK" '{ s += $14 + $15 } END { printf "%.2f\n", s / t }'
}

# cpu_mark, then cpu_spent → "server postgres wrk": CPU seconds of each since the mark (the
# server: switchboard's, or nginx's workers when NGINX_PID is set; postgres: 0 on SQLite).
cpu_mark() {
    CPU_SRV0=$(srv_cpu)
    CPU_PG0=0
    if [ "${DB_KIND:-}" = postgres ]; then CPU_PG0=$(pg_cpu); fi
}
cpu_spent() {
    local pg=0
    if [ "${DB_KIND:-}" = postgres ]; then pg=$(pg_cpu); fi
    awk -v a="$CPU_SRV0" -v b="$(srv_cpu)" -v c="$CPU_PG0" -v d="$pg" -v w="${WRK_CPU:-0}" \
        'BEGIN { printf "%.1f %.1f %.1f\n", b - a, d - c, w }'
}
srv_cpu() {
    local p s=0
    if [ -n "${NGINX_PID:-}" ]; then
        for p in $(pgrep -P "$NGINX_PID" || true); do
            s=$(awk -v s="$s" -v t="$CLK_TCK" '{ printf "%.2f", s + ($14 + $15) / t }' "/proc/$p/stat" 2>/dev/null || echo "$s")
        done
        echo "$s"
    else
        cpu_of "$SERVER_PID"
    fi
}

# vm FIELD → the server's VmHWM / VmRSS in MiB.
vm() {
    awk -v f="$1:" '$1 == f { printf "%.0f\n", $2 / 1024 }' "/proc/$SERVER_PID/status"
}

# --- the CDRs ------------------------------------------------------------------------------

# cdr_templates: $WORK/leg-a.json and $WORK/leg-b.json, a first leg and its bridged leg as
# mod_json_cdr posts them: every variable of a captured CHANNEL_HANGUP_COMPLETE (its
# `variable_*` headers), with the call's own fields as @NAME@ placeholders (see cdr.lua).
cdr_templates() {
    local leg
    for leg in a b; do
        tail -n +4 "$FIXTURE" | jq -c --arg leg "$leg" '
            (with_entries(select(.key | startswith("variable_")) | .key |= ltrimstr("variable_"))
                | del(.originating_leg_uuid, .is_loopback, .loopback_leg, .sip_gateway_name,
                      .record_ms, .created_uepoch)) as $captured
            | ($captured + {
                uuid: "@UUID@", call_uuid: "@CALL@",
                direction: (if $leg == "a" then "inbound" else "outbound" end),
                start_uepoch: "@START@", profile_start_uepoch: "@START@",
                answer_uepoch: "@ANSWER@", progress_uepoch: "@ANSWER@", bridge_uepoch: "@ANSWER@",
                end_uepoch: "@END@", billsec: "@BILLSEC@", hangup_cause: "NORMAL_CLEARING",
                hangup_cause_q850: "16", switchname: "fs1", dialed_user: "@CEXTNUM@",
                switchboard_domain_id: "@DOMAIN@",
                switchboard_extension_id: (if $leg == "a" then "@EXT@" else "@CEXT@" end),
                switchboard_extension: (if $leg == "a" then "@EXTNUM@" else "@CEXTNUM@" end),
                switchboard_device_id: (if $leg == "a" then "@DEV@" else "@CDEV@" end),
                switchboard_callee_extension_id: "@CEXT@", switchboard_called_extension: "@CEXTNUM@",
                effective_caller_id_name: "Person @EXTNUM@", effective_caller_id_number: "@EXTNUM@",
                callee_id_name: "Person @CEXTNUM@", callee_id_number: "@CEXTNUM@"
              }
              + (if $leg == "b" then {originating_leg_uuid: "@ORIG@", originator: "@ORIG@",
                                      signal_bond: "@ORIG@", last_bridge_to: "@ORIG@"} else {} end)
              ) as $vars
            | {
                "core-uuid": ."Core-UUID", switchname: "fs1",
                channel_data: {state: "CS_REPORTING", direction: $vars.direction,
                               state_number: "11", flags: "0=1;1=1;3=1;38=1;39=1;41=1;54=1;76=1;113=1;114=1;160=1;166=1",
                               caps: "1=1;2=1;3=1;4=1;5=1;6=1;8=1;9=1"},
                callStats: {audio: {inbound: {raw_bytes: 412160, media_bytes: 412160, packet_count: 2396,
                                              media_packet_count: 2396, skip_packet_count: 4, jitter_packet_count: 0,
                                              dtmf_packet_count: 0, cng_packet_count: 0, flush_packet_count: 0,
                                              largest_jb_size: 0, jitter_min_variance: 0, jitter_max_variance: 0,
                                              jitter_loss_rate: 0, jitter_burst_rate: 0, mean_interval: 0,
                                              flaw_total: 0, quality_percentage: 100, mos: 4.5},
                                    outbound: {raw_bytes: 412160, media_bytes: 412160, packet_count: 2396,
                                               media_packet_count: 2396, skip_packet_count: 0, dtmf_packet_count: 0,
                                               cng_packet_count: 0, rtcp_packet_count: 0, rtcp_octet_count: 0}}},
                variables: $vars,
                app_log: {applications: [
                    {app_name: "set", app_data: "switchboard_domain_id=@DOMAIN@", app_stamp: "@START@"},
                    {app_name: "export", app_data: "switchboard_called_extension=@CEXTNUM@", app_stamp: "@START@"},
                    {app_name: "bridge", app_data: "{switchboard_callee_extension_id=@CEXT@}${sofia_contact(*/@CEXTNUM@@t1.history.test)}", app_stamp: "@START@"}]},
                callflow: [{
                    dialplan: "XML", profile_index: "1",
                    extension: {name: "switchboard", number: "@CEXTNUM@",
                                applications: [{app_name: "bridge", app_data: "${sofia_contact(*/@CEXTNUM@@t1.history.test)}"}]},
                    caller_profile: {username: "@EXTNUM@", dialplan: "XML", caller_id_name: "Person @EXTNUM@",
                                     ani: "@EXTNUM@", aniii: "", caller_id_number: "@EXTNUM@",
                                     network_addr: "127.0.0.1", rdnis: "", destination_number: "@CEXTNUM@",
                                     uuid: "@UUID@", source: "mod_sofia", context: "t1.history.test",
                                     chan_name: "sofia/internal/@EXTNUM@@t1.history.test"},
                    times: {created_time: "@PROFILE@", profile_created_time: "@PROFILE@",
                            progress_time: "0", progress_media_time: "0", answered_time: "@ANSWER@",
                            bridged_time: "@ANSWER@", last_hold_time: "0", hold_accum_time: "0",
                            hangup_time: "@END@", resurrect_time: "0", transfer_time: "0"}
                }]
              }' >"$WORK/leg-$leg.json"
    done
}

# cdr LEG NAME=VALUE… → a CDR of the template with the placeholders filled in (for curl).
cdr() {
    local leg=$1 expr="" kv
    shift
    for kv in "$@"; do expr="$expr s|@${kv%%=*}@|${kv#*=}|g;"; done
    sed -e "$expr" "$WORK/leg-$leg.json"
}

post_cdr() { # FILE UUID → "<status> <body>"
    curl -s -o "$WORK/cdr-answer.txt" -w '%{http_code}' -u "freeswitch:$XML_CURL_PASSWORD" \
        -H 'content-type: application/json' --data-binary "@$1" "$BASE/freeswitch/cdr?uuid=$2"
    printf ' %s\n' "$(tr -d '\n' <"$WORK/cdr-answer.txt")"
}

# check_cdrs DOMAIN_ID: a first leg is stored, posting it again is a duplicate, its bridged leg
# is stored and the call then lists with 2 legs — else the run fails.
check_cdrs() {
    local a b ext cext us out
    a=$(cat /proc/sys/kernel/random/uuid)
    b=$(cat /proc/sys/kernel/random/uuid)
    ext=$(cat /proc/sys/kernel/random/uuid)
    cext=$(cat /proc/sys/kernel/random/uuid)
    us=$((NOW * 1000000))
    local common=(DOMAIN="$1" EXT="$ext" EXTNUM=200 DEV="$ext" CEXT="$cext" CEXTNUM=201 CDEV="$cext"
        ANSWER=$((us - 8000000)) END="$us" BILLSEC=8 CALL="$a")
    cdr a "${common[@]}" UUID="$a" START=$((us - 10000000)) PROFILE=$((us - 10000000)) >"$WORK/check-a.json"
    cdr b "${common[@]}" UUID="$b" ORIG="$a" START=$((us - 9980000)) PROFILE=$((us - 9980000)) >"$WORK/check-b.json"
    jq -e . "$WORK/check-a.json" >/dev/null || { echo "the CDR template is not JSON" >&2; exit 1; }
    for expect in "200 stored" "200 duplicate"; do
        out=$(post_cdr "$WORK/check-a.json" "$a")
        [ "$out" = "$expect" ] || { echo "first leg: expected '$expect', got '$out'" >&2; exit 1; }
    done
    out=$(post_cdr "$WORK/check-b.json" "$b")
    [ "$out" = "200 stored" ] || { echo "second leg: expected '200 stored', got '$out'" >&2; exit 1; }
    out=$(api "/api/v1/domains/$1/calls?limit=1" | jq -r '.items[0] | "\(.legs) \(.caller.extension_id) \(.callee.extension_id) \(.callee.device_id)"')
    [ "$out" = "2 $ext $cext $cext" ] || { echo "the checked call lists as '$out', not '2 $ext $cext $cext'" >&2; exit 1; }
    echo "  checked: a first leg is stored, posted again a duplicate, its bridged leg stored, the call lists with 2 legs ($(wc -c <"$WORK/check-a.json") and $(wc -c <"$WORK/check-b.json") bytes)" >&2
}

# pg_waits_sampler FILE: every 0.5 s, what the run's PostgreSQL backends are doing, until killed.
pg_waits_sampler() {
    while :; do
        psql -qAt -F ' ' "$PG_URL" -c "SELECT coalesce(wait_event_type, 'CPU'), coalesce(wait_event, state)
            FROM pg_stat_activity WHERE datname = '$PG_DB' AND pid <> pg_backend_pid()" >>"$1" 2>/dev/null || true
        sleep 0.5
    done
}

ingest() { # LABEL
    local domain_id d c legs0 legs1 r waits cpu sampler=""
    : >"$WORK/ingest-domains.txt"
    for d in $(seq 1 "$INGEST_DOMAINS"); do
        domain_id=$(create_domain "Ingest $d" "i$d.history.test")
        echo "$domain_id" >>"$WORK/ingest-domains.txt"
    done
    check_cdrs "$(head -1 "$WORK/ingest-domains.txt")"
    export BENCH_LEG_A=$WORK/leg-a.json BENCH_LEG_B=$WORK/leg-b.json BENCH_DOMAINS=$WORK/ingest-domains.txt
    for c in $INGEST_CONNS; do
        legs0=$(sql "SELECT count(*) FROM call_legs")
        cpu_mark
        waits=$WORK/logs/pg-waits-$DB_KIND-$c.txt
        if [ "$DB_KIND" = postgres ]; then
            : >"$waits"
            pg_waits_sampler "$waits" &
            sampler=$!
        fi
        hwrk "$HERE/cdr.lua" "$c" "$BASE" >"$WORK/r.txt"
        r=$(cat "$WORK/r.txt")
        [ -n "$sampler" ] && { kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; sampler=""; }
        cpu=$(cpu_spent)
        sleep 2 # requests in flight when wrk stopped
        legs1=$(sql "SELECT count(*) FROM call_legs")
        [ -n "$r" ] || { echo "wrk gave no result (see $WORK/logs)" >&2; exit 1; }
        # rps p50 p99 max requests non2xx socket stored duplicate 503 legs cpu_server cpu_pg cpu_wrk
        printf '%s\t%s\t%s %s %s\n' "$1" "$c" "$r" $((legs1 - legs0)) "$cpu" >>"$INGEST_RESULTS"
        echo "  $c connections: $r; legs stored $((legs1 - legs0)); CPU s (server postgres wrk): $cpu" >&2
        if [ "$DB_KIND" = postgres ] && [ -s "$waits" ]; then
            echo "    PostgreSQL backends of the run, sampled every 0.5 s (wait event type, event: share of samples):" >&2
            sort "$waits" | uniq -c | sort -rn | head -8 \
                | awk -v n="$(wc -l <"$waits")" '{ c = $1; $1 = ""; printf "      %s: %.0f %%\n", $0, 100 * c / n }' >&2
        fi
    done
    printf "%s: calls after ingestion by number of legs: %s\n" "$1" "$(sql "SELECT legs || ' legs: ' || count(*) FROM calls GROUP BY legs ORDER BY legs" | paste -sd, -)" | tee -a "$SEED_NOTES" >&2
    grep -ciE ' (ERROR|WARN) ' "$WORK/server.log" | sed 's/^/    warnings and errors in the server log: /' >&2 || true
}

# --- the seeded history --------------------------------------------------------------------

# seed PREFIX DOMAINS CALLS → "domain_id extension_id" lines of what it seeded.
seed() {
    case $DB_KIND in
        postgres)
            psql -qAt -F ' ' "$PG_DB_URL" -v prefix="$1" -v domains="$2" -v calls="$3" -v exts="$EXTS" \
                -v days="$DAYS" -v now="$NOW" -f "$HERE/seed-postgres.sql"
            ;;
        sqlite)
            {
                printf '.parameter set :prefix %s\n' "$1"
                printf '.parameter set :domains %s\n.parameter set :calls %s\n' "$2" "$3"
                printf '.parameter set :exts %s\n.parameter set :days %s\n.parameter set :now %s\n' "$EXTS" "$DAYS" "$NOW"
                # The 256 one-byte blobs (SQLite 3.40 has no unhex()).
                echo "CREATE TEMP TABLE bench_byte (i INTEGER PRIMARY KEY, b BLOB NOT NULL);"
                awk 'BEGIN { printf "INSERT INTO bench_byte VALUES "; for (i = 0; i < 256; i++) printf "%s(%d, X'"'"'%02X'"'"')", (i ? "," : ""), i, i; print ";" }'
                cat "$HERE/seed-sqlite.sql"
            } | sqlite3 -separator ' ' "$DB_FILE"
            ;;
    esac
}

# A 30-day range starting DAYS_AGO days before the seed's now, URL-encoded (RFC 3339).
range() { # DAYS_AGO
    local from=$((NOW - $1 * 86400))
    printf 'from=%s&to=%s' "$(date -u -d "@$from" +%Y-%m-%dT%H%%3A%M%%3A%SZ)" \
        "$(date -u -d "@$((from + 30 * 86400))" +%Y-%m-%dT%H%%3A%M%%3A%SZ)"
}

# check_queries: 20 random pairs, each a 30-day page; every page answers 200 with items, in
# newest-first order, all in the range, all the Extension's. Keeps the pages in $WORK/pages/.
check_queries() {
    local d e n=0 items=0 k page
    mkdir -p "$WORK/pages"
    while read -r d e; do
        n=$((n + 1))
        page=$WORK/pages/$n.json
        api "/api/v1/domains/$d/calls?extension_id=$e&$(range $((30 + RANDOM % (DAYS - 30))))&limit=50" >"$page" \
            || { echo "the query of $d / $e failed" >&2; exit 1; }
        k=$(jq --arg e "$e" '[.items[] | select(.caller.extension_id == $e or .callee.extension_id == $e)] | length' "$page")
        [ "$k" = "$(jq '.items | length' "$page")" ] || { echo "a page holds another Extension's calls" >&2; exit 1; }
        jq -e '[.items[].started_at] as $t | $t == ($t | sort | reverse)' "$page" >/dev/null \
            || { echo "a page is not newest first" >&2; exit 1; }
        items=$((items + k))
    done < <(shuf -n 20 "$WORK/pairs.txt")
    [ "$items" -gt 0 ] || { echo "no sample query returned a call" >&2; exit 1; }
    # The whole 90 days of one Extension: the same number of calls as the table holds.
    read -r d e < <(head -1 "$WORK/pairs.txt")
    echo "  checked $n sample pages (30 days, one Extension): $items calls, $((items / n)) per page on average, all the Extension's, newest first; whole range of $d / $e: $(api "/api/v1/domains/$d/calls?extension_id=$e&limit=500" | jq '.items | length') calls" >&2
}

# explain: the list query's plan for one sample, as the server sends it (ORDER BY id DESC
# LIMIT 51), into $WORK/logs/explain-<db>.txt and on stderr.
explain() {
    local d e from to out=$WORK/logs/explain-$DB_KIND.txt
    read -r d e < <(sed -n 2p "$WORK/pairs.txt")
    from=$(((NOW - 60 * 86400) * 1000))
    to=$(((NOW - 30 * 86400) * 1000))
    case $DB_KIND in
        postgres)
            psql -q "$PG_DB_URL" >"$out" <<SQL
CREATE FUNCTION pg_temp.v7(ms bigint, tail text) RETURNS uuid LANGUAGE sql AS
  \$\$ SELECT (lpad(to_hex(ms), 12, '0') || tail)::uuid \$\$;
EXPLAIN (ANALYZE, BUFFERS)
SELECT * FROM calls
 WHERE domain_id = '$d' AND id BETWEEN pg_temp.v7($from, '70008000000000000000') AND pg_temp.v7($to, '7fffbfffffffffffffff')
   AND (caller_extension_id = '$e' OR callee_extension_id = '$e')
 ORDER BY id DESC LIMIT 51;
-- The server's statement is prepared (sqlx): after five runs PostgreSQL may use its generic plan.
SET plan_cache_mode = force_generic_plan;
PREPARE page(uuid, uuid, uuid, uuid, uuid, bigint) AS
SELECT * FROM calls WHERE domain_id = \$1 AND id BETWEEN \$2 AND \$3
   AND (caller_extension_id = \$4 OR callee_extension_id = \$5) ORDER BY id DESC LIMIT \$6;
EXPLAIN (ANALYZE, BUFFERS)
EXECUTE page('$d', pg_temp.v7($from, '70008000000000000000'), pg_temp.v7($to, '7fffbfffffffffffffff'), '$e', '$e', 51);
SQL
            ;;
        sqlite)
            local dh eh
            dh=${d//-/}
            eh=${e//-/}
            printf 'ms bounds %s..%s\n' "$from" "$to" >"$out"
            sqlite3 "$DB_FILE" "EXPLAIN QUERY PLAN SELECT * FROM calls WHERE domain_id = X'$dh'
                AND id BETWEEN X'$(printf '%012x' "$from")70008000000000000000' AND X'$(printf '%012x' "$to")7fffbfffffffffffffff'
                AND (caller_extension_id = X'$eh' OR callee_extension_id = X'$eh') ORDER BY id DESC LIMIT 51" >>"$out"
            ;;
    esac
    echo "  the list query's plan ($DB_KIND):" >&2
    sed 's/^/    /' "$out" >&2
}

export_csv() { # LABEL DOMAIN_ID CALLS
    local hwm0 hwm1 rss t0 t1 lines bytes
    hwm0=$(vm VmHWM)
    t0=$(date +%s.%N)
    curl -sf -H "authorization: Bearer $TOKEN" "$BASE/api/v1/domains/$2/calls.csv" >"$WORK/export.csv" \
        || { echo "the export of $2 failed" >&2; exit 1; }
    t1=$(date +%s.%N)
    hwm1=$(vm VmHWM)
    rss=$(vm VmRSS)
    lines=$(wc -l <"$WORK/export.csv")
    bytes=$(wc -c <"$WORK/export.csv")
    [ "$lines" = $(($3 + 1)) ] || echo "  WARNING: the export of $3 calls has $lines lines, not $(($3 + 1))" >&2
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$3" "$lines" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" \
        "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')" "$hwm0" "$hwm1" "$rss" >>"$EXPORT_RESULTS"
    echo "  export of $3 calls: $lines lines, $bytes bytes in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s; VmHWM $hwm0 → $hwm1 MiB, VmRSS $rss MiB" >&2
    rm -f "$WORK/export.csv"
}

# --- one database --------------------------------------------------------------------------

INGEST_RESULTS=$WORK/ingest.tsv
QUERY_RESULTS=$WORK/query.tsv
EXPORT_RESULTS=$WORK/export.tsv
SEED_NOTES=$WORK/seed-notes.txt
: >"$INGEST_RESULTS"
: >"$QUERY_RESULTS"
: >"$EXPORT_RESULTS"
: >"$SEED_NOTES"
cdr_templates

bench_backend() { # LABEL
    local c r t0 t1 big small
    echo "$1: CDR ingestion into $INGEST_DOMAINS Domains…" >&2
    serve
    ingest "$1"
    halt "server-$DB_KIND-ingest"

    echo "$1: seeding $DOMAINS Domains × $CALLS calls ($EXTS Extensions each, $DAYS days) and the export Domains ($EXPORT_BIG, $EXPORT_SMALL calls) with SQL…" >&2
    t0=$(date +%s.%N)
    seed h "$DOMAINS" "$CALLS" >"$WORK/pairs.txt"
    big=$(seed xb 1 "$EXPORT_BIG" | head -1 | cut -d' ' -f1)
    small=$(seed xs 1 "$EXPORT_SMALL" | head -1 | cut -d' ' -f1)
    case $DB_KIND in
        postgres) psql -q "$PG_DB_URL" -c 'VACUUM ANALYZE' -c 'CHECKPOINT' >/dev/null ;;
        sqlite) sqlite3 "$DB_FILE" 'ANALYZE' ;;
    esac
    t1=$(date +%s.%N)
    printf '%s: seeded %s calls in %s s (ANALYZE included); calls table now %s rows\n' "$1" \
        $((DOMAINS * CALLS + EXPORT_BIG + EXPORT_SMALL)) "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')" \
        "$(sql 'SELECT count(*) FROM calls')" | tee -a "$SEED_NOTES" >&2
    [ "$(wc -l <"$WORK/pairs.txt")" = $((DOMAINS * EXTS)) ] || { echo "the seed printed $(wc -l <"$WORK/pairs.txt") pairs, not $((DOMAINS * EXTS))" >&2; exit 1; }

    serve
    check_queries
    explain
    export BENCH_PAIRS=$WORK/pairs.txt BENCH_NOW=$NOW BENCH_DAYS=$DAYS
    for c in $QUERY_CONNS; do
        cpu_mark
        hwrk "$HERE/query.lua" "$c" "$BASE" >"$WORK/r.txt"
        r=$(cat "$WORK/r.txt")
        [ -n "$r" ] || { echo "wrk gave no result (see $WORK/logs)" >&2; exit 1; }
        echo "  query, $c connections: $r; CPU s (server postgres wrk): $(cpu_spent)" >&2
        printf '%s\t%s\t%s %s\n' "$1" "$c" "$r" "$(cpu_spent)" >>"$QUERY_RESULTS"
    done
    halt "server-$DB_KIND-query"

    echo "$1: CSV export, a freshly started server…" >&2
    serve
    export_csv "$1" "$small" "$EXPORT_SMALL"
    export_csv "$1" "$big" "$EXPORT_BIG"
    export_csv "$1" "$small" "$EXPORT_SMALL"
    halt "server-$DB_KIND-export"
}

for backend in "${BACKENDS[@]}"; do
    case $backend in
        sqlite)
            DB_KIND=sqlite
            DB_FILE=$WORK/bench.db
            DB_URL="sqlite://$DB_FILE?mode=rwc"
            bench_backend "switchboard, SQLite"
            rm -f "$WORK/bench.db"*
            ;;
        postgres)
            postgres_ready || { echo "postgres: skipped, nothing answers at $PG_URL (or psql is missing)" >&2; continue; }
            DB_KIND=postgres
            create_pg_database "switchboard_bench_history_$$"
            DB_URL=$PG_DB_URL
            bench_backend "switchboard, PostgreSQL"
            drop_pg_database
            ;;
        *) echo "unknown backend $backend (sqlite or postgres)" >&2; exit 2 ;;
    esac
done

# --- nginx, the same loads -----------------------------------------------------------------

# A page of the mean size among the checked ones, for the GETs.
mean=$(cat "$WORK"/pages/*.json | wc -c)
mean=$((mean / $(find "$WORK/pages" -name '*.json' | wc -l)))
sample=$(for f in "$WORK"/pages/*.json; do echo "$(wc -c <"$f") $f"; done \
    | awk -v m="$mean" '{ d = $1 - m; if (d < 0) d = -d; print d, $2 }' | sort -n | head -1 | cut -d' ' -f2)
DB_KIND=none
NGINX_PORT=$(free_port)
mkdir -p "$WORK/www"
cp "$sample" "$WORK/www/page.json"
echo stored >"$WORK/stored.txt"
start_nginx "$WORK/stored.txt"
echo "nginx: answering the CDR POSTs with 'stored'…" >&2
for c in $INGEST_CONNS; do
    cpu_mark
    hwrk "$HERE/cdr.lua" "$c" "$NGINX_URL" >"$WORK/r.txt"
    r=$(cat "$WORK/r.txt")
    echo "  $c connections: $r; CPU s (nginx, -, wrk): $(cpu_spent)" >&2
    printf 'nginx (fixed answer)\t%s\t%s 0 %s\n' "$c" "$r" "$(cpu_spent)" >>"$INGEST_RESULTS"
done
# The same nginx, a location serving the page for the GETs (a `return` holds at most 4 KiB).
sed -i "s#location / {#location /api/ { default_type application/json; root $WORK/www; try_files /page.json =404; }\n        location / {#" "$WORK/nginx/nginx.conf"
kill -HUP "$NGINX_PID"
sleep 1
curl -sf -o /dev/null "$NGINX_URL/api/v1/domains/x/calls?limit=50" || { echo "nginx does not serve the page" >&2; exit 1; }
echo "nginx: answering the GETs with a fixed page of $(wc -c <"$WORK/www/page.json") bytes…" >&2
for c in $QUERY_CONNS; do
    cpu_mark
    hwrk "$HERE/query.lua" "$c" "$NGINX_URL" >"$WORK/r.txt"
    r=$(cat "$WORK/r.txt")
    echo "  $c connections: $r; CPU s (nginx, -, wrk): $(cpu_spent)" >&2
    printf 'nginx (fixed page)\t%s\t%s %s\n' "$c" "$r" "$(cpu_spent)" >>"$QUERY_RESULTS"
done
stop_nginx

# --- the tables ----------------------------------------------------------------------------

echo
echo "Machine: $(machine); $(rustc --version 2>/dev/null || echo rustc ?), release build; $(psql --version 2>/dev/null | head -1 || true); SQLite $(sqlite3 --version | cut -d' ' -f1) (CLI); database pool $MAX_CONNECTIONS; wrk -t2 (-t1 at 1 connection), ${DURATION}s per run, on the same machine; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "CDR ingestion (\`POST /freeswitch/cdr\`, $(wc -c <"$WORK/leg-a.json")-byte CDRs, first and bridged legs in turn, $INGEST_DOMAINS Domains):"
echo
echo "| server | connections | CDRs/s | share of nginx | p50 ms | p99 ms | max ms | 200 answers | non-2xx | 503 | legs stored | lost | CPU s server / postgres / wrk |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '
    { split($3, r, " "); line[NR] = $1; conns[NR] = $2; for (k = 1; k <= 14; k++) f[NR, k] = r[k]
      if ($1 ~ /^nginx/) nrps[$2] = r[1] }
    END {
        for (i = 1; i <= NR; i++) {
            nginx = line[i] ~ /^nginx/
            share = (!nginx && nrps[conns[i]] > 0) ? sprintf("%.0f %%", 100 * f[i, 1] / nrps[conns[i]]) : ""
            ok = f[i, 8] + f[i, 9]
            lost = nginx ? "" : (f[i, 11] >= f[i, 8] ? 0 : f[i, 8] - f[i, 11])
            printf "| %s | %s | %.0f | %s | %.2f | %.2f | %.1f | %d | %d | %s | %s | %s | %s / %s / %s |\n", line[i], conns[i], f[i, 1], share,
                f[i, 2], f[i, 3], f[i, 4], ok, f[i, 6], nginx ? "" : f[i, 10], nginx ? "" : f[i, 11], lost,
                f[i, 12], (f[i, 13] > 0 ? f[i, 13] : "–"), f[i, 14]
        }
    }' "$INGEST_RESULTS"
echo
echo "History query (\`GET …/calls?extension_id=…&from=…&to=…&limit=50\`, 30 days of one Extension, random among $DOMAINS Domains × $EXTS Extensions; $((DOMAINS * CALLS)) calls over $DAYS days):"
echo
echo "| server | connections | requests/s | p50 ms | p99 ms | max ms | non-2xx | empty pages | bytes/answer | CPU s server / postgres / wrk |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '{ split($3, r, " ")
    printf "| %s | %s | %.0f | %.2f | %.2f | %.1f | %d | %d | %d | %s / %s / %s |\n", $1, $2, r[1], r[2], r[3], r[4], r[6] + r[7], r[9], r[10],
        r[11], (r[12] > 0 ? r[12] : "–"), r[13] }' "$QUERY_RESULTS"
echo
echo "CSV export (\`GET …/calls.csv\`; a fresh server, exports in this order):"
echo
echo "| server | calls | lines | seconds | calls/s | MiB | VmHWM before (MiB) | VmHWM after (MiB) | VmRSS after (MiB) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '{ printf "| %s | %d | %d | %.2f | %.0f | %.1f | %d | %d | %d |\n", $1, $2, $3, $4, ($4 > 0 ? $2 / $4 : 0), $5, $6, $7, $8 }' "$EXPORT_RESULTS"
echo
cat "$SEED_NOTES"
