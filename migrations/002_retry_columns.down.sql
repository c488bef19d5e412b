-- sms-retry 002 down: removes the retry columns 002 added, and its CHECK, and puts the team's own
-- retry columns back as they were. Retry history in sms_metadata is kept.
-- A down migration exists to remove what its up added: the constraint and the columns dropped
-- here are sms-retry's own, and no client but sms-retry reads them.
-- squawk-ignore-file ban-drop-column, ban-drop-constraint
SET lock_timeout = '2s';
SET statement_timeout = '10s';

ALTER TABLE sms_usage_logs DROP CONSTRAINT IF EXISTS sms_usage_logs_final_status_check;

-- The team's columns that the up changed, as they were (their COMMENT says what they were):
-- nullable again (PostgreSQL 18 keeps a NOT NULL as a named constraint, dropped with it), their
-- default, timestamp again (no rewrite in a UTC session, as the up converted it), their own
-- comment. A varchar(n) the up made text stays text, with a NOTICE: changing it back rewrites the
-- table under an exclusive lock, which a down on a live table does not do.
WITH changed AS (
    SELECT a.attrelid::regclass AS rel, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS now_type, a.attnotnull,
           pg_get_expr(d.adbin, d.adrelid) AS now_default,
           substring(c.description FROM 'sms-retry: migration 002 changed this column; its down restores (\{.*\})$')::jsonb AS was
    FROM pg_attribute a
    JOIN pg_description c ON c.objoid = a.attrelid AND c.classoid = 'pg_class'::regclass AND c.objsubid = a.attnum
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = 'sms_usage_logs'::regclass AND NOT a.attisdropped
      AND c.description LIKE '%sms-retry: migration 002 changed this column; its down restores {%'
), statements(ord, sql) AS (
    SELECT 1, 'SET TimeZone = ''UTC'''
    WHERE EXISTS (SELECT 1 FROM changed WHERE was->>'type' = 'timestamp without time zone' AND now_type = 'timestamp with time zone')
    UNION ALL
    SELECT 2, format('ALTER TABLE %s ALTER COLUMN %I TYPE timestamp without time zone', rel, col)
    FROM changed WHERE was->>'type' = 'timestamp without time zone' AND now_type = 'timestamp with time zone'
    UNION ALL
    SELECT 3, 'RESET TimeZone'
    WHERE EXISTS (SELECT 1 FROM changed WHERE was->>'type' = 'timestamp without time zone' AND now_type = 'timestamp with time zone')
    UNION ALL
    SELECT 4, format('ALTER TABLE %s ALTER COLUMN %I DROP NOT NULL', rel, col)
    FROM changed WHERE attnotnull AND NOT (was->>'not_null')::boolean
    UNION ALL
    SELECT 5, format('ALTER TABLE %s ALTER COLUMN %I %s', rel, col,
                     CASE WHEN was->>'default' IS NULL THEN 'DROP DEFAULT' ELSE 'SET DEFAULT ' || (was->>'default') END)
    FROM changed WHERE now_default IS DISTINCT FROM was->>'default'
    UNION ALL
    SELECT 6, format('DO %L', format('BEGIN RAISE NOTICE %L; END', format(
               'column %s.%I was %s before sms-retry and stays %s (changing it back rewrites the table); in a maintenance window: ALTER TABLE %s ALTER COLUMN %I TYPE %s',
               rel, col, was->>'type', now_type, rel, col, was->>'type')))
    FROM changed WHERE was->>'type' <> now_type AND was->>'type' <> 'timestamp without time zone'
    UNION ALL
    SELECT 7, format('COMMENT ON COLUMN %s.%I IS %L', rel, col, was->>'comment') FROM changed
)
SELECT sql FROM statements ORDER BY ord
\gexec

-- Only the columns 002 added (its COMMENT says so): a column that was there before sms-retry,
-- the original design's retry_count or next_retry_at say, is the team's and stays, data and all.
SELECT format('ALTER TABLE %s DROP COLUMN IF EXISTS %I', a.attrelid::regclass, a.attname)
FROM pg_attribute a JOIN pg_description d ON d.objoid = a.attrelid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum
WHERE a.attrelid = 'sms_usage_logs'::regclass AND NOT a.attisdropped AND d.description LIKE 'sms-retry: added by migration 002%'
ORDER BY a.attnum DESC
\gexec
