-- sms-retry 002 up: the retry columns, in place on the live table, and the ones it finds already there.
-- Each column is checked against what sms-retry needs (one planning query, run with psql's
-- \gexec, as sms-retry migrate runs it too): absent, it is added and marked as sms-retry's with a
-- COMMENT (so the down drops only those); present with the right type, kept; present with a type
-- that converts without rewriting the table (varchar(n) to text; timestamp to timestamptz when
-- its values are UTC, and only partial indexes use it), converted; nullable counters made NOT
-- NULL through a validated CHECK (no long lock). Anything else stops the file before it changes
-- a thing, naming the column, its type, and the statement to run in a maintenance window.
-- Every column is nullable or has a constant default, so ADD COLUMN only touches the catalog
-- (PostgreSQL 11+): no table rewrite, and the ACCESS EXCLUSIVE lock lasts milliseconds. The
-- lock_timeout bounds how long writers can queue behind it; sms-retry migrate retries on 55P03.
-- retry_count and max_retries stay integer, like the router's own counters: they count to at
-- most 10, and int matches the type the issue and the router use.
-- squawk-ignore-file prefer-bigint-over-int
-- sms-retry:applied-when: (SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('sms_usage_logs') AND NOT attisdropped AND attname IN ('retry_count', 'max_retries', 'next_retry_at', 'twilio_message_sid', 'final_status', 'delivery_confirmed_at', 'sms_retry')) = 7 AND (SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('sms_usage_logs') AND NOT attisdropped AND ((attname IN ('retry_count', 'max_retries', 'final_status') AND attnotnull) OR (attname IN ('next_retry_at', 'delivery_confirmed_at') AND atttypid = 'timestamptz'::regtype) OR (attname = 'twilio_message_sid' AND atttypid = 'text'::regtype))) = 6 AND (SELECT atttypid FROM pg_attribute WHERE attrelid = to_regclass('sms_usage_logs') AND attname = 'final_status') = 'text'::regtype
SET lock_timeout = '2s';
-- The planned statements are catalog changes bounded by lock_timeout, except filling NULL
-- counters and validating a CHECK, which read the table without blocking writes.
SET statement_timeout = '1h';

