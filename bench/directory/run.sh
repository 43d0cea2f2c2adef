#!/usr/bin/env bash
# mod_xml_curl directory benchmark: how fast `POST /freeswitch/xml` answers realistic lookups
# from a directory of 100 000 devices and 100 000 Extensions in 1 000 Domains, on SQLite and on
# PostgreSQL, next to nginx answering a fixed document of the same size with the same wrk load
# (the practical ceiling of HTTP on this machine).
#
# For each database it builds the data through the API (1 000 Domains, each importing 100
# Extensions that register directly and 100 fixed Devices owned by them), restarts the server
# to time the cold start of the directory, then runs wrk with bench/directory/lookups.lua, which
# sends captured-format `sip_auth` bodies for random devices and `user_call` bodies for random
# Extensions (half each): at 16 connections (latency) and at 128 (saturation).
#
# Needs: cargo, curl, awk, wrk, nginx; sqlite3 and psql to list the users.
#
#   bench/directory/run.sh                  # both databases
#   DOMAINS=100 bench/directory/run.sh sqlite   # a smaller directory, one database
#   DURATION=30 bench/directory/run.sh      # seconds per wrk run (default 15)
#   SWITCHBOARD_BIN=target/release/switchboard bench/directory/run.sh   # skip the build
#   BENCH_DB_DIR=/tmp/dir-bench bench/directory/run.sh   # keep the seeded SQLite database (and
#                                         its key) there, and the PostgreSQL database
#                                         switchboard_bench_dir_<DOMAINS>_<PER_DOMAIN> (its key
#                                         there too), and reuse them on the next run
#
# Memory: the server's RSS is read once the directory is compiled and settled (SETTLE seconds,
# default 15: the cold start's garbage goes back to the system when the threads that compiled
# the directory end, 10 s after the load), with the start's peak (VmHWM), and again after the wrk
# runs; RSS per SIP user is printed beside the throughput.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
DOMAINS=${DOMAINS:-1000}
PER_DOMAIN=${PER_DOMAIN:-100}
DURATION=${DURATION:-15}
if [ $# -gt 0 ]; then BACKENDS=("$@"); else BACKENDS=(sqlite postgres); fi
ADMIN_EMAIL=bench@switchboard.test
ADMIN_PASSWORD=Bench-Password-Long-Enough-42
XML_CURL_PASSWORD=bench-xml-curl-password
AUTH="Basic $(printf 'freeswitch:%s' "$XML_CURL_PASSWORD" | base64 -w0)"
FIXTURES=$ROOT/tests/fixtures/freeswitch/xmlcurl

for tool in curl awk wrk nginx; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install wrk nginx-light curl)" >&2; exit 2; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench-directory.XXXXXX")
SERVER_PID=""
NGINX_PID=""
# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"
trap bench_cleanup EXIT
find_binary

# --- the data ------------------------------------------------------------------------------

# rows DOMAIN_NUMBER: PER_DOMAIN Extensions (registering directly, with an outbound caller ID)
# + as many fixed Devices.
rows() {
    extension_rows "$1" "$PER_DOMAIN" ', "outbound_caller_id_number": "+4930@SEQ@", "sip_registration": {"enabled": true}'
}

seed() {
    local d domain_id
    for d in $(seq 1 "$DOMAINS"); do
        domain_id=$(create_domain "Tenant $d" "t$d.bench.test")
        rows "$d" >"$WORK/rows.json"
        import_rows "$domain_id" "$WORK/rows.json"
        if [ $((d % 100)) = 0 ]; then echo "  seeded $d of $DOMAINS Domains" >&2; fi
    done
}

# users BACKEND URL → $WORK/users.txt: "kind user domain" per line.
list_users() {
    local query="SELECT 'sip_auth', d.sip_username, m.sip_domain FROM devices d JOIN domains m ON m.id = d.domain_id
                 UNION ALL SELECT 'user_call', e.number, m.sip_domain FROM extensions e JOIN domains m ON m.id = e.domain_id"
    case $1 in
        sqlite) sqlite3 -separator ' ' "$2" "$query" >"$WORK/users.txt" ;;
        postgres) psql -qAt -F ' ' "$2" -c "$query" >"$WORK/users.txt" ;;
    esac
}

