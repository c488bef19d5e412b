-- Makes the :due most recent outbound rows with a body wait for a retry, due now, as a failure
-- the router reported (sms-retry's state set afresh, its revision stepped so the guard of
-- migration 009 lets it through): psql -v due=N -f due.sql
UPDATE sms_usage_logs
SET success = false, retry_count = 0, max_retries = 3, final_status = 'unknown', twilio_message_sid = NULL,
    next_retry_at = now() - interval '1 minute',
    sms_retry = jsonb_build_object('error_code', 30003, 'strategy', 'linear', 'rev', coalesce((sms_retry ->> 'rev')::bigint, 0) + 1)
WHERE id IN (SELECT id FROM sms_usage_logs
             WHERE message_direction = 'outbound' AND message_content IS NOT NULL
             ORDER BY id DESC LIMIT :due);
