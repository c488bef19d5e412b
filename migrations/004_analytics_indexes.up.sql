-- sms-retry 004 up: a small partial index for the analytics views (005), built without blocking writes.
-- sms-retry:applied-when: (SELECT count(*) FROM pg_index WHERE indisvalid AND indexrelid = to_regclass('sms_usage_logs_retry_rows_idx')) = 1
SET lock_timeout = '2s';
SET statement_timeout = '1h';

-- A leftover INVALID index from a failed concurrent build would be accepted by IF NOT EXISTS:
-- drop it first, waiting at most 500 ms for the lock.
DO $$
DECLARE
    leftover regclass;
BEGIN
    PERFORM set_config('lock_timeout', '500ms', true);
    FOR leftover IN
        SELECT indexrelid::regclass FROM pg_index
        WHERE NOT indisvalid
          AND indexrelid = to_regclass('sms_usage_logs_retry_rows_idx')
    LOOP
        EXECUTE format('DROP INDEX %s', leftover);
    END LOOP;
END
$$;

-- The rows that ever failed (a few percent of the table): serves sms_retry_overview,
-- sms_retry_by_attempt, sms_retry_by_error_code and sms_retry_daily, which read only them.
-- (The overview's count of all outbound messages in its window needs no index of its own: see
-- sms_retry_first_id_since in 005.)
CREATE INDEX CONCURRENTLY IF NOT EXISTS sms_usage_logs_retry_rows_idx
    ON sms_usage_logs (created_at)
    WHERE success = false OR retry_count > 0;

