# Shared by the benchmark scripts (source it): start and stop a switchboard server of our own.
#
# The caller sets ROOT (the repository), WORK (a scratch folder), ADMIN_EMAIL, ADMIN_PASSWORD and
# KEY_FILE (the SIP-secret key file; keep it with a database you reuse), and calls find_binary.

# find_binary: BIN = $SWITCHBOARD_BIN, else the release binary, built now (in $CARGO_TARGET_DIR
# when set).
find_binary() {
    if [ -n "${SWITCHBOARD_BIN:-}" ]; then
        BIN=$SWITCHBOARD_BIN
    else
        echo "building the release binary (cargo build --release -p switchboard-api)…" >&2
        (cd "$ROOT" && cargo build --release -q -p switchboard-api --bin switchboard)
        BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/switchboard
    fi
}

# start_server DATABASE_URL [NAME=VALUE ...]: starts `serve` on a free port with only the given
# environment (nothing of the caller's SWITCHBOARD_* leaks in), waits for its port, logs in as
# the administrator. Sets SERVER_PID, BASE (http://127.0.0.1:PORT) and TOKEN; the log is
# $WORK/server.log.
start_server() {
    local url=$1
    shift
    local log=$WORK/server.log
    : >"$log"
    env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
        SWITCHBOARD_DATABASE_URL="$url" \
        SWITCHBOARD_HTTP__PORT=0 \
        SWITCHBOARD_LOG__LEVEL=info \
        SWITCHBOARD_SECRETS__KEY_FILE="$KEY_FILE" \
        SWITCHBOARD_AUTH__ACCESS_TOKEN_TTL_SECS=86400 \
        SWITCHBOARD_BOOTSTRAP__ADMIN_EMAIL="$ADMIN_EMAIL" \
        SWITCHBOARD_BOOTSTRAP__ADMIN_PASSWORD="$ADMIN_PASSWORD" \
        "$@" \
        "$BIN" serve >"$log" 2>&1 &
    SERVER_PID=$!
    local port=""
    for _ in $(seq 1 600); do
        port=$(grep -oE 'port=[0-9]+' "$log" | head -1 | cut -d= -f2 || true)
        [ -n "$port" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; echo "the server did not start" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$log" >&2; echo "the server did not report its port" >&2; exit 1; }
    BASE=http://127.0.0.1:$port
    TOKEN=$(curl -sf -H 'content-type: application/json' \
        -d "{\"email\": \"$ADMIN_EMAIL\", \"password\": \"$ADMIN_PASSWORD\"}" \
        "$BASE/api/v1/auth/login" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
}

# stop_server: stops it (SIGTERM: a graceful shutdown) and waits.
stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