# The wrk script's data: the two captured bodies with placeholders for the user and domain
# (the users themselves are read from users.txt: a Lua table literal that large does not load).
write_lua_data() {
    {
        echo "return {"
        for kind in sip_auth user_call; do
            case $kind in
                sip_auth) file=$FIXTURES/directory-sip_auth-register.body ;;
                user_call) file=$FIXTURES/directory-user_call.body ;;
            esac
            # Placeholders where the captured user and domain were.
            body=$(sed -e 's/d-7f3a/@USER@/g; s/=201&/=@USER@\&/g; s/acme\.example\.net/@DOMAIN@/g' "$file")
            printf '  %s = [==[%s]==],\n' "$kind" "$body"
        done
        echo "}"
    } >"$WORK/data.lua"
}

# wrk CONNECTIONS URL → "requests/s p50_ms p99_ms non2xx"
export BENCH_DATA=$WORK/data.lua BENCH_USERS=$WORK/users.txt
wrk_lookups() {
    run_wrk "$ROOT/bench/directory/lookups.lua" "$@"
}

KEY_FILE=$WORK/secrets.key
RESULTS=$WORK/results.tsv
: >"$RESULTS"

bench_backend() { # BACKEND URL LIST_URL [SEEDED]
    if [ "${4:-}" = seeded ]; then
        echo "$1: reusing the seeded database" >&2
    else
        echo "$1: seeding $DOMAINS Domains × ($PER_DOMAIN Extensions + $PER_DOMAIN Devices)…" >&2
        start_server "$2" SWITCHBOARD_FREESWITCH__XML_CURL__PASSWORD="$XML_CURL_PASSWORD"
        seed
        stop_server
        if [ "$1" = postgres ]; then
            # Settle what the seeding left to do (autovacuum, analyze, the checkpoint) now,
            # not while wrk measures.
            psql -q "$3" -c 'VACUUM ANALYZE' -c 'CHECKPOINT' >/dev/null
        fi
    fi
    start_server "$2" SWITCHBOARD_FREESWITCH__XML_CURL__PASSWORD="$XML_CURL_PASSWORD"
    local cold
    cold=$(grep 'FreeSWITCH directory compiled' "$WORK/server.log" | grep -oE 'elapsed_ms=[0-9]+' | cut -d= -f2)
    local compiled
    compiled=$(grep 'FreeSWITCH directory compiled' "$WORK/server.log" | grep -oE '(domains|users|load_ms|compile_ms)=[0-9]+' | tr '\n' ' ')
    local users rss_kib rss per_user
    users=$(grep 'FreeSWITCH directory compiled' "$WORK/server.log" | grep -oE 'users=[0-9]+' | cut -d= -f2)
    sleep "${SETTLE:-15}"
    rss_kib=$(awk '/VmRSS/ { print $2 }' "/proc/$SERVER_PID/status")
    local hwm
    hwm=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$SERVER_PID/status")
    rss=$(awk -v k="$rss_kib" 'BEGIN { printf "%.0f", k / 1024 }')
    per_user=$(awk -v k="$rss_kib" -v u="$users" 'BEGIN { printf "%.2f", (u > 0 ? k / u : 0) }')
    echo "  cold start: directory compiled in ${cold} ms ($compiled), server RSS ${rss} MiB after ${SETTLE:-15} s (${per_user} KiB per SIP user), peak ${hwm} MiB" >&2
    list_users "$1" "$3"
    write_lua_data
    # Every listed user is answered (not "not found") — a sample, before measuring.
    local sample_user sample_domain sample_kind doc
    while read -r sample_kind sample_user sample_domain; do
        case $sample_kind in
            sip_auth) doc=$FIXTURES/directory-sip_auth-register.body ;;
            user_call) doc=$FIXTURES/directory-user_call.body ;;
        esac
        sed -e "s/d-7f3a/$sample_user/g; s/=201&/=$sample_user\&/g; s/acme\.example\.net/$sample_domain/g" "$doc" >"$WORK/req.body"
        curl -sf -H "authorization: $AUTH" -H 'content-type: application/x-www-form-urlencoded' \
            --data-binary "@$WORK/req.body" "$BASE/freeswitch/xml" >"$WORK/answer.xml"
        grep -q "<user id=\"$sample_user\"" "$WORK/answer.xml" || { echo "$sample_kind $sample_user@$sample_domain was not answered:" >&2; cat "$WORK/answer.xml" >&2; exit 1; }
    done < <(shuf -n 20 "$WORK/users.txt")
    cp "$WORK/answer.xml" "$WORK/typical-answer.xml"
    local r
    local r16 r128 rss_after
    r16=$(wrk_lookups 16 "$BASE"); echo "  16 connections: $r16" >&2
    r128=$(wrk_lookups 128 "$BASE"); echo "  128 connections: $r128" >&2
    rss_after=$(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$SERVER_PID/status")
    echo "  server RSS after the wrk runs: ${rss_after} MiB" >&2
    printf '%s\t16\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$r16" "$cold" "$rss" "$per_user" "$rss_after" "$hwm" >>"$RESULTS"
    printf '%s\t128\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$r128" "$cold" "$rss" "$per_user" "$rss_after" "$hwm" >>"$RESULTS"
    stop_server
}

