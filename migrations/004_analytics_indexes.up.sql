-- sms-retry 004 up: a small partial index for the analytics views (005), built without blocking writes (plain or partitioned table; migration 003 plans it).
-- sms-retry:applied-when: (SELECT count(*) FROM pg_index WHERE indisvalid AND indexrelid IN (to_regclass('sms_usage_logs_retry_rows_idx'), to_regclass('sms_usage_logs_retry_failed_idx'))) >= 1
SET lock_timeout = '2s';
SET statement_timeout = '1h';

-- The rows that ever failed (a few percent of the table): serves sms_retry_overview,
-- sms_retry_by_attempt, sms_retry_by_error_code and sms_retry_daily, which read only them.
-- (The overview's count of all outbound messages in its window needs no index of its own: see
-- sms_retry_first_id_since in 005.) 011's failed index serves them since: not built again where
-- that one exists.
SELECT sms_retry_index_statements('sms_usage_logs', 'sms_usage_logs_retry_rows_idx',
    $def$(created_at) WHERE success = false OR retry_count > 0$def$)
WHERE to_regclass('sms_usage_logs_retry_failed_idx') IS NULL
\gexec

