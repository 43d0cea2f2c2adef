#!/usr/bin/env bash
# The JSON API's own cost per request: wrk reads one Device (`GET
# /api/v1/domains/{domain_id}/devices/{id}`, the administrator's token) from one node on SQLite
# with one HTTP worker, pinned to core 0 (wrk on core 1) where the machine has two. With
# BASE_BIN set, the same run against that binary first (an earlier build: the reference the
# change is compared with), then the table.
#
# What a request pays besides the answer: matching its path against the API's routes, the
# middleware, authenticating the token (three reads) and entering the Domain (one read).
#
#   bench/api/run.sh
#   SWITCHBOARD_BIN=target/release/switchboard BASE_BIN=/tmp/switchboard-before bench/api/run.sh
#   DURATION=20 CONNECTIONS=64 RUNS=3 bench/api/run.sh
#
# Needs: cargo, curl, wrk, taskset (optional).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
RUNS=${RUNS:-2}
ADMIN_EMAIL=bench@switchboard.test
ADMIN_PASSWORD=Bench-Password-Long-Enough-42
for tool in curl wrk; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install wrk curl)" >&2; exit 2; }
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench-api.XXXXXX")
KEY_FILE=$WORK/secret.key
SERVER_PID=""
NGINX_PID=""
# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"
trap bench_cleanup EXIT
find_binary
PIN_SERVER=()
PIN_WRK=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    PIN_SERVER=(taskset -c 0)
    PIN_WRK=(taskset -c 1)
fi

# measure BINARY LABEL: RUNS runs of wrk against a fresh server; prints table rows.
measure() {
    local bin=$1 label=$2 run out
    for run in $(seq 1 "$RUNS"); do
        rm -f "$WORK/api.db"
        BIN=$bin
        start_server "sqlite://$WORK/api.db?mode=rwc" SWITCHBOARD_HTTP__WORKERS=1
        # Pin the server (and its threads) to its core once it runs.
        [ ${#PIN_SERVER[@]} -gt 0 ] && taskset -a -p -c 0 "$SERVER_PID" >/dev/null
        domain=$(api_send POST /api/v1/domains '{"name": "Acme", "sip_domain": "acme.bench.test"}' | sed -E 's/.*"id":"([^"]+)".*/\1/')
        device=$(api_send POST "/api/v1/domains/$domain/devices" '{"label": "Desk", "mode": "hotdesk"}' | sed -E 's/^\{"id":"([^"]+)".*/\1/')
        path="/api/v1/domains/$domain/devices/$device"
        api "$path" >/dev/null || { echo "GET $path failed" >&2; exit 1; }
        out=$("${PIN_WRK[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
            -H "authorization: Bearer $TOKEN" "$BASE$path")
        rps=$(awk '/Requests\/sec/ { printf "%.0f", $2 }' <<<"$out")
        p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
        p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
        non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
        echo "| $label | $run | $rps | $p50 | $p99 | ${non2xx:-0} |"
        stop_server
    done
}

rows=""
if [ -n "${BASE_BIN:-}" ]; then
    rows+=$(measure "$BASE_BIN" "reference: $(basename "$BASE_BIN")")$'\n'
fi
rows+=$(measure "$BIN" "$(basename "$BIN")")$'\n'
echo
echo "Machine: $(machine); one node on SQLite, http.workers = 1$( [ ${#PIN_SERVER[@]} -gt 0 ] && echo ', server on core 0, wrk on core 1'); wrk -t1 -c$CONNECTIONS ${DURATION}s, GET one Device"
echo
echo "| binary | run | requests/s | p50 | p99 | non-2xx |"
echo "|---|---:|---:|---:|---:|---:|"
printf '%s' "$rows"
