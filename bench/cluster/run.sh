#!/usr/bin/env bash
# Several nodes on one PostgreSQL: how fast a change made on node A reaches node B's directory
# under a steady stream of changes, and how the directory's throughput grows from one node to
# two behind one load balancer.
#
# Two `switchboard serve` processes (A and B) share a fresh PostgreSQL database, the SIP-secret
# key and nothing else: each has its own port, `cluster.node_name` and `http.workers = 1`, and
# each is pinned to a core of its own (`taskset -c 0` / `-c 1`) when the machine has two or
# more. A seeds DOMAINS large Domains × PER_DOMAIN Extensions (registering directly) each owning
# a fixed Device, and SMALL_DOMAINS small ones × SMALL_PER_DOMAIN, through `POST …/import`; B
# starts after that.
#
# 1. Throughput: wrk (2 threads, CONNECTIONS, DURATION s, bench/directory/lookups.lua: the
#    captured `sip_auth` body for random Devices and `user_call` for random Extensions) against
#    A alone, nginx proxying to A alone, nginx balancing A and B, A and B each with its own wrk
#    (no proxy), and nginx answering a fixed document of the answer's size (the reference).
# 2. Propagation: bench/cluster/propagate.py toggles Devices' `enabled` on A
#    (`PATCH …/devices/{id}`) of the small or of the large Domains at a rate (open loop; RUNS)
#    for CHANGE_SECS, and polls B's directory every POLL_MS for a sample of them (at most
#    POLLERS_PER_DOMAIN of one Domain at once) until B's answer reflects the change: from A's
#    200 (after the commit) to B's first changed answer. (After the throughput runs:
#    the toggles leave Devices disabled, which the directory answers "not found".)
#
# Needs: cargo, curl, jq, awk, psql, python3, wrk, nginx, taskset (optional).
#
#   bench/cluster/run.sh
#   RUNS="small:200 large:200" CHANGE_SECS=30 bench/cluster/run.sh
#   SWITCHBOARD_BIN=target/release/switchboard bench/cluster/run.sh   # skip the build
#   BENCH_LOG_DIR=/tmp/cluster-logs bench/cluster/run.sh               # keep the nodes' logs
#   MEASURE_THROUGHPUT=0 RUNS=small:200 bench/cluster/run.sh            # propagation only
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
DOMAINS=${DOMAINS:-2}
PER_DOMAIN=${PER_DOMAIN:-5000}
# Small Domains beside the large ones: the tenants of a hosted PBX.
SMALL_DOMAINS=${SMALL_DOMAINS:-100}
SMALL_PER_DOMAIN=${SMALL_PER_DOMAIN:-100}
# Propagation runs, each WHICH:RATE: the Devices of the small or of the large Domains changed,
# RATE changes/s for CHANGE_SECS.
RUNS=${RUNS:-small:20 small:200 large:20 large:200}
CHANGE_SECS=${CHANGE_SECS:-20}
# About this many sampled changes per second whatever the rate (every change at 40/s or less).
SAMPLES_PER_SEC=${SAMPLES_PER_SEC:-40}
POLL_MS=${POLL_MS:-2}
# Samples of one Domain polled at once (0: no limit).
POLLERS_PER_DOMAIN=${POLLERS_PER_DOMAIN:-1}
DURATION=${DURATION:-15}
CONNECTIONS=${CONNECTIONS:-128}
# 0: the propagation runs only.
MEASURE_THROUGHPUT=${MEASURE_THROUGHPUT:-1}
ADMIN_EMAIL=bench@switchboard.test
ADMIN_PASSWORD=Bench-Password-Long-Enough-42
XML_CURL_PASSWORD=bench-xml-curl-password
AUTH="Basic $(printf 'freeswitch:%s' "$XML_CURL_PASSWORD" | base64 -w0)"
FIXTURES=$ROOT/tests/fixtures/freeswitch/xmlcurl

for tool in curl jq awk psql python3 wrk nginx; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install wrk nginx-light curl jq postgresql-client python3)" >&2; exit 2; }
done

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED_AT=$(date -u +%H:%M)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench-cluster.XXXXXX")
mkdir -p "$WORK/logs"
SERVER_PID=""
NGINX_PID=""
PROXY_PID=""
A_PID=""
B_PID=""
# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"
cleanup() {
    stop_pid "$PROXY_PID"
    stop_pid "$A_PID"
    stop_pid "$B_PID"
    bench_cleanup
}
trap cleanup EXIT
find_binary
KEY_FILE=$WORK/unused.key
postgres_ready || { echo "PostgreSQL does not answer at $PG_URL (set BENCH_POSTGRES_URL)" >&2; exit 2; }
create_pg_database "switchboard_bench_cluster_$$"

