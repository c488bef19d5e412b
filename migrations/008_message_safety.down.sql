-- sms-retry 008 down: the opt-out index of 007 (the words before REVOKE, OPTOUT and YES) back,
-- built before this version's is dropped, so lookups always have one. The functions are sms-retry's own.
-- squawk-ignore-file ban-drop-function
SET lock_timeout = '2s';
SET statement_timeout = '1h';

SELECT sms_retry_index_statements('sms_usage_logs', 'sms_usage_logs_opt_out_v2_idx',
    $def$(phone_number)
    WHERE (sms_retry_direction(message_direction) = 'inbound' AND length(message_content) <= 40
           AND upper(regexp_replace(message_content, '\s', '', 'g'))
               IN ('STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'START', 'UNSTOP'))
       OR (sms_retry_direction(message_direction) = 'outbound' AND sms_metadata -> 'retry' ->> 'error_code' = '21610')$def$)
\gexec

SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_opt_out_v3_idx')
\gexec

DROP FUNCTION IF EXISTS sms_retry_opt_out_index_statements(regclass);
DROP FUNCTION IF EXISTS sms_retry_opt_out_index_mark();
DROP FUNCTION IF EXISTS sms_retry_opt_keyword(text);
