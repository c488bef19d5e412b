-- Makes the :due most recent outbound rows with a body wait for a retry, due now, as a failure
-- the router reported (retry metadata merged into what is there): psql -v due=N -f due.sql
UPDATE sms_usage_logs
SET success = false, retry_count = 0, max_retries = 3, final_status = 'unknown', twilio_message_sid = NULL,
    next_retry_at = now() - interval '1 minute',
    sms_metadata = coalesce(sms_metadata, '{}') || '{"retry": {"error_code": 30003, "strategy": "linear"}}'
WHERE id IN (SELECT id FROM sms_usage_logs
             WHERE message_direction = 'outbound' AND message_content IS NOT NULL
             ORDER BY id DESC LIMIT :due);
