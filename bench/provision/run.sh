#!/usr/bin/env bash
# Provisioning boot storm: DOMAINS (100) Domains × PER_DOMAIN (100) Yealink T54W phones fetching
# their files (`GET /provision/<mac>.cfg`) at once, each with its own credential (HTTP basic), on
# SQLite and on PostgreSQL, next to nginx serving the same files pre-rendered with the same wrk
# load (the practical ceiling of HTTP on this machine).
#
# For each database, on a fresh database of its own:
#
#   seed    through the API: per Domain a logged-out Model Layout for the T54W (a login key and a
#           speed dial) and, through `POST …/import`, PER_DOMAIN hot-desk Devices (a MAC each,
#           vendor Yealink, model T54W); then every Device's provisioning credential
#           (`GET …/devices/{id}/provisioning/credential`, one request per Device, CRED_JOBS
#           curls in parallel, each keeping its connection) into the wrk script's list of phones.
#   restart the server (PostgreSQL: VACUUM ANALYZE and CHECKPOINT first), so that nothing is
#           compiled: the state after an upgrade or a power cut, when every phone reboots.
#   cold    the first pass: wrk (THREADS threads, the last of CONNS connections) sends every
#           phone once, in the list's order: ORDER=shuffled (the default: the phones of every
#           Domain at once, as after a power cut; the same order in every run) or ORDER=domains
#           (Domain by Domain, one tenant's phones after another's); timed until each phone has
#           had its file (200). The first fetch of a Domain compiles it (one compile at a time per Domain; the
#           others wait for it), each phone's file is rendered on its first fetch, and each
#           served fetch is recorded on its Device (a database write in a task of its own, at
#           most once a minute per Device): also reported, how long after the pass the last of
#           these writes landed.
#   files   every phone's file fetched once more with curl (each must be 200), written into
#           nginx's root under the same name: the pre-rendered files of the reference.
#   storm   wrk with bench/provision/phones.lua for DURATION (15) s at each of CONNS (64)
#           connections: the phones in turn, round and round, each thread from its own offset;
#           every file is then served from memory (and nothing recorded: less than a minute
#           has passed). Right after each, the same storm against nginx.
#
# The server logs at `info` like the other benchmarks (every fetch writes one line, target
# `switchboard::provision`); LOGS (default "info quiet") adds a second server on the same
# database with `info,switchboard::provision=warn` (the fetch lines off): cold pass and storms
# again.
#
# The reference: nginx (2 workers, sendfile and tcp_nopush on as in Debian's nginx.conf, access
# log off) serving the files from disk under the same paths, **without authentication** (the
# `Authorization` header is sent and ignored): the same wrk script, threads, connections and
# duration, run right after each switchboard storm (other load on a shared machine changes from
# minute to minute: each ratio compares neighbours).
#
# Needs: cargo, curl, jq, awk, wrk, nginx; sqlite3 for SQLite, psql for PostgreSQL. About 4–5
# minutes with the defaults on 2 cores.
#
#   bench/provision/run.sh                      # SQLite and PostgreSQL
#   bench/provision/run.sh sqlite               # one database
#   DOMAINS=100 PER_DOMAIN=100 DURATION=15 CONNS="16 64" THREADS=2 CRED_JOBS=4 COLD_MAX=120 \
#     LOGS=info ORDER=domains bench/provision/run.sh   # the knobs (defaults but CONNS, LOGS, ORDER)
#   SWITCHBOARD_BIN=/work/target-bench/release/switchboard bench/provision/run.sh   # no build
#   BENCH_LOG_DIR=/tmp/provision-logs bench/provision/run.sh   # keep server logs and wrk output
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
HERE=$ROOT/bench/provision
DOMAINS=${DOMAINS:-100}
PER_DOMAIN=${PER_DOMAIN:-100}
DURATION=${DURATION:-15}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
CRED_JOBS=${CRED_JOBS:-4}
COLD_MAX=${COLD_MAX:-120}
LOGS=${LOGS:-info quiet}
ORDER=${ORDER:-shuffled}
if [ $# -gt 0 ]; then BACKENDS=("$@"); else BACKENDS=(sqlite postgres); fi
ADMIN_EMAIL=bench@switchboard.test
ADMIN_PASSWORD=Bench-Password-Long-Enough-42
PHONES=$((DOMAINS * PER_DOMAIN))

for tool in curl jq awk wrk nginx; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install wrk nginx-light curl jq)" >&2; exit 2; }
done
case " ${BACKENDS[*]} " in *" sqlite "*) command -v sqlite3 >/dev/null || { echo "sqlite3 is needed" >&2; exit 2; } ;; esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench-provision.XXXXXX")
SERVER_PID=""
NGINX_PID=""
# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"
trap bench_cleanup EXIT
find_binary
mkdir -p "$WORK/logs" "$WORK/nginx/root/provision"
KEY_FILE=$WORK/secrets.key
CLK_TCK=$(getconf CLK_TCK)
RESULTS=$WORK/results.tsv
: >"$RESULTS"

