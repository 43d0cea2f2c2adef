#!/usr/bin/env bash
# mod_xml_curl dialplan benchmark: how fast `POST /freeswitch/xml` answers `section=dialplan`
# lookups as FreeSWITCH sends them for calls, next to nginx answering a fixed document of the
# same size with the same wrk load (the practical ceiling of HTTP on this machine). The twin of
# bench/directory/run.sh.
#
# For each database it builds, through the API, DOMAINS Domains, each with PER_DOMAIN Extensions
# (1000…) that own a fixed Device each (import), German numbering (country code 49, caller ID
# from the Domain's first Number), a gateway (proxy 127.0.0.2:5080: no FreeSWITCH here, nothing
# is ever sent to it), two Outbound Routes (national `0Z.`, international `00Z.`) and NUMBERS
# Numbers (+49309<domain><n>) ringing Extensions 1000…. Then wrk sends, with
# bench/dialplan/lookups.lua, the captured dialplan request (`dialplan-not-found-202.body`) with
# the call's fields swapped in, four kinds in turn:
#
#   internal   a phone (its Device id in switchboard_device_id, as our directory sets it) dials
#              another Extension of its Domain → ring plan: `bridge`
#   outbound   a phone dials a national number (030…) → the National route: `bridge` to the
#              gateway
#   inbound    a carrier's call in the `public` context for a Number (let in by the
#              switchboard-carriers ACL: sip_acl_authed_by, sip_acl_token=<gateway>@carriers…,
#              from the gateway's address 127.0.0.2) → `transfer` to the Extension in the
#              Domain's context
#   transfer   the lookup that transfer makes (the Domain's context, switchboard_inbound_number
#              set) → ring plan: `bridge`
#
# Before measuring, curl checks a sample of every kind gets that answer (never "not found");
# the script fails otherwise. 16 connections (latency), then 128 (saturation).
#
# Needs: cargo, curl, jq, awk, wrk, nginx; psql for PostgreSQL.
#
#   bench/dialplan/run.sh                    # SQLite
#   bench/dialplan/run.sh sqlite postgres    # both databases (PostgreSQL at BENCH_POSTGRES_URL)
#   DOMAINS=200 PER_DOMAIN=100 NUMBERS=10 DURATION=15 bench/dialplan/run.sh   # the defaults
#   SWITCHBOARD_BIN=target/release/switchboard bench/dialplan/run.sh   # skip the build
#   PER_KIND=1 bench/dialplan/run.sh          # also each kind alone at 128 connections
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
DOMAINS=${DOMAINS:-200}
PER_DOMAIN=${PER_DOMAIN:-100}
NUMBERS=${NUMBERS:-10}
DURATION=${DURATION:-15}
if [ $# -gt 0 ]; then BACKENDS=("$@"); else BACKENDS=(sqlite); fi
ADMIN_EMAIL=bench@switchboard.test
ADMIN_PASSWORD=Bench-Password-Long-Enough-42
XML_CURL_PASSWORD=bench-xml-curl-password
AUTH="Basic $(printf 'freeswitch:%s' "$XML_CURL_PASSWORD" | base64 -w0)"
CARRIER_IP=127.0.0.2
FIXTURE=$ROOT/tests/fixtures/freeswitch/xmlcurl/dialplan-not-found-202.body

for tool in curl jq awk wrk nginx; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install wrk nginx-light curl jq)" >&2; exit 2; }
done
if [ "$NUMBERS" -gt "$PER_DOMAIN" ] || [ "$NUMBERS" -gt 100 ]; then echo "NUMBERS must be at most PER_DOMAIN and 100" >&2; exit 2; fi
[ "$DOMAINS" -le 9999 ] || { echo "DOMAINS must be below 10 000" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench-dialplan.XXXXXX")
SERVER_PID=""
NGINX_PID=""
# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"
trap bench_cleanup EXIT
find_binary

# --- the data ------------------------------------------------------------------------------

# did DOMAIN_NUMBER N: the Domain's Nth Number, E.164.
did() { printf '+49309%04d%02d' "$1" "$2"; }

# seed → $WORK/calls.txt, one line per lookup wrk may send (see lookups.lua):
#   internal|outbound DOMAIN SIP_USER DEVICE_ID DIALLED
#   inbound DOMAIN CALLER TOKEN NUMBER          (TOKEN: the gateway's sip_acl_token)
#   transfer DOMAIN CALLER NUMBER EXTENSION
seed() {
    local d n domain_id sip_domain gw token ext_id user device label i
    : >"$WORK/calls.txt"
    for d in $(seq 1 "$DOMAINS"); do
        sip_domain=t$d.dialplan.test
        domain_id=$(create_domain "Tenant $d" "$sip_domain")
        extension_rows "$d" "$PER_DOMAIN" >"$WORK/rows.json"
        import_rows "$domain_id" "$WORK/rows.json"
        api "/api/v1/domains/$domain_id/extensions?limit=500" | jq -r '.items[] | "\(.number) \(.id)"' >"$WORK/extensions.txt"
        [ "$(wc -l <"$WORK/extensions.txt")" -ge "$NUMBERS" ] || { echo "the first page of Extensions is short" >&2; exit 1; }
        for n in $(seq 0 $((NUMBERS - 1))); do
            ext_id=$(awk -v x=$((1000 + n)) '$1 == x { print $2 }' "$WORK/extensions.txt")
            api_send POST /api/v1/numbers "{\"number\": \"$(did "$d" "$n")\", \"domain_id\": \"$domain_id\",
                \"destination\": {\"type\": \"extension\", \"extension_id\": \"$ext_id\"}}" >/dev/null
        done
        api_send PUT "/api/v1/domains/$domain_id/calling-settings" \
            "{\"country_code\": \"49\", \"outbound_caller_id_number\": \"$(did "$d" 0)\"}" >/dev/null
        gw=$(api_send POST "/api/v1/domains/$domain_id/gateways" "{\"name\": \"carrier\", \"proxy\": \"$CARRIER_IP:5080\"}")
        token=$(jq -r .freeswitch_name <<<"$gw")@carriers.switchboard.invalid
        gw=$(jq -r .id <<<"$gw")
        api_send POST "/api/v1/domains/$domain_id/outbound-routes" \
            "{\"name\": \"National\", \"patterns\": [\"0Z.\"], \"toll_class\": \"national\", \"gateway_ids\": [\"$gw\"]}" >/dev/null
        api_send POST "/api/v1/domains/$domain_id/outbound-routes" \
            "{\"name\": \"International\", \"patterns\": [\"00Z.\"], \"toll_class\": \"international\", \"gateway_ids\": [\"$gw\"]}" >/dev/null
        # Every Device calls another Extension and a national number; every Number is called.
        device_credentials "$domain_id" >"$WORK/credentials.txt"
        paste -d';' "$WORK/devices.txt" "$WORK/credentials.txt" | while IFS=';' read -r device user _; do
            label=${device#*$'\t'}
            device=${device%%$'\t'*}
            i=${label#Desk }
            echo "internal $sip_domain $user $device $((1000 + (i + 1 + RANDOM % (PER_DOMAIN - 1)) % PER_DOMAIN))"
            printf 'outbound %s %s %s 030%07d\n' "$sip_domain" "$user" "$device" $((RANDOM * 100 + i))
        done >>"$WORK/calls.txt"
        for n in $(seq 0 $((NUMBERS - 1))); do
            echo "inbound $sip_domain 4917012$d$n $token $(did "$d" "$n")"
            echo "transfer $sip_domain 4917012$d$n $(did "$d" "$n") $((1000 + n))"
        done >>"$WORK/calls.txt"
        if [ $((d % 50)) = 0 ]; then echo "  seeded $d of $DOMAINS Domains" >&2; fi
    done
}

# --- the request bodies --------------------------------------------------------------------

# The three templates (placeholders @DOMAIN@ @USER@ @DEST@ and @VALUE@: the phone's Device id,
# the carrier's token or the Number), written as $WORK/<template>.body and as the Lua table
# $WORK/data.lua.
write_templates() {
    # The captured call of phone d-7f3a (acme.example.net) to 202, as a template.
    sed -e 's/d-7f3a/@USER@/g; s/acme\.example\.net/@DOMAIN@/g; s/=202&/=@DEST@\&/g; s/202%40/@DEST@%40/g' "$FIXTURE" >"$WORK/captured.body"
    set_fields "$WORK/captured.body" variable_switchboard_domain=@DOMAIN@ variable_switchboard_device_id=@VALUE@ \
        >"$WORK/phone.body"
    # A carrier's call: no digest user, no directory variables, from the gateway's address, let
    # in by the ACL.
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
    # The lookup of the carrier's call after switchboard's transfer to the Extension.
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
        internal | outbound) template=phone ;;
        inbound) template=carrier ;;
        transfer) template=transfer ;;
    esac
    value=${4//+/%2B}
    value=${value//@/%40}
    sed -e "s/@DOMAIN@/$2/g; s/@USER@/$3/g; s/@VALUE@/$value/g; s/@DEST@/$dest/g" "$WORK/$template.body"
}

# check_answers: a sample of every kind answered as it should be, else the run fails. Keeps
# every sample answer in $WORK/answers/ (their mean size is nginx's document).
check_answers() {
    local kind domain user value dest want n=0
    mkdir -p "$WORK/answers"
    while read -r kind domain user value dest; do
        case $kind in
            internal) want='application="bridge" data="[^"]*sofia_contact' ;;
            outbound) want='application="bridge" data="sofia/gateway/sb_[^/]*/\+4930' ;;
            inbound) want="application=\"transfer\" data=\"[0-9]+ XML $domain\"" ;;
            transfer) want='application="bridge" data="[^"]*sofia_contact' ;;
        esac
        n=$((n + 1))
        body "$kind" "$domain" "$user" "$value" "$dest" >"$WORK/req.body"
        ask_xml_curl "$WORK/req.body" "$WORK/answers/$n-$kind.xml"
        grep -qE "$want" "$WORK/answers/$n-$kind.xml" || {
            echo "$kind $domain $user $value $dest was not answered as expected ($want):" >&2
            cat "$WORK/answers/$n-$kind.xml" >&2
            exit 1
        }
    done < <(for k in internal outbound inbound transfer; do grep "^$k " "$WORK/calls.txt" | shuf -n 10; done)
    echo "  checked $n sample lookups: every internal and transfer lookup bridges to the Extension's phone, every outbound one to the gateway, every inbound one transfers to the Extension" >&2
}

