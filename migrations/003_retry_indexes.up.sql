-- sms-retry 003 up: two small partial indexes, built without blocking writes.
-- CREATE INDEX CONCURRENTLY cannot run inside a transaction: run this file with psql -f (which
-- autocommits each statement) or sms-retry migrate, never inside BEGIN/COMMIT.
-- sms-retry:applied-when: (SELECT count(*) FROM pg_index WHERE indisvalid AND indexrelid IN (to_regclass('sms_usage_logs_retry_due_idx'), to_regclass('sms_usage_logs_twilio_sid_idx'))) = 2
SET lock_timeout = '2s';
SET statement_timeout = '1h';

-- A failed concurrent build leaves an INVALID index behind, which IF NOT EXISTS would then
-- accept as done. Drop such a leftover first, waiting at most 500 ms for the lock so writers
-- never queue behind it for longer.
DO $$
DECLARE
    leftover regclass;
BEGIN
    PERFORM set_config('lock_timeout', '500ms', true);
    FOR leftover IN
        SELECT indexrelid::regclass FROM pg_index
        WHERE NOT indisvalid
          AND indexrelid IN (to_regclass('sms_usage_logs_retry_due_idx'), to_regclass('sms_usage_logs_twilio_sid_idx'))
    LOOP
        RAISE NOTICE 'dropping invalid index % left by a failed build', leftover;
        EXECUTE format('DROP INDEX %s', leftover);
    END LOOP;
END
$$;

-- Only rows waiting for a retry: its size follows the backlog, not the table, so claiming due
-- rows costs the same on 10k or 10M rows.
CREATE INDEX CONCURRENTLY IF NOT EXISTS sms_usage_logs_retry_due_idx
    ON sms_usage_logs (next_retry_at)
    WHERE success = false AND next_retry_at IS NOT NULL;

-- Delivery-status callbacks find their row by Twilio's message SID.
CREATE INDEX CONCURRENTLY IF NOT EXISTS sms_usage_logs_twilio_sid_idx
    ON sms_usage_logs (twilio_message_sid)
    WHERE twilio_message_sid IS NOT NULL;
