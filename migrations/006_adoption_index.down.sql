-- sms-retry 006 down: drops the adoption index without blocking writes.
SET lock_timeout = '2s';
SET statement_timeout = '10min';

DROP INDEX CONCURRENTLY IF EXISTS sms_usage_logs_retry_adopt_idx;