# --- helpers -------------------------------------------------------------------------------

# serve LOG: starts the server on this backend's database with provisioning open to basic
# authentication over plain HTTP and no throttling (every phone is 127.0.0.1 here); LOG is
# `info` or `quiet` (the fetch lines off).
serve() {
    local level=info
    [ "$1" = quiet ] && level='info,switchboard::provision=warn'
    start_server "$DB_URL" \
        SWITCHBOARD_LOG__LEVEL="$level" \
        SWITCHBOARD_PROVISIONING__ALLOW_BASIC_WITHOUT_TLS=true \
        SWITCHBOARD_PROVISIONING__MAX_FAILURES=4000000000
    [ -n "$TOKEN" ] || { cat "$WORK/server.log" >&2; echo "could not log in" >&2; exit 1; }
}

# halt NAME: stops the server, keeping its log as $WORK/logs/NAME.log, with the first 1 000
# fetch lines only (a storm writes about a million) and their outcomes counted at the end.
halt() {
    stop_server
    awk '/switchboard::provision/ { n++; if (match($0, /outcome="?[a-z_]+/)) { k = substr($0, RSTART + 8, RLENGTH - 8); gsub(/"/, "", k); o[k]++ } if (n > 1000) next }
         { print }
         END { for (k in o) printf "(bench: %d fetch lines in all, outcome %s: %d)\n", n, k, o[k] }' \
        "$WORK/server.log" >"$WORK/logs/$1.log"
}