# Both nodes decrypt the SIP secrets with the same key.
ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64 -w0)

# Each node on a core of its own when there are two.
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null && taskset -c 1 true 2>/dev/null; then
    PIN_A=(taskset -c 0)
    PIN_B=(taskset -c 1)
    PINNING="A on core 0, B on core 1 (taskset); wrk, nginx, PostgreSQL and the load generator unpinned, on the same cores"
else
    PIN_A=()
    PIN_B=()
    PINNING="not pinned (one core or no taskset): figures are per machine"
fi

# start_node NAME PORT PIN...: `serve` as node NAME with NODE_WORKERS HTTP workers, run by the
# PIN command (taskset) if given; sets NODE_PID. Its log: $WORK/logs/NAME.log.
start_node() {
    local name=$1 port=$2
    shift 2
    env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
        SWITCHBOARD_DATABASE_URL="$PG_DB_URL" \
        SWITCHBOARD_HTTP__HOST=127.0.0.1 \
        SWITCHBOARD_HTTP__PORT="$port" \
        SWITCHBOARD_HTTP__WORKERS="$NODE_WORKERS" \
        SWITCHBOARD_CLUSTER__NODE_NAME="$name" \
        SWITCHBOARD_LOG__LEVEL=info \
        SWITCHBOARD_SECRETS__ENCRYPTION_KEY="$ENCRYPTION_KEY" \
        SWITCHBOARD_AUTH__ACCESS_TOKEN_TTL_SECS=86400 \
        SWITCHBOARD_BOOTSTRAP__ADMIN_EMAIL="$ADMIN_EMAIL" \
        SWITCHBOARD_BOOTSTRAP__ADMIN_PASSWORD="$ADMIN_PASSWORD" \
        SWITCHBOARD_FREESWITCH__XML_CURL__PASSWORD="$XML_CURL_PASSWORD" \
        "$@" "$BIN" serve >>"$WORK/logs/$name.log" 2>&1 &
    NODE_PID=$!
    for _ in $(seq 1 900); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/health/live" && return 0
        kill -0 "$NODE_PID" 2>/dev/null || { tail -30 "$WORK/logs/$name.log" >&2; echo "node $name did not start" >&2; exit 1; }
        sleep 0.1
    done
    echo "node $name did not answer within 90 s" >&2
    exit 1
}

# busy_ticks → clock ticks the machine's cores spent busy (not idle or waiting) so far, and
# all ticks: "busy total".
busy_ticks() {
    awk '/^cpu / { total = 0; for (i = 2; i <= NF; i++) total += $i; print total - $5 - $6, total }' /proc/stat
}

# busy_since "BUSY TOTAL" → the machine's busy % since then.
busy_since() {
    local before=($1) now
    now=($(busy_ticks))
    awk -v b="$((now[0] - before[0]))" -v t="$((now[1] - before[1]))" 'BEGIN { printf "%.0f", (t > 0 ? 100 * b / t : 0) }'
}

# cpu_ticks PID… → the processes' user + system clock ticks so far (their threads included).
cpu_ticks() {
    local pid total=0
    for pid in "$@"; do
        [ -r "/proc/$pid/stat" ] || continue
        total=$((total + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat")))
    done
    echo "$total"
}
TICKS=$(getconf CLK_TCK)

# answers NODE_URL → the node's mod_xml_curl answers so far.
answers() {
    BASE=$1 metric_sum switchboard_xml_curl_answers_total
}

# gauge NODE_URL NAME → the value of an unlabelled metric (0 when absent).
gauge() {
    curl -sf "$1/metrics" | awk -v name="$2" '$1 == name { print $2; found = 1 } END { if (!found) print 0 }'
}

# recompiles NODE_URL → Domains the node's directory recompiled after a change, so far.
recompiles() {
    gauge "$1" switchboard_directory_recompiles_total
}

# check_users NODE_URL: 20 random users of users.txt are answered (not "not found").
check_users() {
    local kind user domain doc
    while read -r kind user domain; do
        case $kind in
            sip_auth) doc=$FIXTURES/directory-sip_auth-register.body ;;
            user_call) doc=$FIXTURES/directory-user_call.body ;;
        esac
        sed -e "s/d-7f3a/$user/g; s/=201&/=$user\&/g; s/acme\.example\.net/$domain/g" "$doc" >"$WORK/req.body"
        curl -sf -H "authorization: $AUTH" -H 'content-type: application/x-www-form-urlencoded' \
            --data-binary "@$WORK/req.body" "$1/freeswitch/xml" >"$WORK/answer.xml"
        grep -q "<user id=\"$user\"" "$WORK/answer.xml" || { echo "$kind $user@$domain was not answered by $1:" >&2; cat "$WORK/answer.xml" >&2; exit 1; }
    done < <(shuf -n 20 "$WORK/users.txt")
}