export BENCH_DATA=$WORK/data.lua BENCH_CALLS=$WORK/calls.txt
wrk_calls() { # CONNECTIONS URL
    run_wrk "$ROOT/bench/dialplan/lookups.lua" "$@"
}

KEY_FILE=$WORK/secrets.key
RESULTS=$WORK/results.tsv
: >"$RESULTS"

bench_backend() { # BACKEND URL
    echo "$1: seeding $DOMAINS Domains × $PER_DOMAIN Extensions with a Device, $NUMBERS Numbers, a gateway and 2 Outbound Routes each…" >&2
    start_server "$2" SWITCHBOARD_FREESWITCH__XML_CURL__PASSWORD="$XML_CURL_PASSWORD"
    seed
    stop_server
    if [ "${2%%:*}" = postgres ]; then psql -q "$2" -c 'VACUUM ANALYZE' -c 'CHECKPOINT' >/dev/null; fi
    start_server "$2" SWITCHBOARD_FREESWITCH__XML_CURL__PASSWORD="$XML_CURL_PASSWORD"
    write_templates
    check_answers
    local before r
    before=$(curl -sf "$BASE/metrics" | grep -E '^switchboard_xml_curl_(answers|refusals)_total' || true)
    r=$(wrk_calls 16 "$BASE"); echo "  16 connections: $r" >&2
    printf '%s\t16\t%s\n' "$1" "$r" >>"$RESULTS"
    r=$(wrk_calls 128 "$BASE"); echo "  128 connections: $r" >&2
    printf '%s\t128\t%s\n' "$1" "$r" >>"$RESULTS"
    if [ "${PER_KIND:-0}" = 1 ]; then
        local kind
        for kind in internal outbound inbound transfer; do
            r=$(BENCH_KINDS=$kind wrk_calls 128 "$BASE"); echo "  128 connections, $kind only: $r" >&2
            printf '%s, %s only\t128\t%s\n' "$1" "$kind" "$r" >>"$RESULTS"
        done
    fi
    echo "  answers counted by /metrics before and after wrk:" >&2
    { echo "$before"; curl -sf "$BASE/metrics" | grep -E '^switchboard_xml_curl_(answers|refusals)_total'; } | sed 's/^/    /' >&2 || true
    stop_server
}