# cpu_of PID → its user + system CPU seconds so far.
cpu_of() {
    awk -v t="$CLK_TCK" '{ printf "%.2f\n", ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# srv_cpu → CPU seconds so far of switchboard, or of nginx's workers when MEASURE=nginx.
MEASURE=server
srv_cpu() {
    local p s=0
    if [ "$MEASURE" = nginx ]; then
        for p in $(pgrep -P "$NGINX_PID" || true); do
            s=$(awk -v s="$s" -v t="$CLK_TCK" '{ printf "%.2f", s + ($14 + $15) / t }' "/proc/$p/stat" 2>/dev/null || echo "$s")
        done
        echo "$s"
    else
        cpu_of "$SERVER_PID"
    fi
}

# pwrk MODE CONNECTIONS URL SECONDS → the RESULT fields of phones.lua ("requests/s p50 p99
# errors"); WRK_CPU = wrk's CPU seconds, SRV_CPU = the server's (or nginx's) during the run
# (call it with its output redirected, not in `$(…)`, to keep them). A cold pass ends when every
# wrk thread has written its done file (SIGINT, repeated until wrk exits: a signal taken by one
# of wrk's threads that is still winding down does not end wrk's sleep).
pwrk() {
    local log cpu0 wpid k all
    log=$WORK/logs/wrk-$1-$2-$RANDOM.txt
    rm -rf "$WORK/cold"
    mkdir -p "$WORK/cold"
    cpu0=$(srv_cpu)
    if [ "$1" = storm ]; then
        local TIMEFORMAT='%U %S'
        { time env BENCH_MODE=storm BENCH_PHONES="$WORK/phones.txt" BENCH_THREADS="$THREADS" \
            wrk -t"$THREADS" -c"$2" -d"${4}s" --timeout 5s --latency -s "$HERE/phones.lua" "$3" >"$log" 2>&1; } 2>"$log.time"
        WRK_CPU=$(awk '{ printf "%.1f\n", $1 + $2 }' "$log.time")
    else
        # `env` execs wrk: $! is wrk.
        env BENCH_MODE=cold BENCH_PHONES="$WORK/phones.txt" BENCH_THREADS="$THREADS" BENCH_COLD_DIR="$WORK/cold" \
            wrk -t"$THREADS" -c"$2" -d"${4}s" --timeout 5s --latency -s "$HERE/phones.lua" "$3" >"$log" 2>&1 &
        wpid=$!
        WRK_CPU=0
        while [ "$(awk '{ print $3 }' "/proc/$wpid/stat" 2>/dev/null || echo gone)" != gone ] \
            && [ "$(awk '{ print $3 }' "/proc/$wpid/stat" 2>/dev/null)" != Z ]; do
            WRK_CPU=$(cpu_of "$wpid")
            all=1
            for k in $(seq 0 $((THREADS - 1))); do [ -f "$WORK/cold/done.$k" ] || all=0; done
            if [ $all = 1 ]; then
                kill -INT "$wpid" 2>/dev/null || true
                sleep 0.2
            else
                sleep 0.05
            fi
        done
        wait "$wpid" || true
    fi
    SRV_CPU=$(awk -v a="$cpu0" -v b="$(srv_cpu)" 'BEGIN { printf "%.2f\n", b - a }')
    awk '/^RESULT/ { $1 = ""; sub(/^ /, ""); print }' "$log"
}

# cold_seconds → seconds from the first thread's start to the last thread's end of a cold
# pass, or "incomplete" when a thread did not get every file of its share.
cold_seconds() {
    local k
    for k in $(seq 0 $((THREADS - 1))); do
        [ -f "$WORK/cold/done.$k" ] || { echo incomplete; return; }
    done
    awk 'FILENAME ~ /start/ { if (s == "" || $1 < s) s = $1 } FILENAME ~ /done/ { if ($1 > e) e = $1 }
         END { printf "%.2f\n", e - s }' "$WORK"/cold/start.* "$WORK"/cold/done.*
}

# --- the data ------------------------------------------------------------------------------

# device_rows DOMAIN_NUMBER: PER_DOMAIN hot-desk Yealink T54W, MACs 00:15:65 followed by the
# phone's number (Domain × PER_DOMAIN + i) on six hex digits.
device_rows() {
    awk -v n="$PER_DOMAIN" -v d="$1" 'BEGIN {
        printf "{\"devices\": ["
        for (i = 0; i < n; i++) {
            m = sprintf("%06x", d * n + i)
            printf "%s{\"label\": \"Desk %d-%d\", \"mode\": \"hotdesk\", \"mac_address\": \"00:15:65:%s:%s:%s\", \"vendor\": \"Yealink\", \"model\": \"T54W\"}", (i ? "," : ""), d, i, substr(m, 1, 2), substr(m, 3, 2), substr(m, 5, 2)
        }
        print "]}"
    }'
}

LAYOUT='{"name": "Out", "model": "yealink-t54w", "logged_out": true, "keys": [{"kind": "login"}, {"kind": "speed_dial", "number": "100", "label": "Reception"}]}'

# seed: the Domains, their layout and Devices; $WORK/devices.txt: "domain id sip_username mac".
seed() {
    local d domain_id cursor page
    : >"$WORK/devices.txt"
    for d in $(seq 1 "$DOMAINS"); do
        domain_id=$(create_domain "Tenant $d" "t$d.provision.test")
        api_send POST "/api/v1/domains/$domain_id/provisioning/layouts" "$LAYOUT" >/dev/null
        device_rows "$d" >"$WORK/rows.json"
        import_rows "$domain_id" "$WORK/rows.json"
        cursor=""
        while :; do
            page=$(api "/api/v1/domains/$domain_id/devices?limit=500${cursor:+&cursor=$cursor}")
            jq -r --arg d "$domain_id" '.items[] | "\($d) \(.id) \(.sip_username) \(.mac_address)"' <<<"$page" >>"$WORK/devices.txt"
            cursor=$(jq -r '.next_cursor // empty' <<<"$page")
            [ -n "$cursor" ] || break
        done
        if [ $((d % 25)) = 0 ]; then echo "  seeded $d of $DOMAINS Domains" >&2; fi
    done
    [ "$(wc -l <"$WORK/devices.txt")" = "$PHONES" ] || { echo "expected $PHONES Devices, listed $(wc -l <"$WORK/devices.txt")" >&2; exit 1; }
}

