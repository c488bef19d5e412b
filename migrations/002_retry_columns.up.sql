-- sms-retry 002 up: the retry columns, in place on the live table.
-- Every column is nullable or has a constant default, so ADD COLUMN only touches the catalog
-- (PostgreSQL 11+): no table rewrite, and the ACCESS EXCLUSIVE lock lasts milliseconds. The
-- lock_timeout bounds how long writers can queue behind it; sms-retry migrate retries on 55P03.
-- retry_count and max_retries stay integer, like the router's own counters: they count to at
-- most 10, and int matches the type the issue and the router use.
-- squawk-ignore-file prefer-bigint-over-int
-- sms-retry:applied-when: EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass('sms_usage_logs') AND conname = 'sms_usage_logs_final_status_check' AND convalidated) AND (SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('sms_usage_logs') AND NOT attisdropped AND attname IN ('retry_count', 'max_retries', 'next_retry_at', 'twilio_message_sid', 'final_status', 'delivery_confirmed_at')) = 6
SET lock_timeout = '2s';
SET statement_timeout = '10s';

ALTER TABLE sms_usage_logs
    ADD COLUMN IF NOT EXISTS retry_count integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS max_retries integer NOT NULL DEFAULT 3,
    ADD COLUMN IF NOT EXISTS next_retry_at timestamptz,
    ADD COLUMN IF NOT EXISTS twilio_message_sid text,
    ADD COLUMN IF NOT EXISTS final_status text NOT NULL DEFAULT 'unknown',
    ADD COLUMN IF NOT EXISTS delivery_confirmed_at timestamptz;

-- ADD CONSTRAINT has no IF NOT EXISTS: the catalog check makes a rerun harmless. NOT VALID
-- skips the scan, so only new and updated rows are checked while the lock is held.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'sms_usage_logs'::regclass
                     AND conname = 'sms_usage_logs_final_status_check') THEN
        ALTER TABLE sms_usage_logs
            ADD CONSTRAINT sms_usage_logs_final_status_check
            CHECK (final_status IN ('unknown', 'sent', 'delivered', 'failed', 'undelivered')) NOT VALID;
    END IF;
END
$$;

-- VALIDATE scans the table under SHARE UPDATE EXCLUSIVE, which does not block reads or
-- writes: it may take as long as the scan needs.
SET statement_timeout = '1h';
-- Rerunning VALIDATE on a valid constraint is a no-op, so the statement is safe to repeat.
-- squawk-ignore prefer-robust-stmts
ALTER TABLE sms_usage_logs VALIDATE CONSTRAINT sms_usage_logs_final_status_check;
