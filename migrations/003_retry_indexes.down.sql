-- sms-retry 003 down: drops the two partial indexes (without blocking writes on a plain table;
-- waiting at most lock_timeout on a partitioned one) and the planning functions.
-- The functions are sms-retry's own migration helpers (003 creates them; only the migration
-- files call them), so dropping them breaks no client:
-- squawk-ignore-file ban-drop-function
SET lock_timeout = '2s';
SET statement_timeout = '10min';

SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_twilio_sid_idx')
\gexec
SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_retry_due_idx')
\gexec
DROP FUNCTION IF EXISTS sms_retry_index_drop_statements(regclass, text);
DROP FUNCTION IF EXISTS sms_retry_index_statements(regclass, text, text);
DROP FUNCTION IF EXISTS sms_retry_index_name(text, text);
