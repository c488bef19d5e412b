-- sms-retry 007 down: drops the opt-out index without blocking writes (a partitioned one waits at most lock_timeout).
SET lock_timeout = '2s';
SET statement_timeout = '10min';

SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_opt_out_v2_idx')
\gexec
-- and version 1, if a file from before the direction rule built it
SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_opt_out_idx')
\gexec
