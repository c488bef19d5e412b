-- sms-retry 006 up: the index that finds failed rows the router never reported (run --adopt-failures)
-- (009 replaces it with version 3, which reads sms-retry's own column, and counts as this one applied).
-- sms-retry:applied-when: (SELECT count(*) FROM pg_index WHERE indisvalid AND indexrelid IN (to_regclass('sms_usage_logs_retry_adopt_v2_idx'), to_regclass('sms_usage_logs_retry_adopt_v3_idx'), to_regclass('sms_usage_logs_retry_work_idx'))) >= 1 AND to_regclass('sms_usage_logs_retry_adopt_idx') IS NULL
SET lock_timeout = '2s';
SET statement_timeout = '1h';

-- Failed outbound rows that carry no retry state yet: what the router wrote and nobody has
-- classified. Adoption gives each one retry state (scheduled or closed), which takes it out of
-- the index, so the index holds only the failures of the last few minutes (plus, once, the
-- failures from before sms-retry was installed, closed by the first adopting run) and the
-- adoption query costs the same on any size of table (oldest first, by created_at). The
-- predicate is written out again, word for word, by the adoption query in
-- Sources/SMSRetry/Store/Queries.swift.
SELECT sms_retry_index_statements('sms_usage_logs', 'sms_usage_logs_retry_adopt_v2_idx',
    $def$(created_at) WHERE success = false AND sms_retry_direction(message_direction) = 'outbound' AND retry_count = 0
      AND next_retry_at IS NULL AND (sms_metadata IS NULL OR NOT sms_metadata ? 'retry')$def$)
\gexec

-- Version 1 of this index (before the direction rule of 005) read only 'outbound' rows: replaced.
SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_retry_adopt_idx')
\gexec
