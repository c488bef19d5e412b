-- sms-retry 002 down: removes the retry columns. Retry history in sms_metadata is kept.
-- A down migration exists to remove what its up added: the constraint and the columns dropped
-- here are sms-retry's own, and no client but sms-retry reads them.
-- squawk-ignore-file ban-drop-column, ban-drop-constraint
SET lock_timeout = '2s';
SET statement_timeout = '10s';

ALTER TABLE sms_usage_logs DROP CONSTRAINT IF EXISTS sms_usage_logs_final_status_check;

ALTER TABLE sms_usage_logs
    DROP COLUMN IF EXISTS delivery_confirmed_at,
    DROP COLUMN IF EXISTS final_status,
    DROP COLUMN IF EXISTS twilio_message_sid,
    DROP COLUMN IF EXISTS next_retry_at,
    DROP COLUMN IF EXISTS max_retries,
    DROP COLUMN IF EXISTS retry_count;
