-- sms-retry 007 up: the index that tells a run, per claimed row, whether its number opted out
-- (008 replaces it with version 3, 009 with version 4; either counts as this one applied).
-- sms-retry:applied-when: (SELECT count(*) FROM pg_index WHERE indisvalid AND indexrelid IN (to_regclass('sms_usage_logs_opt_out_v2_idx'), to_regclass('sms_usage_logs_opt_out_v3_idx'), to_regclass('sms_usage_logs_opt_out_v4_idx'))) >= 1 AND to_regclass('sms_usage_logs_opt_out_idx') IS NULL
SET lock_timeout = '2s';
SET statement_timeout = '1h';

-- The rows that change whether a number may be texted: inbound opt-out and opt-in keywords
-- (Twilio's STOP family and START / UNSTOP, any case, any spaces) and outbound messages Twilio
-- refused with 21610 (recipient unsubscribed). A tiny fraction of the table; a claim looks up
-- the latest of them for each claimed row's number (Sources/SMSRetry/Store/Queries.swift
-- repeats this predicate word for word, so the planner uses this index).
SELECT sms_retry_index_statements('sms_usage_logs', 'sms_usage_logs_opt_out_v2_idx',
    $def$(phone_number)
    WHERE (sms_retry_direction(message_direction) = 'inbound' AND length(message_content) <= 40
           AND upper(regexp_replace(message_content, '\s', '', 'g'))
               IN ('STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'START', 'UNSTOP'))
       OR (sms_retry_direction(message_direction) = 'outbound' AND sms_metadata -> 'retry' ->> 'error_code' = '21610')$def$)
\gexec

-- Version 1 of this index (before the direction rule of 005) saw only 'inbound' / 'outbound'
-- spelled so, missing an 'INBOUND' STOP: replaced.
SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_opt_out_idx')
\gexec
