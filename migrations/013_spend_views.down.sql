-- sms-retry 013 down: the two views 013 added; they are sms-retry's own.
-- squawk-ignore-file ban-drop-view
SET lock_timeout = '2s';
SET statement_timeout = '1h';

BEGIN;
DROP VIEW IF EXISTS sms_retry_held;
DROP VIEW IF EXISTS sms_retry_spend_daily;
COMMIT;