for backend in "${BACKENDS[@]}"; do
    case $backend in
        sqlite) bench_backend "switchboard, SQLite" "sqlite://$WORK/bench.db?mode=rwc" ;;
        postgres)
            postgres_ready || { echo "postgres: skipped, nothing answers at $PG_URL (or psql is missing)" >&2; continue; }
            create_pg_database "switchboard_bench_dialplan_$$"
            bench_backend "switchboard, PostgreSQL" "$PG_DB_URL"
            drop_pg_database
            ;;
        *) echo "unknown backend $backend (sqlite or postgres)" >&2; exit 2 ;;
    esac
    rm -f "$WORK/bench.db"*
done

# nginx answers a document of the sample answers' mean size (their kinds in equal parts, as wrk
# sends them).
cat "$WORK"/answers/*.xml >"$WORK/all-answers.xml"
size=$(($(wc -c <"$WORK/all-answers.xml") / $(find "$WORK/answers" -name '*.xml' | wc -l)))
head -c "$size" "$WORK/all-answers.xml" >"$WORK/typical-answer.xml"
echo "nginx: a fixed document of $size bytes (the mean of the sample answers)…" >&2
start_nginx "$WORK/typical-answer.xml"
r=$(wrk_calls 16 "$NGINX_URL"); echo "  16 connections: $r" >&2
printf 'nginx (fixed %s-byte document)\t16\t%s\n' "$size" "$r" >>"$RESULTS"
r=$(wrk_calls 128 "$NGINX_URL"); echo "  128 connections: $r" >&2
printf 'nginx (fixed %s-byte document)\t128\t%s\n' "$size" "$r" >>"$RESULTS"
stop_nginx

echo
echo "Machine: $(machine); $(rustc --version 2>/dev/null || echo rustc ?), release build; $DOMAINS Domains × $PER_DOMAIN Extensions + Devices, $NUMBERS Numbers each; request bodies $(wc -c <"$WORK/phone.body") bytes (captured); lookups internal/outbound/inbound/transfer in equal parts; wrk -t2, ${DURATION}s per run, on the same machine; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| server | connections | requests/s | share of nginx | p50 ms | p99 ms | p99 vs nginx | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '
    { split($3, r, " "); line[NR] = $1; conns[NR] = $2; rps[NR] = r[1]; p50[NR] = r[2]; p99[NR] = r[3]; err[NR] = r[4]
      if ($1 ~ /^nginx/) { nrps[$2] = r[1]; np99[$2] = r[3] } }
    END {
        for (i = 1; i <= NR; i++) {
            share = (line[i] !~ /^nginx/ && nrps[conns[i]] > 0) ? sprintf("%.0f %%", 100 * rps[i] / nrps[conns[i]]) : ""
            ratio = (line[i] !~ /^nginx/ && np99[conns[i]] > 0) ? sprintf("%.2f×", p99[i] / np99[conns[i]]) : ""
            printf "| %s | %s | %.0f | %s | %.2f | %.2f | %s | %s |\n", line[i], conns[i], rps[i], share, p50[i], p99[i], ratio, err[i]
        }
    }' "$RESULTS"
