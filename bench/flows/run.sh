#!/usr/bin/env bash
# The mod_xml_curl dialplan lookups of call flows (ring groups, IVR menus, time conditions)
# under wrk, next to nginx serving a fixed document of the same size, with a phone dialling an
# Extension (the dialplan benchmark's "internal" kind) as the baseline in the same run.
#
# For each database it starts its own server and creates through the API DOMAINS Domains, each
# importing PER_DOMAIN Extensions (1000…) with a fixed Device each, then RING_GROUPS ring groups
# (numbers 2000…, 5 Extensions each, the STRATEGIES in turn), IVRS IVR menus (5 keys, each to a
# ring group; direct dialling on), CONDITIONS time conditions (Mon–Fri 09:00–17:00 → an IVR
# menu, closed → a ring group) and NUMBERS Numbers, each pointing at a time condition, and a
# gateway (proxy 127.0.0.2, nothing is sent to it) that brings the Numbers' calls. The flows of
# each kind are created PARALLEL at a time. The server is then restarted (every Domain compiled
# at start) and wrk sends, prebuilt, these lookups (see lookups.lua):
#
#   group      a phone (its Device id in switchboard_device_id) dials a ring group's number in
#              the Domain's context                → bridge to the members' phones
#   condition  switchboard-flow-<time condition>, after the transfer of a carrier's call for a
#              Number (switchboard_inbound_number)  → transfer to the IVR or the ring group
#   ivr        switchboard-flow-<IVR>, the same call → play_and_get_digits
#   key        switchboard-flow-<IVR>-key-1          → transfer to the key's ring group
#   internal   a phone dials another Extension (the baseline) → bridge
#   inbound    the carrier's call for a Number in `public` → transfer to switchboard-flow-<tc>
#              (checked; measured only with PER_KIND=1)
#
# Before measuring, curl checks that a sample of every kind gets that answer, for the right
# flow; the script fails otherwise. wrk: the four flow kinds in turn, then internal alone, each
# at 16 connections (latency) and 128 (saturation); then nginx with the flow kinds' requests.
#
# Needs: cargo, curl, jq, awk, wrk, nginx; psql for PostgreSQL.
#
#   bench/flows/run.sh                      # SQLite
#   bench/flows/run.sh sqlite postgres      # both databases (PostgreSQL at BENCH_POSTGRES_URL)
#   DOMAINS=20 PER_DOMAIN=100 RING_GROUPS=200 IVRS=50 CONDITIONS=50 NUMBERS=50 DURATION=15 PARALLEL=4 \
#       bench/flows/run.sh                  # the defaults
#   SWITCHBOARD_BIN=target/release/switchboard bench/flows/run.sh   # skip the build
#   PER_KIND=1 bench/flows/run.sh            # also each flow kind (and inbound) alone, 128 connections
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
DOMAINS=${DOMAINS:-20}
PER_DOMAIN=${PER_DOMAIN:-100}
RING_GROUPS=${RING_GROUPS:-200}
IVRS=${IVRS:-50}
CONDITIONS=${CONDITIONS:-50}
NUMBERS=${NUMBERS:-$CONDITIONS}
DURATION=${DURATION:-15}
PARALLEL=${PARALLEL:-4}
read -r -a STRATEGIES <<<"${STRATEGIES:-simultaneous sequential round_robin longest_idle}"
if [ $# -gt 0 ]; then BACKENDS=("$@"); else BACKENDS=(sqlite); fi
ADMIN_EMAIL=bench@switchboard.test
ADMIN_PASSWORD=Bench-Password-Long-Enough-42
XML_CURL_PASSWORD=bench-xml-curl-password
AUTH="Basic $(printf 'freeswitch:%s' "$XML_CURL_PASSWORD" | base64 -w0)"
CARRIER_IP=127.0.0.2
FIXTURE=$ROOT/tests/fixtures/freeswitch/xmlcurl/dialplan-not-found-202.body
FLOW_KINDS="group condition ivr key"

for tool in curl jq awk wrk nginx; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install wrk nginx-light curl jq)" >&2; exit 2; }
done
[ "$DOMAINS" -le 9999 ] || { echo "DOMAINS must be below 10 000" >&2; exit 2; }
[ "$PER_DOMAIN" -ge 5 ] && [ "$PER_DOMAIN" -le 1000 ] || { echo "PER_DOMAIN must be 5…1000 (ring groups dial 2000…)" >&2; exit 2; }
[ "$RING_GROUPS" -ge 1 ] && [ "$RING_GROUPS" -le 1000 ] || { echo "RING_GROUPS must be 1…1000" >&2; exit 2; }
[ "$IVRS" -ge 1 ] && [ "$IVRS" -le 1000 ] || { echo "IVRS must be 1…1000" >&2; exit 2; }
[ "$CONDITIONS" -ge 1 ] && [ "$CONDITIONS" -le 1000 ] || { echo "CONDITIONS must be 1…1000" >&2; exit 2; }
[ "$NUMBERS" -ge 1 ] && [ "$NUMBERS" -le "$CONDITIONS" ] && [ "$NUMBERS" -le 100 ] || { echo "NUMBERS must be 1…100 and at most CONDITIONS" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench-flows.XXXXXX")
SERVER_PID=""
NGINX_PID=""
# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"
trap bench_cleanup EXIT
find_binary

# --- the data ------------------------------------------------------------------------------

# did DOMAIN_NUMBER N: the Domain's Nth Number, E.164.
did() { printf '+49308%04d%02d' "$1" "$2"; }

# post_parallel PATH DIR: POSTs every DIR/<n>.json to PATH, PARALLEL at a time; the answer of
# each is DIR/<n>.out. A 503 or 429 (a busy database) is sent again, alone; anything else but
# 201 fails the run. POST_RATE: the creates per second of the parallel part.
post_parallel() {
    local path=$1 dir=$2 n status start
    start=$(date +%s.%N)
    find "$dir" -name '*.json' -printf '%f\n' | sed 's/\.json$//' \
        | xargs -P "$PARALLEL" -I{} curl -s -o "$dir/{}.out" -w '{} %{http_code}\n' -X POST \
            -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
            --data-binary "@$dir/{}.json" "$BASE$path" >"$dir/status" || true
    POST_RATE=$(awk -v s="$start" -v e="$(date +%s.%N)" -v n="$(wc -l <"$dir/status")" 'BEGIN { printf "%.0f", n / (e - s) }')
    while read -r n status; do
        case $status in
            201) ;;
            503 | 429) RETRIED=$((RETRIED + 1)); api_send POST "$path" "$(cat "$dir/$n.json")" >"$dir/$n.out" ;;
            *) echo "POST $path ($dir/$n.json) answered $status:" >&2; head -c 2000 "$dir/$n.out" >&2; echo >&2; exit 1 ;;
        esac
    done <"$dir/status"
    [ "$(wc -l <"$dir/status")" = "$(find "$dir" -name '*.json' | wc -l)" ] || { echo "POST $path: answers are missing" >&2; exit 1; }
}