# credentials: every Device's provisioning credential (one audited read each) → $WORK/phones.txt,
# "/provision/<mac>.cfg Basic <base64 of user:password>" per phone, in ORDER.
credentials() {
    rm -rf "$WORK/cred"
    mkdir -p "$WORK/cred"
    awk -v b="$BASE" '{ print b "/api/v1/domains/" $1 "/devices/" $2 "/provisioning/credential" }' \
        "$WORK/devices.txt" >"$WORK/cred-urls.txt"
    # Each curl keeps one connection for its URLs and writes a file of its own (parallel
    # writers on one pipe could interleave their answers).
    TOKEN=$TOKEN xargs -P "$CRED_JOBS" -n 250 sh -c \
        'curl -sf -H "authorization: Bearer $TOKEN" "$@" >"$(mktemp -p "$0" cred.XXXXXX)"' "$WORK/cred" \
        <"$WORK/cred-urls.txt" || true
    cat "$WORK"/cred/cred.* | jq -r '"\(.username) Basic \("\(.username):\(.password)" | @base64)"' >"$WORK/cred.txt"
    awk 'NR == FNR { auth[$1] = $2 " " $3; next }
         ($3 in auth) { m = $4; gsub(/[:.-]/, "", m); print "/provision/" tolower(m) ".cfg " auth[$3] }' \
        "$WORK/cred.txt" "$WORK/devices.txt" >"$WORK/phones.in-order.txt"
    if [ "$ORDER" = domains ]; then
        cp "$WORK/phones.in-order.txt" "$WORK/phones.txt"
    else
        # The same order in every run (a fixed random source).
        shuf --random-source=<(yes) "$WORK/phones.in-order.txt" >"$WORK/phones.txt"
    fi
    [ "$(wc -l <"$WORK/phones.txt")" = "$PHONES" ] || { echo "expected $PHONES credentials, got $(wc -l <"$WORK/phones.txt")" >&2; exit 1; }
}

# prerender: every phone's file once more (curl, 8 at a time), each must be 200, written into
# nginx's root under its own name.
prerender() {
    awk -v b="$BASE" -v root="$WORK/nginx/root" '{
        auth = $2 " " $3
        printf "%surl = \"%s%s\"\nheader = \"Authorization: %s\"\noutput = \"%s%s\"\nwrite-out = \"%%{http_code}\\n\"\n", (NR > 1 ? "next\n" : ""), b, $1, auth, root, $1
    }' "$WORK/phones.txt" >"$WORK/prerender.curl"
    curl -s -Z --parallel-max 8 -K "$WORK/prerender.curl" >"$WORK/prerender.codes" 2>"$WORK/logs/prerender.err" || true
    local ok
    ok=$(grep -c '^200$' "$WORK/prerender.codes" || true)
    [ "$ok" = "$PHONES" ] || { echo "prerender: $ok of $PHONES files answered 200:" >&2; sort "$WORK/prerender.codes" | uniq -c >&2; exit 1; }
    grep -q '^linekey\.1\.type' "$WORK/nginx/root$(head -1 "$WORK/phones.txt" | cut -d' ' -f1)" \
        || { echo "the files have no keys:" >&2; head -40 "$WORK/nginx/root$(head -1 "$WORK/phones.txt" | cut -d' ' -f1)" >&2; exit 1; }
}

# recorded_since TIMESTAMP → how many Devices have a fetch recorded at or after it (UTC,
# `YYYY-MM-DDTHH:MM:SS`): each served fetch writes when, from where and with which agent onto
# its Device, in a task of its own, at most once a minute per Device.
recorded_since() {
    case $DB_KIND in
        sqlite) sqlite3 "$DB_FILE" "SELECT count(*) FROM devices WHERE last_provisioned_at >= '$1'" ;;
        postgres) psql -qAt "$PG_DB_URL" -c "SELECT count(*) FROM devices WHERE last_provisioned_at >= '${1}Z'" ;;
    esac
}

