-- sms-retry 001 down: drops the router's table, but only while it holds no rows.
-- These are usage and billing records: a table with rows is never dropped by a migration.
SET lock_timeout = '2s';
SET statement_timeout = '30s';

DO $$
BEGIN
    IF to_regclass('sms_usage_logs') IS NOT NULL AND EXISTS (SELECT 1 FROM sms_usage_logs) THEN
        RAISE EXCEPTION 'sms_usage_logs holds rows: refusing to drop it (revert only down to 001)';
    END IF;
END
$$;

-- Guarded above: only an empty table is dropped.
-- squawk-ignore ban-drop-table
DROP TABLE IF EXISTS sms_usage_logs;
