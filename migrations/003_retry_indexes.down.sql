-- sms-retry 003 down: drops the two partial indexes without blocking writes.
SET lock_timeout = '2s';
SET statement_timeout = '10min';

DROP INDEX CONCURRENTLY IF EXISTS sms_usage_logs_twilio_sid_idx;
DROP INDEX CONCURRENTLY IF EXISTS sms_usage_logs_retry_due_idx;
