-- Seeds the call history of bench/history/run.sh on SQLite, straight into the tables (no
-- API): the twin of seed-postgres.sql (read its header), with recursive CTEs instead of
-- generate_series. run.sh feeds it to sqlite3 after setting the parameters (:prefix,
-- :domains, :calls, :exts, :days, :now) and filling the temp table bench_byte (i → the
-- one-byte blob i: SQLite 3.40 has no unhex()).
--
-- As the server stores them (sqlx): UUIDs as 16-byte blobs, times as RFC 3339 text
-- ("2026-12-04T15:00:00.123+00:00"), booleans as 0/1. calls.id is a UUIDv7 of started_at: the
-- 48-bit Unix time in ms (big-endian, six bytes), then 7x, a random byte, the variant bits 10,
-- random bytes; blobs compare as bytes, so id order = time order.
--
-- Prints "domain_id extension_id" per seeded Extension (the pairs the query benchmark picks).
.bail on
BEGIN;

CREATE TEMP TABLE bench_domains (d INTEGER PRIMARY KEY, id BLOB NOT NULL);
WITH RECURSIVE n(d) AS (SELECT 1 UNION ALL SELECT d + 1 FROM n WHERE d < :domains)
INSERT INTO bench_domains
    SELECT d, CAST(randomblob(6) || X'4a' || randomblob(1) || X'9c' || randomblob(7) AS BLOB) FROM n;

INSERT INTO domains (id, name, sip_domain, enabled, timezone, created_at, updated_at)
    SELECT id, :prefix || ' ' || d, :prefix || d || '.history.test', 1, 'UTC',
           strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'), strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')
    FROM bench_domains;

CREATE TEMP TABLE bench_extensions (d INTEGER, e INTEGER, id BLOB NOT NULL, device_id BLOB NOT NULL,
                                    PRIMARY KEY (d, e));
WITH RECURSIVE x(e) AS (SELECT 0 UNION ALL SELECT e + 1 FROM x WHERE e < :exts - 1)
INSERT INTO bench_extensions
    SELECT d, e, CAST(randomblob(6) || X'4b' || randomblob(1) || X'9d' || randomblob(7) AS BLOB),
                 CAST(randomblob(6) || X'4c' || randomblob(1) || X'9e' || randomblob(7) AS BLOB)
    FROM bench_domains, x;

-- The random draws of every call, once (a CTE could evaluate random() again per use).
CREATE TEMP TABLE bench_raw (d INTEGER, ms INTEGER, e1 INTEGER, e2 INTEGER, answered INTEGER, billsec INTEGER);
WITH RECURSIVE
    n(d) AS (SELECT 1 UNION ALL SELECT d + 1 FROM n WHERE d < :domains),
    i(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM i WHERE i < :calls)
INSERT INTO bench_raw
    SELECT d, ms, e1, (e1 + 1 + skip) % :exts, answered, billsec
    FROM (
        SELECT d,
               :now * 1000 - abs(random()) % (:days * 86400000) AS ms,
               abs(random()) % :exts AS e1,
               abs(random()) % (:exts - 1) AS skip,
               abs(random()) % 100 < 80 AS answered,
               5 + abs(random()) % 300 AS billsec
        FROM n, i
    );

INSERT INTO calls (id, root_uuid, domain_id, direction, caller_number, caller_name, callee_number,
                   callee_name, caller_extension_id, caller_extension_number, caller_device_id,
                   caller_location_id, callee_extension_id, callee_extension_number,
                   callee_device_id, callee_location_id, route_id, gateway_id, started_at,
                   answered_at, ended_at, billed_secs, hangup_cause, recording_path, recording_ms,
                   emergency, node, legs, updated_at)
SELECT
    CAST((SELECT b FROM bench_byte WHERE i = (c.ms >> 40) & 255)
      || (SELECT b FROM bench_byte WHERE i = (c.ms >> 32) & 255)
      || (SELECT b FROM bench_byte WHERE i = (c.ms >> 24) & 255)
      || (SELECT b FROM bench_byte WHERE i = (c.ms >> 16) & 255)
      || (SELECT b FROM bench_byte WHERE i = (c.ms >> 8) & 255)
      || (SELECT b FROM bench_byte WHERE i = c.ms & 255)
      || X'7e' || randomblob(1) || X'a1' || randomblob(7) AS BLOB),
    CAST(randomblob(6) || X'4d' || randomblob(1) || X'9f' || randomblob(7) AS BLOB),
    b.id,
    'internal',
    CAST(1000 + x1.e AS TEXT), 'Person ' || c.d || '-' || x1.e,
    CAST(1000 + x2.e AS TEXT), CASE WHEN c.answered THEN 'Person ' || c.d || '-' || x2.e END,
    x1.id, CAST(1000 + x1.e AS TEXT), x1.device_id, NULL,
    x2.id, CAST(1000 + x2.e AS TEXT), CASE WHEN c.answered THEN x2.device_id END, NULL,
    NULL, NULL,
    strftime('%Y-%m-%dT%H:%M:%f+00:00', c.ms / 1000.0, 'unixepoch'),
    CASE WHEN c.answered THEN strftime('%Y-%m-%dT%H:%M:%f+00:00', c.ms / 1000.0 + 3, 'unixepoch') END,
    strftime('%Y-%m-%dT%H:%M:%f+00:00', c.ms / 1000.0 + CASE WHEN c.answered THEN 3 + c.billsec ELSE 30 END, 'unixepoch'),
    CASE WHEN c.answered THEN c.billsec ELSE 0 END,
    CASE WHEN c.answered THEN 'NORMAL_CLEARING' ELSE 'NO_ANSWER' END,
    NULL, NULL, 0, 'fs1', 2, strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')
FROM bench_raw AS c
JOIN bench_domains AS b ON b.d = c.d
JOIN bench_extensions AS x1 ON x1.d = c.d AND x1.e = c.e1
JOIN bench_extensions AS x2 ON x2.d = c.d AND x2.e = c.e2;

COMMIT;

SELECT substr(dh, 1, 8) || '-' || substr(dh, 9, 4) || '-' || substr(dh, 13, 4) || '-' || substr(dh, 17, 4) || '-' || substr(dh, 21),
       substr(eh, 1, 8) || '-' || substr(eh, 9, 4) || '-' || substr(eh, 13, 4) || '-' || substr(eh, 17, 4) || '-' || substr(eh, 21)
FROM (SELECT lower(hex(b.id)) AS dh, lower(hex(x.id)) AS eh
      FROM bench_extensions AS x JOIN bench_domains AS b USING (d) ORDER BY x.d, x.e);
