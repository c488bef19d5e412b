-- sms-retry 004 down: drops the analytics index without blocking writes.
SET lock_timeout = '2s';
SET statement_timeout = '10min';

DROP INDEX CONCURRENTLY IF EXISTS sms_usage_logs_retry_rows_idx;