# record LABEL CONNECTIONS "RESULT fields" PASS EXTRA: a row of the table (PASS: cold, storm or
# ref; EXTRA: the cold pass's seconds and the seconds until every fetch was recorded, or -).
record() {
    printf '%s\t%s\t%s %s %s %s %s %s\n' "$1" "$2" "$3" "$SRV_CPU" "$WRK_CPU" "$4" "$5" \
        "$(cut -d' ' -f1 /proc/loadavg)" >>"$RESULTS"
}

# start_file_nginx: nginx (2 workers) serving $WORK/nginx/root, sendfile and tcp_nopush on as in
# Debian's nginx.conf, the same `Cache-Control: no-store` as switchboard, no authentication.
# Sets NGINX_PID and NGINX_URL.
start_file_nginx() {
    NGINX_PORT=$(free_port)
    cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes 2;
daemon off;
user root;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    keepalive_requests 1000000;
    types { }
    default_type text/plain;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/nginx/root;
        location /provision/ {
            add_header Cache-Control no-store;
        }
    }
}
CONF
    nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
    NGINX_PID=$!
    NGINX_URL=http://127.0.0.1:$NGINX_PORT
    local first
    first=$(head -1 "$WORK/phones.txt" | cut -d' ' -f1)
    for _ in $(seq 1 50); do
        curl -sf -o "$WORK/nginx-first.cfg" "$NGINX_URL$first" && break
        sleep 0.1
    done
    cmp -s "$WORK/nginx-first.cfg" "$WORK/nginx/root$first" \
        || { cat "$WORK/nginx/error.log" >&2; echo "nginx does not serve the files" >&2; exit 1; }
}

# nginx_storm CONNECTIONS: the same storm against nginx, right after switchboard's (the other
# load on this machine changes from minute to minute; each ratio compares neighbours).
nginx_storm() {
    local r
    MEASURE=nginx
    pwrk storm "$1" "$NGINX_URL" "$DURATION" >"$WORK/r.txt"
    MEASURE=server
    r=$(cat "$WORK/r.txt")
    echo "    nginx, $1 connections: $r; CPU s nginx $SRV_CPU, wrk $WRK_CPU" >&2
    record "nginx, pre-rendered files (no auth)" "$1" "$r" ref -
}

# --- each database -------------------------------------------------------------------------

bench_backend() { # BACKEND
    local log r c cold rss label since recorded t0 n
    echo "$1: seeding $DOMAINS Domains × $PER_DOMAIN Yealink T54W…" >&2
    serve info
    t0=$SECONDS
    seed
    echo "  seeded in $((SECONDS - t0)) s; reading $PHONES provisioning credentials ($CRED_JOBS curls at a time)…" >&2
    t0=$SECONDS
    credentials
    echo "  credentials read in $((SECONDS - t0)) s" >&2
    halt "$1-seed"
    if [ "$1" = postgres ]; then
        psql -q "$PG_DB_URL" -c 'VACUUM ANALYZE' -c 'CHECKPOINT' >/dev/null
    fi
    for log in $LOGS; do
        label="switchboard, $([ "$1" = sqlite ] && echo SQLite || echo PostgreSQL)"
        [ "$log" = quiet ] && label="$label, fetch log off"
        serve "$log"
        c=$(echo "$CONNS" | awk '{ print $NF }')
        echo "  $label: cold pass ($PHONES phones once, $c connections)…" >&2
        since=$(date -u +%Y-%m-%dT%H:%M:%S)
        pwrk cold "$c" "$BASE" "$COLD_MAX" >"$WORK/r.txt"
        r=$(cat "$WORK/r.txt")
        cold=$(cold_seconds)
        if [ "$cold" = incomplete ]; then
            halt "$1-$log"
            echo "    the cold pass did not serve every phone; wrk: $r" >&2
            grep -oE 'outcome="?[a-z_]+' "$WORK/server.log" | sort | uniq -c >&2
            grep -E ' (WARN|ERROR) ' "$WORK/server.log" | grep -v xml_curl | tail -5 >&2
            exit 1
        fi
        # How long after the pass the last of its fetches is recorded in the database.
        t0=$(date +%s.%N)
        recorded=">60"
        for _ in $(seq 1 300); do
            n=$(recorded_since "$since")
            if [ "$n" -ge "$PHONES" ]; then
                recorded=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
                break
            fi
            sleep 0.2
        done
        echo "    all $PHONES served in $cold s, their fetches all recorded $recorded s later; wrk: $r; CPU s server $SRV_CPU, wrk $WRK_CPU" >&2
        record "$label" "$c" "$r" cold "$cold/$recorded"
        prerender
        [ -n "$NGINX_PID" ] || start_file_nginx
        for c in $CONNS; do
            pwrk storm "$c" "$BASE" "$DURATION" >"$WORK/r.txt"
            r=$(cat "$WORK/r.txt")
            echo "    storm, $c connections: $r; CPU s server $SRV_CPU, wrk $WRK_CPU" >&2
            record "$label" "$c" "$r" storm -
            nginx_storm "$c"
        done
        rss=$(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$SERVER_PID/status")
        echo "    server RSS $rss MiB, log $(wc -l <"$WORK/server.log") lines" >&2
        halt "$1-$log"
    done
}

for backend in "${BACKENDS[@]}"; do
    case $backend in
        sqlite)
            DB_KIND=sqlite
            DB_FILE=$WORK/bench.db
            DB_URL="sqlite://$DB_FILE?mode=rwc"
            bench_backend sqlite
            ;;
        postgres)
            if ! postgres_ready; then
                echo "postgres: skipped, nothing answers there (or psql is missing)" >&2
                continue
            fi
            DB_KIND=postgres
            create_pg_database "switchboard_bench_prov_$$"
            DB_URL=$PG_DB_URL
            bench_backend postgres
            drop_pg_database
            ;;
        *)
            echo "unknown backend $backend (sqlite or postgres)" >&2
            exit 2
            ;;
    esac
