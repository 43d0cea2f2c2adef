#!/usr/bin/env bash
# ESL bridge benchmarks: event ingestion throughput and the API login → flush command latency,
# on SQLite and on PostgreSQL, against the scripted FreeSWITCH peer of freeswitch-esl-tokio
# (the real Event Socket protocol over TCP; the events are the captured ones in
# tests/fixtures/freeswitch/esl/). See tests/examples/esl_bench.rs for what is measured.
#
# The server runs in the benchmark's process (release build), on a fresh SQLite file and, when
# PostgreSQL answers at SWITCHBOARD_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres),
# on a fresh database there, removed afterwards.
#
#   bench/esl/run.sh                       # both databases
#   bench/esl/run.sh sqlite                # one database
#   EVENTS=200000 PHONES=500 LOGINS=500 bench/esl/run.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=$(mktemp "${TMPDIR:-/tmp}/switchboard-bench-esl.XXXXXX")
trap 'rm -f "$OUT"' EXIT

cargo build --release -q -p switchboard-tests --example esl_bench
cargo run --release -q -p switchboard-tests --example esl_bench -- "$@" | tee "$OUT" >&2

val() { awk -F= -v k="$1" '$1 == k { print $2 }' "$OUT"; }

echo
echo "bare readers that only count events (the transport's ceiling):"
echo "  freeswitch-esl-tokio EslClient: $(val transport_events_per_sec) events/s"
echo "  the bridge's lean reader:       $(val lean_events_per_sec) events/s"
echo
echo "| database | events | phones | bytes/event | seconds | events/s |"
echo "|---|---:|---:|---:|---:|---:|"
for db in sqlite postgres; do
    [ -n "$(val "ingest_${db}_events")" ] || continue
    echo "| $db | $(val "ingest_${db}_events") | $(val "ingest_${db}_phones") | $(val "ingest_${db}_bytes_per_event") | $(val "ingest_${db}_secs") | $(val "ingest_${db}_events_per_sec") |"
done
echo
echo "| database | logins | p50 ms | p90 ms | p99 ms | max ms | HTTP answer p50 / p99 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for db in sqlite postgres; do
    [ -n "$(val "latency_${db}_logins")" ] || continue
    echo "| $db | $(val "latency_${db}_logins") | $(val "latency_${db}_p50_ms") | $(val "latency_${db}_p90_ms") | $(val "latency_${db}_p99_ms") | $(val "latency_${db}_max_ms") | $(val "latency_${db}_http_p50_ms") / $(val "latency_${db}_http_p99_ms") |"
done