# --- the nodes and the data ----------------------------------------------------------------

PORT_A=$(free_port)
PORT_B=$(free_port)
A=http://127.0.0.1:$PORT_A
B=http://127.0.0.1:$PORT_B

NODE_WORKERS=1
echo "node A ($PINNING)…" >&2
start_node a "$PORT_A" "${PIN_A[@]}"
A_PID=$NODE_PID
BASE=$A
TOKEN=$(curl -sf -H 'content-type: application/json' \
    -d "{\"email\": \"$ADMIN_EMAIL\", \"password\": \"$ADMIN_PASSWORD\"}" \
    "$A/api/v1/auth/login" | jq -r .access_token)
[ -n "$TOKEN" ] && [ "$TOKEN" != null ] || { echo "could not log in on A" >&2; exit 1; }

echo "seeding $DOMAINS Domains × ($PER_DOMAIN Extensions + $PER_DOMAIN Devices) and $SMALL_DOMAINS × ($SMALL_PER_DOMAIN + $SMALL_PER_DOMAIN) through A…" >&2
seed_started=$(date +%s.%N)
for d in $(seq 1 "$DOMAINS"); do
    domain_id=$(create_domain "Large $d" "t$d.cluster.test")
    extension_rows "$d" "$PER_DOMAIN" ', "sip_registration": {"enabled": true}' >"$WORK/rows.json"
    import_rows "$domain_id" "$WORK/rows.json"
done
extension_rows 0 "$SMALL_PER_DOMAIN" ', "sip_registration": {"enabled": true}' >"$WORK/rows.json"
for d in $(seq 1 "$SMALL_DOMAINS"); do
    domain_id=$(create_domain "Small $d" "s$d.cluster.test")
    import_rows "$domain_id" "$WORK/rows.json"
done
echo "  seeded in $(awk -v s="$seed_started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s" >&2
# Settle what the seeding left to do now, not while measuring.
psql -q "$PG_DB_URL" -c 'VACUUM ANALYZE' -c 'CHECKPOINT' >/dev/null

psql -qAt -F ' ' "$PG_DB_URL" -c "
    SELECT 'sip_auth', d.sip_username, m.sip_domain FROM devices d JOIN domains m ON m.id = d.domain_id
    UNION ALL SELECT 'user_call', e.number, m.sip_domain FROM extensions e JOIN domains m ON m.id = e.domain_id" \
    >"$WORK/users.txt"

echo "node B…" >&2
start_node b "$PORT_B" "${PIN_B[@]}"
B_PID=$NODE_PID
grep -h 'FreeSWITCH directory compiled' "$WORK/logs/b.log" | sed 's/^/  B: /' | cut -c1-220 >&2 || true
check_users "$A"
check_users "$B"
users=$(wc -l <"$WORK/users.txt")

# The wrk script's data, as bench/directory writes it.
{
    echo "return {"
    for kind in sip_auth user_call; do
        case $kind in
            sip_auth) file=$FIXTURES/directory-sip_auth-register.body ;;
            user_call) file=$FIXTURES/directory-user_call.body ;;
        esac
        body=$(sed -e 's/d-7f3a/@USER@/g; s/=201&/=@USER@\&/g; s/acme\.example\.net/@DOMAIN@/g' "$file")
        printf '  %s = [==[%s]==],\n' "$kind" "$body"
    done
    echo "}"
} >"$WORK/data.lua"
sed -e 's/d-7f3a/@USER@/g; s/acme\.example\.net/@DOMAIN@/g' "$FIXTURES/directory-sip_auth-register.body" \
    >"$WORK/sip_auth.template"
