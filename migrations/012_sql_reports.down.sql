-- sms-retry 012 down: the SQL report functions go; the rows keep what they reported.
-- squawk-ignore-file ban-drop-function
SET lock_timeout = '2s';
SET statement_timeout = '30s';

BEGIN;
DROP FUNCTION IF EXISTS sms_retry_state(bigint);
DROP FUNCTION IF EXISTS sms_retry_retry_now(bigint);
DROP FUNCTION IF EXISTS sms_retry_cancel(bigint);
DROP FUNCTION IF EXISTS sms_retry_report_status(text, text, integer);
DROP FUNCTION IF EXISTS sms_retry_report_sent(bigint, text);
DROP FUNCTION IF EXISTS sms_retry_report_failure(bigint, integer, text);
DROP FUNCTION IF EXISTS sms_retry_write(timestamptz, integer, bigint[], text[], bool[], float8[], text[], integer[], text[], integer[], integer[], text[], text[], integer[], timestamptz[], text[], text[], text[], text[], text[], bool[], text[]);
DROP FUNCTION IF EXISTS sms_retry_decide(jsonb, integer, integer);
DROP FUNCTION IF EXISTS sms_retry_policy();
COMMIT;
