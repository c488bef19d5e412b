-- sms-retry 005 down: drops the analytics views and their helper function.
-- A down migration removes what its up created; these views and the function are sms-retry's own.
-- squawk-ignore-file ban-drop-view, ban-drop-function
SET lock_timeout = '2s';
SET statement_timeout = '30s';

DROP VIEW IF EXISTS sms_retry_health;
DROP VIEW IF EXISTS sms_retry_daily;
DROP VIEW IF EXISTS sms_retry_queue;
DROP VIEW IF EXISTS sms_retry_by_error_code;
DROP VIEW IF EXISTS sms_retry_by_attempt;
DROP VIEW IF EXISTS sms_retry_overview;
DROP FUNCTION IF EXISTS sms_retry_direction_counts(timestamp);
DROP FUNCTION IF EXISTS sms_retry_failed_counts(timestamp);
DROP FUNCTION IF EXISTS sms_retry_period();
DROP FUNCTION IF EXISTS sms_retry_segments(text);
DROP FUNCTION IF EXISTS sms_retry_first_id_since(timestamp);
DROP FUNCTION IF EXISTS sms_retry_direction(text);
DROP FUNCTION IF EXISTS sms_retry_router_time(timestamptz);