export BENCH_DATA=$WORK/data.lua BENCH_USERS=$WORK/users.txt

# --- 1. throughput --------------------------------------------------------------------------

# start_proxy PORT…: nginx (2 workers) balancing round robin over the nodes' ports, keep-alive
# both ways. Sets PROXY_PID and PROXY_URL.
start_proxy() {
    local port servers="" dir=$WORK/proxy
    for port in "$@"; do servers="$servers        server 127.0.0.1:$port;"$'\n'; done
    PROXY_PORT=$(free_port)
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<CONF
worker_processes 2;
daemon off;
user root;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 1000000;
    client_body_buffer_size 64k;
    upstream switchboard {
$servers        keepalive 128;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$PROXY_PORT;
        location / {
            proxy_pass http://switchboard;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
        }
    }
}
CONF
    nginx -c "$dir/nginx.conf" -p "$dir" &
    PROXY_PID=$!
    PROXY_URL=http://127.0.0.1:$PROXY_PORT
    for _ in $(seq 1 50); do
        curl -sf -o /dev/null "$PROXY_URL/health/live" && return 0
        sleep 0.1
    done
    cat "$dir/error.log" >&2
    echo "nginx (the proxy) did not start" >&2
    exit 1
}

stop_proxy() {
    stop_pid "$PROXY_PID"
    PROXY_PID=""
}

THROUGHPUT=$WORK/throughput.tsv
: >"$THROUGHPUT"

