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
#   BENCH_DB_DIR=/tmp/dir-bench bench/directory/run.sh sqlite   # keep the seeded SQLite database
#                                         (and its key) there, and reuse it on the next run
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
DOMAINS=${DOMAINS:-1000}
PER_DOMAIN=${PER_DOMAIN:-100}
DURATION=${DURATION:-15}
if [ $# -gt 0 ]; then BACKENDS=("$@"); else BACKENDS=(sqlite postgres); fi
PG_URL=${BENCH_POSTGRES_URL:-${SWITCHBOARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}}
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
PG_DB=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [ -n "$NGINX_PID" ]; then kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; fi
    if [ -n "$PG_DB" ]; then psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"
find_binary

# --- the server ----------------------------------------------------------------------------

# --- the data ------------------------------------------------------------------------------

# rows DOMAIN_NUMBER: PER_DOMAIN Extensions (registering directly) + as many fixed Devices.
rows() {
    awk -v n="$PER_DOMAIN" -v d="$1" 'BEGIN {
        printf "{\"extensions\": ["
        for (i = 0; i < n; i++)
            printf "%s{\"number\": \"%d\", \"display_name\": \"Person %d-%d\", \"outbound_caller_id_number\": \"+4930%06d\", \"sip_registration\": {\"enabled\": true}}", (i ? "," : ""), 1000 + i, d, i, d * 1000 + i
        printf "], \"devices\": ["
        for (i = 0; i < n; i++)
            printf "%s{\"label\": \"Desk %d\", \"mode\": \"fixed\", \"owner_extension\": \"%d\"}", (i ? "," : ""), i, 1000 + i
        print "]}"
    }'
}

seed() {
    local d domain_id out
    for d in $(seq 1 "$DOMAINS"); do
        domain_id=$(curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
            -d "{\"name\": \"Tenant $d\", \"sip_domain\": \"t$d.bench.test\"}" \
            "$BASE/api/v1/domains" | sed -E 's/.*"id":"([^"]+)".*/\1/')
        rows "$d" >"$WORK/rows.json"
        out=$(curl -s -o "$WORK/response.json" -w '%{http_code}' \
            -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
            --data-binary "@$WORK/rows.json" "$BASE/api/v1/domains/$domain_id/import")
        [ "$out" = 201 ] || { echo "import into t$d answered $out:" >&2; head -c 2000 "$WORK/response.json" >&2; exit 1; }
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
run_wrk() {
    (cd "$WORK" && BENCH_AUTH="$AUTH" BENCH_DATA="$WORK/data.lua" BENCH_USERS="$WORK/users.txt" \
        wrk -t2 -c"$1" -d"${DURATION}s" --timeout 5s -s "$ROOT/bench/directory/lookups.lua" "$2/freeswitch/xml") \
        | awk '/^RESULT/ { print $2, $3, $4, $5 }'
}

# --- nginx with a fixed document -----------------------------------------------------------

start_nginx() { # DOCUMENT_FILE
    mkdir -p "$WORK/nginx"
    # The same bytes, minus the characters nginx's `return` would interpret ($) or end on (').
    local body
    body=$(tr "\$'" 'xx' <"$1")
    cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes 2;
daemon off;
user root;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:18089;
        location / {
            default_type text/xml;
            return 200 '$body';
        }
    }
}
CONF
    nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
    NGINX_PID=$!
    for _ in $(seq 1 50); do
        curl -sf -o /dev/null -X POST http://127.0.0.1:18089/freeswitch/xml && return 0
        sleep 0.1
    done
    cat "$WORK/nginx/error.log" >&2
    echo "nginx did not start" >&2
    exit 1
}

stop_nginx() {
    kill "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=""
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
    local rss
    rss=$(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$SERVER_PID/status")
    echo "  cold start: directory compiled in ${cold} ms ($compiled), server RSS ${rss} MiB" >&2
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
    r=$(run_wrk 16 "$BASE"); echo "  16 connections: $r" >&2
    printf '%s\t16\t%s\t%s\t%s\n' "$1" "$r" "$cold" "$rss" >>"$RESULTS"
    r=$(run_wrk 128 "$BASE"); echo "  128 connections: $r" >&2
    printf '%s\t128\t%s\t%s\t%s\n' "$1" "$r" "$cold" "$rss" >>"$RESULTS"
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
            if ! command -v psql >/dev/null || ! psql -q "$PG_URL" -c 'select 1' >/dev/null 2>&1; then
                echo "postgres: skipped, nothing answers there (or psql is missing)" >&2
                continue
            fi
            PG_DB=switchboard_bench_dir_$$
            psql -q "$PG_URL" -c "CREATE DATABASE \"$PG_DB\"" >/dev/null
            url=$(sed -E "s#^(postgres(ql)?://[^/]+)(/[^?]*)?#\\1/$PG_DB#" <<<"$PG_URL")
            bench_backend postgres "$url" "$url"
            psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null
            PG_DB=""
            ;;
        *)
            echo "unknown backend $backend (sqlite or postgres)" >&2
            exit 2
            ;;
    esac
done

echo "nginx: a fixed document of $(wc -c <"$WORK/typical-answer.xml") bytes…" >&2
start_nginx "$WORK/typical-answer.xml"
r=$(run_wrk 16 http://127.0.0.1:18089); echo "  16 connections: $r" >&2
printf 'nginx (fixed document)\t16\t%s\t-\t-\n' "$r" >>"$RESULTS"
r=$(run_wrk 128 http://127.0.0.1:18089); echo "  128 connections: $r" >&2
printf 'nginx (fixed document)\t128\t%s\t-\t-\n' "$r" >>"$RESULTS"
stop_nginx

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || uname -p)
echo
echo "Machine: $cpu, $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null) RAM, $(uname -sr); $(rustc --version 2>/dev/null || echo rustc ?), release build; $DOMAINS Domains × $PER_DOMAIN Devices + $PER_DOMAIN Extensions; wrk -t2, ${DURATION}s per run, on the same machine"
echo
echo "| server | connections | requests/s | p50 ms | p99 ms | non-2xx | cold start (directory compiled, ms) | RSS after start (MiB) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '{ split($3, r, " "); printf "| %s | %s | %.0f | %.2f | %.2f | %s | %s | %s |\n", $1, $2, r[1], r[2], r[3], r[4], $4, $5 }' "$RESULTS"
