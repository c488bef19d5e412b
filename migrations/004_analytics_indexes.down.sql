-- sms-retry 004 down: drops the analytics index without blocking writes (a partitioned one waits at most lock_timeout).
SET lock_timeout = '2s';
SET statement_timeout = '10min';

SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_retry_rows_idx')
\gexec
