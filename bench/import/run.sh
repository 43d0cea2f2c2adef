#!/usr/bin/env bash
# Bulk import benchmark: how many rows per second `POST /api/v1/domains/{id}/import` takes in,
# on SQLite and on PostgreSQL, for
#   - 10 000 Devices (with MAC addresses: the platform-wide uniqueness check runs),
#   - 10 000 Extensions without PIN,
#   -  1 000 Extensions with a PIN (argon2id, hashed on every core),
#   - 10 000 mixed rows: 5 000 Extensions and 5 000 fixed Devices owned by them by number.
# Each case runs RUNS times (default 3) into a fresh Domain; the table shows the median.
#
# It builds the release binary, starts its own server on a temporary SQLite file and, when
# PostgreSQL answers at BENCH_POSTGRES_URL (default: SWITCHBOARD_TEST_POSTGRES_URL, else
# postgres://postgres@127.0.0.1:5432/postgres), on a temporary database there; it stops the
# servers and removes the databases afterwards. Needs: cargo, curl, awk; psql for PostgreSQL.
#
#   bench/import/run.sh                   # both databases, 3 runs each
#   RUNS=5 bench/import/run.sh sqlite     # one database
#   SWITCHBOARD_BIN=target/release/switchboard bench/import/run.sh   # skip the build
#   BENCH_LOG_DIR=/tmp/logs bench/import/run.sh   # keep the server logs (per-stage timings)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
RUNS=${RUNS:-3}
if [ $# -gt 0 ]; then BACKENDS=("$@"); else BACKENDS=(sqlite postgres); fi
PG_URL=${BENCH_POSTGRES_URL:-${SWITCHBOARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}}
ADMIN_EMAIL=bench@switchboard.test
ADMIN_PASSWORD=Bench-Password-Long-Enough-42

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench-import.XXXXXX")
SERVER_PID=""
PG_DB=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [ -n "$PG_DB" ]; then psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"
find_binary

# --- the files -----------------------------------------------------------------------------

# devices RUN: 10 000 hot-desk phones with MAC addresses unique to the run (MACs are unique
# across every Domain, and every run of every case shares one database).
gen_devices() {
    awk -v run="$1" 'BEGIN {
        printf "{\"devices\": ["
        for (i = 0; i < 10000; i++) {
            printf "%s{\"label\": \"Desk %d\", \"mac_address\": \"00:15:%02x:%02x:%02x:%02x\", \"vendor\": \"Yealink\", \"model\": \"T54W\"}",
                (i ? "," : ""), i, run, int(i / 65536) % 256, int(i / 256) % 256, i % 256
        }
        print "]}"
    }'
}

# extensions N WITH_PIN: N Extensions numbered from 10000, with or without a 6-digit PIN.
gen_extensions() {
    awk -v n="$1" -v pin="$2" 'BEGIN {
        printf "{\"extensions\": ["
        for (i = 0; i < n; i++) {
            printf "%s{\"number\": \"%d\", \"display_name\": \"Person %d\"", (i ? "," : ""), 10000 + i, i
            if (pin) printf ", \"pin\": \"97%04d\"", i
            printf "}"
        }
        print "]}"
    }'
}

# mixed RUN: 5 000 Extensions and 5 000 fixed Devices owned by them (by number).
gen_mixed() {
    awk -v run="$1" 'BEGIN {
        printf "{\"extensions\": ["
        for (i = 0; i < 5000; i++)
            printf "%s{\"number\": \"%d\", \"display_name\": \"Person %d\"}", (i ? "," : ""), 20000 + i, i
        printf "], \"devices\": ["
        for (i = 0; i < 5000; i++)
            printf "%s{\"label\": \"Desk %d\", \"mac_address\": \"00:16:%02x:%02x:%02x:%02x\", \"mode\": \"fixed\", \"owner_extension\": \"%d\"}",
                (i ? "," : ""), i, run, int(i / 65536) % 256, int(i / 256) % 256, i % 256, 20000 + i
        print "]}"
    }'
}

# --- the server ----------------------------------------------------------------------------

