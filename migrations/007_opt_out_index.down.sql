-- sms-retry 007 down: drops the opt-out index without blocking writes.
SET lock_timeout = '2s';
SET statement_timeout = '10min';

DROP INDEX CONCURRENTLY IF EXISTS sms_usage_logs_opt_out_idx;
