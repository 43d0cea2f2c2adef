-- Seeds the call history of bench/history/run.sh on PostgreSQL, straight into the tables
-- (no API): `domains` Domains (named "<prefix> <n>", SIP domain <prefix><n>.history.test),
-- `calls` calls each, between two of `exts` Extensions of the Domain (ids only: the history
-- names Extensions and Devices without foreign keys), started over the `days` days before `now`
-- (epoch seconds). 80 % answered (callee's Device set), 2 legs each.
--
-- calls.id is a UUIDv7 of started_at as the server makes them: the 48-bit Unix time in ms, the
-- version nibble 7, 12 random bits, the variant bits 10, 62 random bits (so id order = time
-- order, and a time range is an id range).
--
--   psql -qAt -F ' ' -v prefix=h -v domains=1000 -v calls=1000 -v exts=20 -v days=90 \
--        -v now=$(date +%s) -f seed-postgres.sql  > pairs.txt
--
-- Prints "domain_id extension_id" per seeded Extension (the pairs the query benchmark picks).
\set ON_ERROR_STOP on
BEGIN;

CREATE TEMP TABLE bench_domains ON COMMIT DROP AS
    SELECT d, gen_random_uuid() AS id FROM generate_series(1, :domains) AS d;

INSERT INTO domains (id, name, sip_domain, enabled, timezone, created_at, updated_at)
    SELECT id, :'prefix' || ' ' || d, :'prefix' || d || '.history.test', true, 'UTC', now(), now()
    FROM bench_domains;

CREATE TEMP TABLE bench_extensions ON COMMIT DROP AS
    SELECT b.d, e, gen_random_uuid() AS id, gen_random_uuid() AS device_id
    FROM bench_domains AS b, generate_series(0, :exts - 1) AS e;

INSERT INTO calls (id, root_uuid, domain_id, direction, caller_number, caller_name, callee_number,
                   callee_name, caller_extension_id, caller_extension_number, caller_device_id,
                   caller_location_id, callee_extension_id, callee_extension_number,
                   callee_device_id, callee_location_id, route_id, gateway_id, started_at,
                   answered_at, ended_at, billed_secs, hangup_cause, recording_path, recording_ms,
                   emergency, node, legs, updated_at)
SELECT
    (lpad(to_hex(c.ms), 12, '0') || '7' || substr(c.h, 1, 3)
        || substr('89ab', 1 + get_byte(decode(substr(c.h, 4, 2), 'hex'), 0) % 4, 1)
        || substr(c.h, 6, 15))::uuid,
    gen_random_uuid(),
    b.id,
    'internal',
    (1000 + x1.e)::text, 'Person ' || c.d || '-' || x1.e,
    (1000 + x2.e)::text, CASE WHEN c.answered THEN 'Person ' || c.d || '-' || x2.e END,
    x1.id, (1000 + x1.e)::text, x1.device_id, NULL,
    x2.id, (1000 + x2.e)::text, CASE WHEN c.answered THEN x2.device_id END, NULL,
    NULL, NULL,
    c.started,
    CASE WHEN c.answered THEN c.started + interval '3 seconds' END,
    c.started + CASE WHEN c.answered THEN (3 + c.billsec) * interval '1 second' ELSE interval '30 seconds' END,
    CASE WHEN c.answered THEN c.billsec ELSE 0 END,
    CASE WHEN c.answered THEN 'NORMAL_CLEARING' ELSE 'NO_ANSWER' END,
    NULL, NULL, false, 'fs1', 2, now()
FROM (
    SELECT s.*, 'epoch'::timestamptz + s.ms * interval '1 millisecond' AS started
    FROM (
        SELECT d, i,
               (:now::bigint * 1000 - floor(random() * :days * 86400000))::bigint AS ms,
               floor(random() * :exts)::int AS e1,
               floor(random() * (:exts - 1))::int AS skip,
               random() < 0.8 AS answered,
               (5 + floor(random() * 300))::bigint AS billsec,
               md5(random()::text || clock_timestamp()::text) AS h
        FROM generate_series(1, :domains) AS d, generate_series(1, :calls) AS i
    ) AS s
) AS c
JOIN bench_domains AS b ON b.d = c.d
JOIN bench_extensions AS x1 ON x1.d = c.d AND x1.e = c.e1
JOIN bench_extensions AS x2 ON x2.d = c.d AND x2.e = (c.e1 + 1 + c.skip) % :exts;

SELECT b.id, x.id FROM bench_extensions AS x JOIN bench_domains AS b USING (d) ORDER BY x.d, x.e;
COMMIT;
