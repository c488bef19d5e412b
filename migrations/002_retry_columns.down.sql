-- sms-retry 002 down: removes the retry columns 002 added, and its CHECK. Retry history in sms_metadata is kept.
-- A down migration exists to remove what its up added: the constraint and the columns dropped
-- here are sms-retry's own, and no client but sms-retry reads them.
-- squawk-ignore-file ban-drop-column, ban-drop-constraint
SET lock_timeout = '2s';
SET statement_timeout = '10s';

ALTER TABLE sms_usage_logs DROP CONSTRAINT IF EXISTS sms_usage_logs_final_status_check;

-- Only the columns 002 added (its COMMENT says so): a column that was there before sms-retry,
-- the original design's retry_count or next_retry_at say, is the team's and stays, data and all.
SELECT format('ALTER TABLE %s DROP COLUMN IF EXISTS %I', a.attrelid::regclass, a.attname)
FROM pg_attribute a JOIN pg_description d ON d.objoid = a.attrelid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum
WHERE a.attrelid = 'sms_usage_logs'::regclass AND NOT a.attisdropped AND d.description LIKE 'sms-retry: added by migration 002%'
ORDER BY a.attnum DESC
\gexec
