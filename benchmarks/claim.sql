-- pgbench script: one claim of a 100-row batch (the runtime statement, Queries.claimDue, with its
-- parameters written in), rolled back so every transaction sees the same backlog.
BEGIN;
WITH due AS (
    SELECT id, sms_metadata -> 'retry' -> 'lease' AS previous_lease
    FROM sms_usage_logs
    WHERE success = false AND next_retry_at IS NOT NULL
      AND next_retry_at <= coalesce(NULL::timestamptz, now()) AND retry_count < max_retries
    ORDER BY next_retry_at LIMIT 100 FOR UPDATE SKIP LOCKED)
UPDATE sms_usage_logs AS s
SET next_retry_at = now() + make_interval(secs => 300::float8),
    sms_metadata = coalesce(s.sms_metadata, '{}') || jsonb_build_object('retry', coalesce(s.sms_metadata -> 'retry', '{}')
                   || jsonb_build_object('lease', jsonb_build_object('run', 'bench', 'claimed_at', now(), 'attempt', s.retry_count + 1)))
FROM due WHERE s.id = due.id
RETURNING s.id, s.phone_number, s.message_content;
ROLLBACK;