# measure LABEL NODE_CORES COMMAND…: runs the wrk command(s) (which print "rps p50 p99 errors"
# lines, summed when two), with each node's answers and CPU counted around it.
measure() {
    local label=$1 cores=$2
    shift 2
    local before_a before_b ticks_a ticks_b started out busy
    busy=$(busy_ticks)
    before_a=$(answers "$A")
    before_b=$(answers "$B")
    ticks_a=$(cpu_ticks "$A_PID")
    ticks_b=$(cpu_ticks "$B_PID")
    started=$(date +%s.%N)
    out=$("$@")
    local elapsed served_a served_b cpu_a cpu_b
    busy=$(busy_since "$busy")
    elapsed=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { print e - s }')
    served_a=$(($(answers "$A") - before_a))
    served_b=$(($(answers "$B") - before_b))
    cpu_a=$(awk -v t="$(($(cpu_ticks "$A_PID") - ticks_a))" -v hz="$TICKS" -v s="$elapsed" 'BEGIN { printf "%.0f", 100 * t / hz / s }')
    cpu_b=$(awk -v t="$(($(cpu_ticks "$B_PID") - ticks_b))" -v hz="$TICKS" -v s="$elapsed" 'BEGIN { printf "%.0f", 100 * t / hz / s }')
    # Two wrk runs at once: requests/s and errors add up, latencies are the worse of the two.
    local summary
    summary=$(awk '{ rps += $1; if ($2 > p50) p50 = $2; if ($3 > p99) p99 = $3; err += $4 }
        END { printf "%.1f %.3f %.3f %d", rps, p50, p99, err }' <<<"$out")
    echo "  $label: $summary; answered by A $served_a, B $served_b; CPU A ${cpu_a} %, B ${cpu_b} %, machine busy ${busy} %" >&2
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$cores" "$summary" "$served_a" "$served_b" "$cpu_a" "$cpu_b" "$busy" >>"$THROUGHPUT"
}

wrk_to() { run_wrk "$ROOT/bench/directory/lookups.lua" "$CONNECTIONS" "$1"; }
# One wrk per node, at once, half the connections each.
wrk_both() {
    (cd "$WORK" && BENCH_AUTH="$AUTH" wrk -t1 -c"$((CONNECTIONS / 2))" -d"${DURATION}s" --timeout 5s \
        -s "$ROOT/bench/directory/lookups.lua" "$A/freeswitch/xml") | awk '/^RESULT/ { print $2, $3, $4, $5 }' >"$WORK/wrk-a.txt" &
    local first=$!
    (cd "$WORK" && BENCH_AUTH="$AUTH" wrk -t1 -c"$((CONNECTIONS / 2))" -d"${DURATION}s" --timeout 5s \
        -s "$ROOT/bench/directory/lookups.lua" "$B/freeswitch/xml") | awk '/^RESULT/ { print $2, $3, $4, $5 }' >"$WORK/wrk-b.txt"
    wait "$first"
    cat "$WORK/wrk-a.txt" "$WORK/wrk-b.txt"
}

if [ "$MEASURE_THROUGHPUT" = 1 ]; then
    echo "throughput: wrk -t2 -c$CONNECTIONS, ${DURATION}s each…" >&2
    measure "one node (A), direct" 1 wrk_to "$A"
    start_proxy "$PORT_A"
    measure "one node (A) behind nginx" 1 wrk_to "$PROXY_URL"
    stop_proxy
    start_proxy "$PORT_A" "$PORT_B"
    measure "two nodes (A + B) behind nginx" 2 wrk_to "$PROXY_URL"
    stop_proxy
    measure "two nodes, one wrk each (-t1 -c$((CONNECTIONS / 2)) each, no proxy)" 2 wrk_both

    check_users "$A"
    cp "$WORK/answer.xml" "$WORK/typical-answer.xml"
    start_nginx "$WORK/typical-answer.xml"
    measure "nginx, fixed $(wc -c <"$WORK/typical-answer.xml")-byte document (reference)" 0 wrk_to "$NGINX_URL"
    stop_nginx
fi

# --- 2. propagation ------------------------------------------------------------------------

# The nodes as deployed for this part: both cores, one HTTP worker per core (the default), the
# scheduler's placement; PROPAGATION_PINNED=1 keeps them as above.
if [ "${PROPAGATION_PINNED:-0}" != 1 ]; then
    echo "restarting the nodes unpinned, with the default HTTP workers (one per core)…" >&2
    stop_pid "$A_PID"
    stop_pid "$B_PID"
    A_PID=""
    B_PID=""
    NODE_WORKERS=$(nproc)
    start_node a "$PORT_A"
    A_PID=$NODE_PID
    start_node b "$PORT_B"
    B_PID=$NODE_PID
    PROPAGATION_NODES="unpinned, http.workers = $NODE_WORKERS"
else
    PROPAGATION_NODES="as for the throughput"
fi

PROPAGATION=$WORK/propagation.tsv
: >"$PROPAGATION"
for run in $RUNS; do
    which=${run%%:*}
    rate=${run#*:}
    case $which in
        small) pattern='s%' label="$SMALL_DOMAINS × $SMALL_PER_DOMAIN" ;;
        large) pattern='t%' label="$DOMAINS × $PER_DOMAIN" ;;
        *) echo "unknown run $run (small:RATE or large:RATE)" >&2; exit 2 ;;
    esac
    sample=$(awk -v r="$rate" -v s="$SAMPLES_PER_SEC" 'BEGIN { n = int(r / s); print (n < 1 ? 1 : n) }')
    # The Devices as they are now (a previous run may have left some disabled).
    psql -qAt -F ' ' "$PG_DB_URL" -c "
        SELECT d.domain_id, d.id, d.sip_username, m.sip_domain, d.enabled
        FROM devices d JOIN domains m ON m.id = d.domain_id
        WHERE m.sip_domain LIKE '$pattern'" >"$WORK/devices.txt"
    recompiles_a=$(recompiles "$A")
    recompiles_b=$(recompiles "$B")
    remote_b=$(gauge "$B" switchboard_cluster_remote_changes)
    ticks_a=$(cpu_ticks "$A_PID")
    ticks_b=$(cpu_ticks "$B_PID")
    busy=$(busy_ticks)
    started=$(date +%s.%N)
    echo "propagation: $rate changes/s on A to the Devices of $label Domains for ${CHANGE_SECS}s, every ${sample}. polled on B every ${POLL_MS} ms…" >&2
    result=$(python3 "$ROOT/bench/cluster/propagate.py" --a "$A" --b "$B" --token "$TOKEN" \
        --xml-auth "$AUTH" --template "$WORK/sip_auth.template" --devices "$WORK/devices.txt" \
        --rate "$rate" --seconds "$CHANGE_SECS" --sample "$sample" --poll-ms "$POLL_MS" \
        --per-domain "$POLLERS_PER_DOMAIN" --samples "$WORK/logs/propagation-$which-$rate.txt" | awk '/^RESULT/ { $1 = ""; print substr($0, 2) }')
    elapsed=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { print e - s }')
    cpu_a=$(awk -v t="$(($(cpu_ticks "$A_PID") - ticks_a))" -v hz="$TICKS" -v s="$elapsed" 'BEGIN { printf "%.0f", 100 * t / hz / s }')
    cpu_b=$(awk -v t="$(($(cpu_ticks "$B_PID") - ticks_b))" -v hz="$TICKS" -v s="$elapsed" 'BEGIN { printf "%.0f", 100 * t / hz / s }')
    busy=$(busy_since "$busy")
    recompiled_a=$(($(recompiles "$A") - recompiles_a))
    recompiled_b=$(($(recompiles "$B") - recompiles_b))
    # Changes of other nodes B applied (every committed one, when it kept up).
    remote_b=$(($(gauge "$B" switchboard_cluster_remote_changes) - remote_b))
    echo "  $result; recompiles A $recompiled_a, B $recompiled_b; CPU A ${cpu_a} %, B ${cpu_b} %, machine busy ${busy} %" >&2
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rate" "$result" "$recompiled_a" "$recompiled_b" "$cpu_a" "$cpu_b" "$label" "$busy" "$remote_b" >>"$PROPAGATION"
done