KEY_FILE=$WORK/secrets.key
keep_log() { # BACKEND
    # The server logs each import's validate/hash/write milliseconds ("bulk import committed").
    if [ -n "${BENCH_LOG_DIR:-}" ]; then
        mkdir -p "$BENCH_LOG_DIR"
        cp "$WORK/server.log" "$BENCH_LOG_DIR/$1.log"
    fi
}

new_domain() { # NAME → prints the id
    curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
        -d "{\"name\": \"$1\", \"sip_domain\": \"$1.bench.test\", \"timezone\": \"Europe/Berlin\"}" \
        "$BASE/api/v1/domains" | sed -E 's/.*"id":"([^"]+)".*/\1/'
}

# import FILE DOMAIN_ID → prints seconds; fails unless 201.
import_seconds() {
    local out status seconds
    out=$(curl -s -o "$WORK/response.json" -w '%{http_code} %{time_total}' \
        -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
        --data-binary "@$1" "$BASE/api/v1/domains/$2/import")
    status=${out% *}
    seconds=${out#* }
    if [ "$status" != 201 ]; then
        echo "import of $1 answered $status:" >&2
        head -c 2000 "$WORK/response.json" >&2
        exit 1
    fi
    echo "$seconds"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

RESULTS=$WORK/results.tsv
: >"$RESULTS"

run_case() { # BACKEND CASE ROWS GENERATOR...
    local backend=$1 name=$2 rows=$3
    shift 3
    local times=() run file domain
    for run in $(seq 1 "$RUNS"); do
        file=$WORK/case.json
        "$@" "$run" >"$file"
        domain=$(new_domain "$(echo "$name" | tr -c 'a-z0-9\n' '-' | tr -s '-')-$run")
        times+=("$(import_seconds "$file" "$domain")")
    done
    local m
    m=$(printf '%s\n' "${times[@]}" | median)
    printf '%s\t%s\t%s\t%s\t%s\n' "$backend" "$name" "$rows" "$m" "${times[*]}" >>"$RESULTS"
    printf '  %-10s %-42s %6s rows  median %6.2f s  (%s)\n' "$backend" "$name" "$rows" "$m" "${times[*]}" >&2
}

# Generators take the run number last.
devices_case() { gen_devices "$1"; }
plain_case() { gen_extensions 10000 0; }
pin_case() { gen_extensions 1000 1; }
mixed_case() { gen_mixed "$1"; }

bench_backend() { # BACKEND URL
    echo "$1: starting the server…" >&2
    start_server "$2"
    run_case "$1" "10 000 devices" 10000 devices_case
    run_case "$1" "10 000 extensions without PIN" 10000 plain_case
    run_case "$1" "1 000 extensions with PIN" 1000 pin_case
    run_case "$1" "5 000 extensions + 5 000 fixed devices" 10000 mixed_case
    stop_server
    keep_log "$1"
}

for backend in "${BACKENDS[@]}"; do
    case $backend in
        sqlite)
            bench_backend sqlite "sqlite://$WORK/bench.db?mode=rwc"
            ;;
        postgres)
            if ! command -v psql >/dev/null || ! psql -q "$PG_URL" -c 'select 1' >/dev/null 2>&1; then
                echo "postgres: skipped, nothing answers at $(sed -E 's#://([^:/@]+):[^@]*@#://\1:***@#' <<<"$PG_URL") (or psql is missing)" >&2
                continue
            fi
            PG_DB=switchboard_bench_$$
            psql -q "$PG_URL" -c "CREATE DATABASE \"$PG_DB\"" >/dev/null
            bench_backend postgres "$(sed -E "s#^(postgres(ql)?://[^/]+)(/[^?]*)?#\\1/$PG_DB#" <<<"$PG_URL")"
            psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null
            PG_DB=""
            ;;
        *)
            echo "unknown backend $backend (sqlite or postgres)" >&2
            exit 2
            ;;
    esac
done

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || uname -p)
echo
echo "Machine: $cpu, $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null) RAM, $(uname -sr); $(rustc --version 2>/dev/null || echo rustc ?), release build; median of $RUNS runs"
echo
echo "| database | rows | seconds (median) | rows/s | runs (s) |"
echo "|---|---|---:|---:|---|"
awk -F'\t' '{ printf "| %s | %s | %.2f | %.0f | %s |\n", $1, $2, $4, $3 / $4, $5 }' "$RESULTS"
