#!/usr/bin/env bash
# Schemathesis with every check against the served OpenAPI document: no 5xx, no status code the
# document does not list, every answer of the documented shape. Not part of CI (minutes, and
# random); run it after changing routes or the document, and record the result in
# bench/README.md.
#
# It starts its own server on a temporary SQLite file and, when PostgreSQL answers at
# BENCH_POSTGRES_URL (default: SWITCHBOARD_TEST_POSTGRES_URL, else
# postgres://postgres@127.0.0.1:5432/postgres), on a temporary database there; it creates a
# platform API key (so a fuzzed logout cannot end the run's credential) and a Domain to fuzz in.
# Needs: cargo, curl, python3 (schemathesis is installed into a venv under target/); psql.
#
#   bench/schemathesis/run.sh                       # both databases, 30 examples per operation
#   MAX_EXAMPLES=100 bench/schemathesis/run.sh sqlite
#   SWITCHBOARD_BIN=target/debug/switchboard bench/schemathesis/run.sh   # skip the build
#   BENCH_LOG_DIR=/tmp/logs bench/schemathesis/run.sh   # keep the server logs
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
MAX_EXAMPLES=${MAX_EXAMPLES:-30}
SCHEMATHESIS=${SCHEMATHESIS_VERSION:-4.32.5}
if [ $# -gt 0 ]; then BACKENDS=("$@"); else BACKENDS=(sqlite postgres); fi
PG_URL=${BENCH_POSTGRES_URL:-${SWITCHBOARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}}
ADMIN_EMAIL=bench@switchboard.test
ADMIN_PASSWORD=Bench-Password-Long-Enough-42

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-schemathesis.XXXXXX")
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
KEY_FILE=$WORK/switchboard.key
find_binary

VENV=${CARGO_TARGET_DIR:-$ROOT/target}/schemathesis-venv
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS"
fi

fuzz() {
    local backend=$1 url=$2
    start_server "$url"
    local key
    key=$(curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
        -d '{"name": "schemathesis", "role": "platform_admin"}' "$BASE/api/v1/api-keys" |
        sed -E 's/.*"secret":"([^"]+)".*/\1/')
    curl -sf -o /dev/null -H "authorization: Bearer $key" -H 'content-type: application/json' \
        -d '{"name": "Fuzz", "sip_domain": "fuzz.example.net", "timezone": "UTC"}' "$BASE/api/v1/domains"
    echo "== $backend: schemathesis $SCHEMATHESIS, every check, $MAX_EXAMPLES examples per operation"
    # The live event stream never ends by design; FreeSWITCH's endpoint is not the API's.
    # positive_data_acceptance is left out: the schemas do not encode every rule (an email in
    # use, a number taken, an unknown time zone), so a schema-valid body may rightly be a 422.
    "$VENV/bin/schemathesis" run "$BASE/api/openapi.json" \
        --checks all --exclude-checks positive_data_acceptance --max-examples "$MAX_EXAMPLES" --workers 2 --seed 1 \
        --exclude-path-regex '/events$|^/freeswitch/' \
        --header "Authorization: Bearer $key" \
        --request-timeout 10 --generation-allow-x00 true \
        --report junit --report-dir "$WORK/$backend-report" || status=$?
    stop_server
    if [ -n "${BENCH_LOG_DIR:-}" ]; then
        mkdir -p "$BENCH_LOG_DIR" && cp "$WORK/server.log" "$BENCH_LOG_DIR/$backend.log"
    fi
}

status=0
for backend in "${BACKENDS[@]}"; do
    case $backend in
        sqlite) fuzz sqlite "sqlite://$WORK/fuzz.db?mode=rwc" ;;
        postgres)
            PG_DB="switchboard_fuzz_$$"
            psql -q "$PG_URL" -c "CREATE DATABASE \"$PG_DB\"" >/dev/null
            fuzz postgres "$(sed -E "s#/[^/?]*(\?|$)#/$PG_DB\1#" <<<"${PG_URL%/}")"
            ;;
        *) echo "unknown backend $backend (sqlite or postgres)" >&2; exit 2 ;;
    esac
done
exit $status