# --- the tables ----------------------------------------------------------------------------

echo
echo "Machine: $(machine); $(rustc --version 2>/dev/null || echo rustc ?), release build; PostgreSQL $(psql -qAt "$PG_URL" -c 'SHOW server_version' | cut -d' ' -f1); $DOMAINS Domains × ($PER_DOMAIN Extensions + $PER_DOMAIN Devices) and $SMALL_DOMAINS × ($SMALL_PER_DOMAIN + $SMALL_PER_DOMAIN) = $users SIP users; $STARTED_AT–$(date -u +%H:%M) UTC, load average $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
if [ "$MEASURE_THROUGHPUT" = 1 ]; then
    echo
    echo "Directory throughput (nodes with http.workers = 1, $PINNING; wrk -t2 -c$CONNECTIONS, ${DURATION}s, bench/directory/lookups.lua over $users users):"
    echo
    echo "| target | node cores | requests/s | per node core | vs one node | p50 ms | p99 ms | errors | answered by A | answered by B | CPU A | CPU B | per node CPU-second | machine busy |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' 'NR == 1 { split($3, one, " ") }
        { split($3, r, " ")
          per = $2 > 0 ? sprintf("%.0f", r[1] / $2) : ""
          vs = $2 > 0 ? sprintf("%.2f×", r[1] / one[1]) : ""
          # Requests per second of CPU the nodes used (what a busy node core delivers).
          cpu = ($6 + $7) / 100
          per_cpu = cpu > 0 ? sprintf("%.0f", r[1] / cpu) : ""
          printf "| %s | %s | %.0f | %s | %s | %.2f | %.2f | %d | %d | %d | %d %% | %d %% | %s | %d %% |\n",
              $1, ($2 > 0 ? $2 : "–"), r[1], per, vs, r[2], r[3], r[4], $4, $5, $6, $7, per_cpu, $8 }' "$THROUGHPUT"
fi
echo
echo "Change propagation, A → B (nodes $PROPAGATION_NODES; Devices' enabled toggled on A for ${CHANGE_SECS}s, a change not sent 5 s after it was due dropped; B's directory polled every $POLL_MS ms for a sample, at most $POLLERS_PER_DOMAIN per Domain at once):"
echo
echo "| Domains changed (phones each) | offered changes/s | achieved changes/s | changes (failed, dropped) | applied by B | A's PATCH p50 / p99 ms | samples (never seen on B) | propagation p50 ms | p99 ms | max ms | resolution p50 / p99 ms | B's answer to a poll p50 / p99 ms | polls/s | Domains recompiled A / B | CPU A / B | machine busy |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '{ split($2, r, " ")
    printf "| %s | %s | %.1f | %d (%d, %d) | %d | %.1f / %.1f | %d (%d) | %.1f | %.1f | %.1f | %.2f / %.2f | %.2f / %.2f | %d | %d / %d | %d %% / %d %% | %d %% |\n",
        $7, $1, r[2], r[3], r[4], r[18], $9, r[5], r[6], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[16], r[17], r[15], $3, $4, $5, $6, $8 }' "$PROPAGATION"