done
[ -n "$NGINX_PID" ] || exit 0
stop_nginx
size=$(find "$WORK/nginx/root/provision" -type f -printf '%s\n' | awk '{ s += $1; if (!min || $1 < min) min = $1; if ($1 > max) max = $1 } END { printf "%.0f bytes (%d–%d)", s / NR, min, max }')

# --- the table -----------------------------------------------------------------------------

echo
echo "Machine: $(machine); $(rustc --version 2>/dev/null || echo rustc ?), release build; $(psql --version 2>/dev/null | head -1 || true); $DOMAINS Domains × $PER_DOMAIN Yealink T54W, files of $size; wrk -t$THREADS, ${DURATION}s per storm, on the same machine; cold pass in $ORDER order; each nginx row right after the switchboard row above it"
echo
echo "| server | pass | connections | files/s | p50 ms | p99 ms | errors | files/s vs nginx (≥ 0.5) | p99 vs nginx (≤ 2) | server CPU µs/file | CPU s server / wrk | load |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
# Fields: label, connections, "rps p50 p99 errors srv_cpu wrk_cpu pass extra load".
awk -F'\t' -v phones="$PHONES" -v dur="$DURATION" '
    { n++; label[n] = $1; conns[n] = $2; split($3, f, " ")
      for (k = 1; k <= 9; k++) v[n, k] = f[k] }
    END {
        for (i = 1; i <= n; i++) {
            pass = v[i, 7]; share = ""; ratio = ""
            if (pass == "cold") {
                split(v[i, 8], c, "/")
                what = sprintf("cold: all %d once in %s s (recorded %s s later)", phones, c[1], c[2])
                rps = phones / c[1]; files = phones
            } else {
                what = "storm (warm)"; rps = v[i, 1]; files = rps * dur
            }
            if (pass == "storm")
                for (j = i + 1; j <= n; j++)
                    if (v[j, 7] == "ref" && conns[j] == conns[i]) {
                        share = sprintf("%.2f", rps / v[j, 1]); ratio = sprintf("%.2f", v[i, 3] / v[j, 3]); break
                    }
            printf "| %s | %s | %s | %.0f | %.2f | %.2f | %s | %s | %s | %.1f | %s / %s | %s |\n", label[i], what, conns[i],
                rps, v[i, 2], v[i, 3], v[i, 4], share, ratio, 1e6 * v[i, 5] / files, v[i, 5], v[i, 6], v[i, 9]
        }
    }' "$RESULTS"