# ids DIR COUNT → the created ids of DIR/0.out … DIR/<COUNT-1>.out, in order, one a line.
ids() {
    # shellcheck disable=SC2046 # the paths have no spaces (mktemp)
    jq -r .id $(seq -f "$1/%.0f.out" 0 $(($2 - 1)))
}

# seed → $WORK/calls.txt, one line per lookup wrk may send (see lookups.lua):
#   internal|group DOMAIN SIP_USER DEVICE_ID DIALLED EXPECT
#   condition|ivr|key DOMAIN CALLER NUMBER FLOW_LOOKUP EXPECT
#   inbound DOMAIN CALLER TOKEN NUMBER EXPECT
# EXPECT: an extended regular expression (no spaces) the answer must hold, besides the kind's
# own application (check_answers).
seed() {
    local d i g t k domain_id sip_domain dir gw token user device label strategy caller cursor page rates sep
    local -a ext dev_user dev_id group_ids ivr_ids tc_ids
    : >"$WORK/calls.txt"
    RETRIED=0
    for d in $(seq 1 "$DOMAINS"); do
        sip_domain=t$d.flows.test
        domain_id=$(create_domain "Tenant $d" "$sip_domain")
        extension_rows "$d" "$PER_DOMAIN" >"$WORK/rows.json"
        import_rows "$domain_id" "$WORK/rows.json"
        api "/api/v1/domains/$domain_id/extensions?limit=500" | jq -r '.items[] | "\(.number) \(.id)"' \
            | sort -n >"$WORK/extensions.txt"
        [ "$(wc -l <"$WORK/extensions.txt")" -ge "$PER_DOMAIN" ] || { echo "the first page of Extensions is short (PER_DOMAIN ≤ 500)" >&2; exit 1; }
        mapfile -t ext < <(cut -d' ' -f2 "$WORK/extensions.txt")
        # The Devices ("Desk <i>" owned by Extension 1000 + i): id and SIP user, by i.
        cursor=""
        : >"$WORK/devices.txt"
        while :; do
            page=$(api "/api/v1/domains/$domain_id/devices?limit=500${cursor:+&cursor=$cursor}")
            jq -r '.items[] | "\(.label) \(.id) \(.sip_username)"' <<<"$page" >>"$WORK/devices.txt"
            cursor=$(jq -r '.next_cursor // empty' <<<"$page")
            [ -n "$cursor" ] || break
        done
        dev_id=() dev_user=()
        while read -r _ label device user; do
            dev_id[label]=$device
            dev_user[label]=$user
        done <"$WORK/devices.txt"
        [ "${#dev_id[@]}" = "$PER_DOMAIN" ] || { echo "expected $PER_DOMAIN Devices in $sip_domain, found ${#dev_id[@]}" >&2; exit 1; }

        # Ring groups: 5 Extensions each (group g: Extensions 5g … 5g+4, around), the
        # strategies in turn.
        dir=$WORK/groups-$d
        mkdir -p "$dir"
        for g in $(seq 0 $((RING_GROUPS - 1))); do
            strategy=${STRATEGIES[g % ${#STRATEGIES[@]}]}
            {
                printf '{"name": "Group %d", "number": "%d", "strategy": "%s", "ring_secs": 60, "members": [' "$g" $((2000 + g)) "$strategy"
                sep=""
                for k in 0 1 2 3 4; do
                    printf '%s{"extension_id": "%s", "ring_secs": 20}' "$sep" "${ext[(g * 5 + k) % PER_DOMAIN]}"
                    sep=,
                done
                printf '], "when_unanswered": {"type": "hang_up", "cause": "busy"}}\n'
            } >"$dir/$g.json"
        done
        post_parallel "/api/v1/domains/$domain_id/ring-groups" "$dir"
        rates="ring groups $POST_RATE"
        mapfile -t group_ids < <(ids "$dir" "$RING_GROUPS")

        # IVR menus: keys 1–5, menu i's key k to ring group 4i + k - 1 (around).
        dir=$WORK/ivrs-$d
        mkdir -p "$dir"
        for i in $(seq 0 $((IVRS - 1))); do
            {
                printf '{"name": "Menu %d", "greeting": {"type": "builtin", "prompt": "beep"}, "options": [' "$i"
                sep=""
                for k in 1 2 3 4 5; do
                    printf '%s{"digits": "%d", "destination": {"type": "ring_group", "ring_group_id": "%s"}}' \
                        "$sep" "$k" "${group_ids[(i * 4 + k - 1) % RING_GROUPS]}"
                    sep=,
                done
                printf '], "direct_dial": true, "when_no_choice": {"type": "hang_up", "cause": "normal"}}\n'
            } >"$dir/$i.json"
        done
        post_parallel "/api/v1/domains/$domain_id/ivr-menus" "$dir"
        rates="$rates, IVR menus $POST_RATE"
        mapfile -t ivr_ids < <(ids "$dir" "$IVRS")

        # Time conditions: open Mon–Fri 09–17 (the Domain's time zone) → menu t, closed →
        # ring group 4t.
        dir=$WORK/conditions-$d
        mkdir -p "$dir"
        for t in $(seq 0 $((CONDITIONS - 1))); do
            printf '{"name": "Hours %d", "weekly": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}], "special_days": [], "when_open": {"type": "ivr", "ivr_id": "%s"}, "when_closed": {"type": "ring_group", "ring_group_id": "%s"}}\n' \
                "$t" "${ivr_ids[t % IVRS]}" "${group_ids[(t * 4) % RING_GROUPS]}" >"$dir/$t.json"
        done
        post_parallel "/api/v1/domains/$domain_id/time-conditions" "$dir"
        rates="$rates, time conditions $POST_RATE"
        mapfile -t tc_ids < <(ids "$dir" "$CONDITIONS")

        # Numbers: Number n to time condition n.
        dir=$WORK/numbers-$d
        mkdir -p "$dir"
        for t in $(seq 0 $((NUMBERS - 1))); do
            printf '{"number": "%s", "domain_id": "%s", "destination": {"type": "time_condition", "time_condition_id": "%s"}}\n' \
                "$(did "$d" "$t")" "$domain_id" "${tc_ids[t]}" >"$dir/$t.json"
        done
        post_parallel /api/v1/numbers "$dir"
        rates="$rates, Numbers $POST_RATE"
        gw=$(api_send POST "/api/v1/domains/$domain_id/gateways" "{\"name\": \"carrier\", \"proxy\": \"$CARRIER_IP:5080\"}")
        token=$(jq -r .freeswitch_name <<<"$gw")@carriers.switchboard.invalid

        # The lookups. A time condition's either branch is right (the run's clock decides).
        for i in $(seq 0 $((PER_DOMAIN - 1))); do
            echo "internal $sip_domain ${dev_user[i]} ${dev_id[i]} $((1000 + (i + 1 + RANDOM % (PER_DOMAIN - 1)) % PER_DOMAIN)) sofia_contact"
        done
        for g in $(seq 0 $((RING_GROUPS - 1))); do
            i=$(((g * 7) % PER_DOMAIN))
            echo "group $sip_domain ${dev_user[i]} ${dev_id[i]} $((2000 + g)) switchboard_ring_group_id=${group_ids[g]}"
        done
        for t in $(seq 0 $((CONDITIONS - 1))); do
            caller=4917012$d$t
            echo "condition $sip_domain $caller $(did "$d" $((t % NUMBERS))) switchboard-flow-${tc_ids[t]} data=\"switchboard-flow-(${ivr_ids[t % IVRS]}|${group_ids[(t * 4) % RING_GROUPS]}).XML.$sip_domain\""
        done
        for i in $(seq 0 $((IVRS - 1))); do
            caller=4917013$d$i
            echo "ivr $sip_domain $caller $(did "$d" $((i % NUMBERS))) switchboard-flow-${ivr_ids[i]} switchboard_ivr_id=${ivr_ids[i]}"
            echo "key $sip_domain $caller $(did "$d" $((i % NUMBERS))) switchboard-flow-${ivr_ids[i]}-key-1 data=\"switchboard-flow-${group_ids[(i * 4) % RING_GROUPS]}.XML.$sip_domain\""
        done
        for t in $(seq 0 $((NUMBERS - 1))); do
            echo "inbound $sip_domain 4917014$d$t $token $(did "$d" "$t") data=\"switchboard-flow-${tc_ids[t]}.XML.$sip_domain\""
        done
        echo "  seeded $d of $DOMAINS Domains ($((SECONDS - SEED_START)) s); creates per second: $rates" >&2
    done >>"$WORK/calls.txt"
}

# --- the request bodies --------------------------------------------------------------------

# The three templates (placeholders @DOMAIN@ @USER@ @DEST@ and @VALUE@: the phone's Device id,
# the carrier's token or the Number), written as $WORK/<template>.body and as the Lua table
# $WORK/data.lua — the dialplan benchmark's, see bench/dialplan/run.sh.
write_templates() {
    sed -e 's/d-7f3a/@USER@/g; s/acme\.example\.net/@DOMAIN@/g; s/=202&/=@DEST@\&/g; s/202%40/@DEST@%40/g' "$FIXTURE" >"$WORK/captured.body"
    set_fields "$WORK/captured.body" variable_switchboard_domain=@DOMAIN@ variable_switchboard_device_id=@VALUE@ \
        >"$WORK/phone.body"
    local carrier=(
        Caller-Context=public Hunt-Context=public
        Caller-Network-Addr="$CARRIER_IP" Hunt-Network-Addr="$CARRIER_IP"
        variable_sip_network_ip="$CARRIER_IP" variable_sip_received_ip="$CARRIER_IP" variable_sip_contact_host="$CARRIER_IP"
        variable_sip_acl_authed_by=switchboard-carriers variable_sip_acl_token=@VALUE@
        variable_sip_auth_username= variable_sip_auth_realm= variable_sip_number_alias= variable_number_alias=
        variable_requested_user_name= variable_requested_domain_name= variable_user_context= variable_user_name=
        variable_effective_caller_id_name= variable_effective_caller_id_number= variable_presence_id=
        variable_accountcode= variable_domain_name= Channel-Presence-ID=
    )
    set_fields "$WORK/captured.body" "${carrier[@]}" >"$WORK/carrier.body"
    # The lookups after switchboard's transfer of the carrier's call (into the flow, and on).
    set_fields "$WORK/carrier.body" Caller-Context=@DOMAIN@ Hunt-Context=@DOMAIN@ variable_domain_name=@DOMAIN@ \
        variable_switchboard_domain=@DOMAIN@ variable_switchboard_inbound_number=@VALUE@ \
        variable_sip_acl_token=sb_gateway%40carriers.switchboard.invalid >"$WORK/transfer.body"
    {
        echo "return {"
        for kind in phone carrier transfer; do printf '  %s = [==[%s]==],\n' "$kind" "$(cat "$WORK/$kind.body")"; done
        echo "}"
    } >"$WORK/data.lua"
}

# body KIND DOMAIN USER VALUE DEST → the request body (as lookups.lua builds it).
body() {
    local template value dest=${5//+/%2B}
    dest=${dest//@/%40}
    case $1 in
        internal | group) template=phone ;;
        inbound) template=carrier ;;
        condition | ivr | key) template=transfer ;;
    esac
    value=${4//+/%2B}
    value=${value//@/%40}
    sed -e "s/@DOMAIN@/$2/g; s/@USER@/$3/g; s/@VALUE@/$value/g; s/@DEST@/$dest/g" "$WORK/$template.body"
}

# check_answers: a sample of every kind answered as it should be, else the run fails. Keeps
# every sample answer in $WORK/answers/ (the flow kinds' mean size is nginx's document).
check_answers() {
    local kind domain user value dest expect want n=0
    rm -rf "$WORK/answers"
    mkdir -p "$WORK/answers"
    while read -r kind domain user value dest expect; do
        case $kind in
            internal | group) want='application="bridge" data="[^"]*sofia_contact' ;;
            condition | key | inbound) want='application="transfer" data="switchboard-flow-' ;;
            ivr) want='application="play_and_get_digits" data="1 [0-9]+ 3 5000 # [^"]* switchboard_ivr_choice \^\(1\|2\|3\|4\|5\|\\d\{4,4\}\)\$ 2000"' ;;
        esac
        n=$((n + 1))
        body "$kind" "$domain" "$user" "$value" "$dest" >"$WORK/req.body"
        ask_xml_curl "$WORK/req.body" "$WORK/answers/$n-$kind.xml"
        grep -qE "$want" "$WORK/answers/$n-$kind.xml" && grep -qE "$expect" "$WORK/answers/$n-$kind.xml" || {
            echo "$kind $domain $user $value $dest was not answered as expected ($want; $expect):" >&2
            cat "$WORK/answers/$n-$kind.xml" >&2
            exit 1
        }
    done < <(for k in internal $FLOW_KINDS inbound; do grep "^$k " "$WORK/calls.txt" | shuf -n 10; done)
    echo "  answer sizes (mean bytes): $(for k in internal $FLOW_KINDS inbound; do cat "$WORK"/answers/*-"$k".xml | wc -c | awk -v k="$k" -v n="$(find "$WORK/answers" -name "*-$k.xml" | wc -l)" '{ printf "%s %d, ", k, $1 / n }'; done | sed 's/, $//')" >&2
    echo "  checked $n sample lookups: every ring group's number bridges to its members, every time condition and IVR key transfers to its flow, every IVR plays and collects, every Extension rings, every Number enters its time condition" >&2
}

export BENCH_DATA=$WORK/data.lua BENCH_CALLS=$WORK/calls.txt
wrk_calls() { # KINDS CONNECTIONS URL
    BENCH_KINDS=$1 run_wrk "$ROOT/bench/flows/lookups.lua" "$2" "$3"
}

KEY_FILE=$WORK/secrets.key
RESULTS=$WORK/results.tsv
: >"$RESULTS"

# measure SERVER_LABEL KIND_LABEL KINDS CONNECTIONS URL: one wrk run, a row of the table.
measure() {
    local r
    r=$(wrk_calls "$3" "$4" "$5")
    echo "  $2, $4 connections: $r" >&2
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$4" "$r" >>"$RESULTS"
}

bench_backend() { # BACKEND URL
    echo "$1: seeding $DOMAINS Domains × $PER_DOMAIN Extensions with a Device, $RING_GROUPS ring groups, $IVRS IVR menus, $CONDITIONS time conditions, $NUMBERS Numbers and a gateway each (flows $PARALLEL at a time)…" >&2
    start_server "$2" SWITCHBOARD_FREESWITCH__XML_CURL__PASSWORD="$XML_CURL_PASSWORD"
    SEED_START=$SECONDS
    seed
    echo "  seeded in $((SECONDS - SEED_START)) s ($RETRIED creates sent again after a 503/429)" >&2
    stop_server
    if [ "${2%%:*}" = postgres ]; then psql -q "$2" -c 'VACUUM ANALYZE' -c 'CHECKPOINT' >/dev/null; fi
    start_server "$2" SWITCHBOARD_FREESWITCH__XML_CURL__PASSWORD="$XML_CURL_PASSWORD"
    write_templates
    check_answers
    local before kind
    before=$(curl -sf "$BASE/metrics" | grep -E '^switchboard_xml_curl_(answers|refusals)_total' || true)
    measure "$1" "flows: group, condition, ivr, key in turn" "$FLOW_KINDS" 16 "$BASE"
    measure "$1" "flows: group, condition, ivr, key in turn" "$FLOW_KINDS" 128 "$BASE"
    measure "$1" "internal (baseline)" internal 16 "$BASE"
    measure "$1" "internal (baseline)" internal 128 "$BASE"
    if [ "${PER_KIND:-0}" = 1 ]; then
        for kind in $FLOW_KINDS inbound; do
            measure "$1" "$kind only" "$kind" 128 "$BASE"
        done
    fi
    echo "  answers counted by /metrics before and after wrk:" >&2
    { echo "$before"; curl -sf "$BASE/metrics" | grep -E '^switchboard_xml_curl_(answers|refusals)_total'; } | sed 's/^/    /' >&2 || true
    echo "  server log lines at WARN or ERROR: $(grep -cE 'WARN|ERROR' "$WORK/server.log" || true)" >&2
    # By message (ids left out), the most frequent first.
    grep -E 'WARN|ERROR' "$WORK/server.log" | sed -E 's/^.*(WARN|ERROR)/\1/; s/(flow_id|domain_id|id)=[0-9a-f-]{36}/\1=…/g' | cut -c1-300 \
        | sort | uniq -c | sort -rn | head -5 | sed 's/^/    /' >&2 || true
    stop_server
}

for backend in "${BACKENDS[@]}"; do
    case $backend in
        sqlite) bench_backend "switchboard, SQLite" "sqlite://$WORK/bench.db?mode=rwc" ;;
        postgres)
            postgres_ready || { echo "postgres: skipped, nothing answers at $PG_URL (or psql is missing)" >&2; continue; }
            create_pg_database "switchboard_bench_flows_$$"
            bench_backend "switchboard, PostgreSQL" "$PG_DB_URL"
            drop_pg_database
            ;;
        *) echo "unknown backend $backend (sqlite or postgres)" >&2; exit 2 ;;
    esac
    rm -f "$WORK/bench.db"*