WITH want(ord, col, type, dflt, required) AS (VALUES
        (1, 'retry_count', 'integer', '0', true),
        (2, 'max_retries', 'integer', '3', true),
        (3, 'next_retry_at', 'timestamp with time zone', NULL, false),
        (4, 'twilio_message_sid', 'text', NULL, false),
        (5, 'final_status', 'text', '''unknown''::text', true),
        (6, 'delivery_confirmed_at', 'timestamp with time zone', NULL, false),
        -- sms-retry's own state (lease, doubt, history, …): a column the router's ORM models
        -- do not map, so a stale write of the router's sms_metadata cannot touch it (009 moves
        -- what earlier versions kept under sms_metadata.retry, and guards the retry columns).
        (7, 'sms_retry', 'jsonb', NULL, false)
), tbl AS (
    SELECT 'sms_usage_logs'::regclass AS oid,
           coalesce(nullif(current_setting('sms_retry.created_at_time_zone', true), ''), current_setting('TimeZone')) AS zone
), have AS (
    SELECT w.*, a.attnum, format_type(a.atttypid, a.atttypmod) AS have_type, a.attnotnull, tbl.oid AS rel, tbl.zone,
           pg_get_expr(d.adbin, d.adrelid) AS have_default,
           -- its values were written in UTC: no rewrite when converted in a UTC session
           ('2000-01-01 00:00+00'::timestamptz AT TIME ZONE tbl.zone) = '2000-01-01 00:00'::timestamp
               AND ('2000-07-01 00:00+00'::timestamptz AT TIME ZONE tbl.zone) = '2000-07-01 00:00'::timestamp AS zone_is_utc,
           EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = tbl.oid AND a.attnum = ANY (i.indkey) AND i.indpred IS NULL) AS full_index
    FROM want w CROSS JOIN tbl
    LEFT JOIN pg_attribute a ON a.attrelid = tbl.oid AND a.attname = w.col AND NOT a.attisdropped
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
), plan AS (
    SELECT h.*, CASE
        WHEN h.attnum IS NULL THEN 'add'
        WHEN h.have_type = h.type THEN 'keep'
        WHEN h.type = 'integer' AND h.have_type IN ('smallint', 'bigint') THEN 'keep'
        WHEN h.type = 'text' AND h.have_type LIKE 'character varying%' THEN 'to_text'
        WHEN h.type = 'timestamp with time zone' AND h.have_type = 'timestamp without time zone'
             AND h.zone_is_utc AND NOT h.full_index THEN 'to_timestamptz'
        ELSE 'refuse' END AS action
    FROM have h
), problems AS (
    SELECT string_agg(format('%s.%s is %s, sms-retry needs %s; run in a maintenance window (it rewrites the table or an index): %s',
                             p.rel, p.col, p.have_type, p.type,
                             CASE WHEN p.type = 'timestamp with time zone' AND p.have_type = 'timestamp without time zone'
                                  THEN format('ALTER TABLE %s ALTER COLUMN %I TYPE timestamptz USING %I AT TIME ZONE %L (its values read as %s time: if they were written in UTC, set sms_retry.created_at_time_zone to UTC and migrate again instead: no rewrite then)', p.rel, p.col, p.col, p.zone, p.zone)
                                  ELSE format('ALTER TABLE %s ALTER COLUMN %I TYPE %s', p.rel, p.col, p.type) END), '; ' ORDER BY p.ord) AS text
    FROM plan p WHERE p.action = 'refuse'
), statements(ord, sql) AS (
    -- Refused: one statement, first, that stops the file before anything changes.
    SELECT 0, format('DO %L', format('BEGIN RAISE EXCEPTION %L; END', 'sms-retry cannot use these columns as they are: ' || text)) FROM problems WHERE text IS NOT NULL
    UNION ALL
    -- A column of the team's that this file changes (type, default, NOT NULL): what it was, on the
    -- column itself, first, so that the down can put it back even after a partial run (a rerun
    -- keeps the first record). The team's own comment is kept in it and restored by the down.
    SELECT p.ord, format('COMMENT ON COLUMN %s.%I IS %L', p.rel, p.col,
                         coalesce(col_description(p.rel, p.attnum) || E'\n', '')
                         || 'sms-retry: migration 002 changed this column; its down restores '
                         || jsonb_build_object('type', p.have_type, 'not_null', p.attnotnull, 'default', p.have_default,
                                               'comment', col_description(p.rel, p.attnum))::text)
    FROM plan p
    WHERE p.action IN ('keep', 'to_text', 'to_timestamptz')
      AND (p.action <> 'keep' OR (p.dflt IS NOT NULL AND p.have_default IS DISTINCT FROM p.dflt) OR (p.required AND NOT p.attnotnull))
      AND coalesce(col_description(p.rel, p.attnum), '') NOT LIKE '%sms-retry: migration 002 changed this column%'
    UNION ALL
    SELECT 10 + p.ord, format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS %I %s%s', p.rel, p.col, p.type,
                              CASE WHEN p.dflt IS NULL THEN '' WHEN p.required THEN ' NOT NULL DEFAULT ' || p.dflt ELSE ' DEFAULT ' || p.dflt END)
    FROM plan p WHERE p.action = 'add'
    UNION ALL
    SELECT 20 + p.ord, format('COMMENT ON COLUMN %s.%I IS %L', p.rel, p.col, 'sms-retry: added by migration 002')
    FROM plan p WHERE p.action = 'add'
    UNION ALL
    SELECT 30 + p.ord, format('ALTER TABLE %s ALTER COLUMN %I TYPE text', p.rel, p.col) FROM plan p WHERE p.action = 'to_text'
    UNION ALL
    SELECT 40, 'SET TimeZone = ''UTC''' WHERE EXISTS (SELECT 1 FROM plan WHERE action = 'to_timestamptz')
    UNION ALL
    SELECT 40 + p.ord, format('ALTER TABLE %s ALTER COLUMN %I TYPE timestamptz', p.rel, p.col) FROM plan p WHERE p.action = 'to_timestamptz'
    UNION ALL
    SELECT 49, 'RESET TimeZone' WHERE EXISTS (SELECT 1 FROM plan WHERE action = 'to_timestamptz')
    UNION ALL
    SELECT 50 + p.ord, format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', p.rel, p.col, p.dflt)
    FROM plan p WHERE p.action <> 'add' AND p.dflt IS NOT NULL AND p.have_default IS DISTINCT FROM p.dflt
    UNION ALL
    -- NOT NULL without a long lock: fill the NULLs, a CHECK added NOT VALID and validated (reads
    -- and writes go on), then SET NOT NULL, which trusts the valid CHECK instead of scanning.
    SELECT 60 + n.step + p.ord * 10, CASE n.step
        WHEN 1 THEN format('UPDATE %s SET %I = %s WHERE %I IS NULL', p.rel, p.col, p.dflt, p.col)
        WHEN 2 THEN format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (%I IS NOT NULL) NOT VALID', p.rel, 'sms_retry_' || p.col || '_not_null', p.col)
        WHEN 3 THEN format('ALTER TABLE %s VALIDATE CONSTRAINT %I', p.rel, 'sms_retry_' || p.col || '_not_null')
        WHEN 4 THEN format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', p.rel, p.col)
        ELSE format('ALTER TABLE %s DROP CONSTRAINT %I', p.rel, 'sms_retry_' || p.col || '_not_null') END
    FROM plan p CROSS JOIN generate_series(1, 5) AS n(step)
    WHERE p.action <> 'add' AND p.required AND NOT p.attnotnull
    UNION ALL
    -- An index the team made for retries before sms-retry: named, kept (drop it when nothing uses it).
    SELECT 200, format('DO %L', format('BEGIN RAISE NOTICE %L; END', format(
               'index %s (%s) covers the rows of sms-retry''s due index (migration 003); kept: drop it yourself once nothing else uses it',
               i.indexrelid::regclass, pg_get_indexdef(i.indexrelid))))
    FROM pg_index i, tbl
    WHERE i.indrelid = tbl.oid AND pg_get_expr(i.indpred, i.indrelid) LIKE '%next_retry_at IS NOT NULL%'
      AND (i.indexrelid::regclass)::text NOT LIKE '%sms_usage_logs_%retry_due%'
)
SELECT sql FROM statements WHERE ord = 0 OR NOT EXISTS (SELECT 1 FROM statements WHERE ord = 0) ORDER BY ord
\gexec

-- final_status holds one of sms-retry's five words (unknown, sent, delivered, failed,
-- undelivered): sms-retry writes only those, and migration 009's guard undoes any other UPDATE's
-- change to it but the router's 'delivered'. Earlier versions also added a CHECK constraint here;
-- PostgreSQL prepares every CHECK anew for each statement, which cost each of the router's
-- single-row INSERTs and UPDATEs about 6 microseconds, so 009 drops it.