for backend in "${BACKENDS[@]}"; do
    case $backend in
        sqlite)
            if [ -n "${BENCH_DB_DIR:-}" ]; then
                mkdir -p "$BENCH_DB_DIR"
                db=$BENCH_DB_DIR/directory-$DOMAINS-$PER_DOMAIN.db
                KEY_FILE=$BENCH_DB_DIR/directory-$DOMAINS-$PER_DOMAIN.key
                seeded=""
                [ -f "$db" ] && [ -f "$KEY_FILE" ] && seeded=seeded
                bench_backend sqlite "sqlite://$db?mode=rwc" "$db" $seeded
                KEY_FILE=$WORK/secrets.key
            else
                bench_backend sqlite "sqlite://$WORK/bench.db?mode=rwc" "$WORK/bench.db"
            fi
            ;;
        postgres)
            if ! postgres_ready; then
                echo "postgres: skipped, nothing answers there (or psql is missing)" >&2
                continue
            fi
            if [ -n "${BENCH_DB_DIR:-}" ]; then
                mkdir -p "$BENCH_DB_DIR"
                name=switchboard_bench_dir_${DOMAINS}_${PER_DOMAIN}
                KEY_FILE=$BENCH_DB_DIR/directory-pg-$DOMAINS-$PER_DOMAIN.key
                seeded=""
                if [ -f "$KEY_FILE" ] && psql -qAt "$PG_URL" -c "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
                    seeded=seeded
                    PG_DB=$name
                    PG_DB_URL=$(sed -E "s#^(postgres(ql)?://[^/]+)(/[^?]*)?#\\1/$PG_DB#" <<<"$PG_URL")
                else
                    rm -f "$KEY_FILE"
                    psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS \"$name\"" >/dev/null
                    create_pg_database "$name"
                fi
                # Kept for the next run: not dropped on exit.
                PG_DB=""
                bench_backend postgres "$PG_DB_URL" "$PG_DB_URL" $seeded
                KEY_FILE=$WORK/secrets.key
            else
                create_pg_database "switchboard_bench_dir_$$"
                bench_backend postgres "$PG_DB_URL" "$PG_DB_URL"
                drop_pg_database
            fi
            ;;
        *)
            echo "unknown backend $backend (sqlite or postgres)" >&2
            exit 2
            ;;
    esac
done

echo "nginx: a fixed document of $(wc -c <"$WORK/typical-answer.xml") bytes…" >&2
start_nginx "$WORK/typical-answer.xml"
r=$(wrk_lookups 16 "$NGINX_URL"); echo "  16 connections: $r" >&2
printf 'nginx (fixed document)\t16\t%s\t-\t-\t-\t-\t-\n' "$r" >>"$RESULTS"
r=$(wrk_lookups 128 "$NGINX_URL"); echo "  128 connections: $r" >&2
printf 'nginx (fixed document)\t128\t%s\t-\t-\t-\t-\t-\n' "$r" >>"$RESULTS"
stop_nginx

echo
echo "Machine: $(machine); $(rustc --version 2>/dev/null || echo rustc ?), release build; $DOMAINS Domains × $PER_DOMAIN Devices + $PER_DOMAIN Extensions; wrk -t2, ${DURATION}s per run, on the same machine"
echo
echo "| server | connections | requests/s | p50 ms | p99 ms | non-2xx | cold start (directory compiled, ms) | RSS settled (MiB) | per SIP user (KiB) | peak at start (MiB) | RSS after wrk (MiB) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '{ split($3, r, " "); printf "| %s | %s | %.0f | %.2f | %.2f | %s | %s | %s | %s | %s | %s |\n", $1, $2, r[1], r[2], r[3], r[4], $4, $5, $6, $8, $7 }' "$RESULTS"