done

# nginx answers a document of the flow kinds' sample answers' mean size (their kinds in equal
# parts, as wrk sends them), to the same requests.
cat "$WORK"/answers/*-{group,condition,ivr,key}.xml >"$WORK/all-answers.xml"
size=$(($(wc -c <"$WORK/all-answers.xml") / $(find "$WORK/answers" -name '*-group.xml' -o -name '*-condition.xml' -o -name '*-ivr.xml' -o -name '*-key.xml' | wc -l)))
head -c "$size" "$WORK/all-answers.xml" >"$WORK/typical-answer.xml"
echo "nginx: a fixed document of $size bytes (the mean of the flow kinds' sample answers)…" >&2
start_nginx "$WORK/typical-answer.xml"
measure "nginx (fixed $size-byte document)" "flows' requests" "$FLOW_KINDS" 16 "$NGINX_URL"
measure "nginx (fixed $size-byte document)" "flows' requests" "$FLOW_KINDS" 128 "$NGINX_URL"
stop_nginx

echo
echo "Machine: $(machine); $(rustc --version 2>/dev/null || echo rustc ?), release build; $DOMAINS Domains × $PER_DOMAIN Extensions + Devices, $RING_GROUPS ring groups (${STRATEGIES[*]} in turn), $IVRS IVR menus, $CONDITIONS time conditions, $NUMBERS Numbers each; request bodies $(wc -c <"$WORK/phone.body") bytes (captured); wrk -t2, ${DURATION}s per run, on the same machine; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| server | kind | connections | requests/s | share of nginx | p50 ms | p99 ms | p99 vs nginx | errors |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '
    { split($4, r, " "); srv[NR] = $1; kind[NR] = $2; conns[NR] = $3; rps[NR] = r[1]; p50[NR] = r[2]; p99[NR] = r[3]; err[NR] = r[4]
      if ($1 ~ /^nginx/) { nrps[$3] = r[1]; np99[$3] = r[3] } }
    END {
        for (i = 1; i <= NR; i++) {
            share = (srv[i] !~ /^nginx/ && nrps[conns[i]] > 0) ? sprintf("%.0f %%", 100 * rps[i] / nrps[conns[i]]) : ""
            ratio = (srv[i] !~ /^nginx/ && np99[conns[i]] > 0) ? sprintf("%.2f×", p99[i] / np99[conns[i]]) : ""
            printf "| %s | %s | %s | %.0f | %s | %.2f | %.2f | %s | %s |\n", srv[i], kind[i], conns[i], rps[i], share, p50[i], p99[i], ratio, err[i]
        }
    }' "$RESULTS"
