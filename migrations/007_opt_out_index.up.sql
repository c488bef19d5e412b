-- sms-retry 007 up: the index that tells a run, per claimed row, whether its number opted out.
-- sms-retry:applied-when: (SELECT count(*) FROM pg_index WHERE indisvalid AND indexrelid = to_regclass('sms_usage_logs_opt_out_idx')) = 1
SET lock_timeout = '2s';
SET statement_timeout = '1h';

-- A leftover INVALID index from a failed concurrent build would be accepted by IF NOT EXISTS:
-- drop it first, waiting at most 500 ms for the lock.
DO $$
DECLARE
    leftover regclass;
BEGIN
    PERFORM set_config('lock_timeout', '500ms', true);
    FOR leftover IN
        SELECT indexrelid::regclass FROM pg_index
        WHERE NOT indisvalid
          AND indexrelid = to_regclass('sms_usage_logs_opt_out_idx')
    LOOP
        EXECUTE format('DROP INDEX %s', leftover);
    END LOOP;
END
$$;

-- The rows that change whether a number may be texted: inbound opt-out and opt-in keywords
-- (Twilio's STOP family and START / UNSTOP, any case, any spaces) and outbound messages Twilio
-- refused with 21610 (recipient unsubscribed). A tiny fraction of the table; a claim looks up
-- the latest of them for each claimed row's number (Sources/SMSRetry/Store/Queries.swift
-- repeats this predicate word for word, so the planner uses this index).
CREATE INDEX CONCURRENTLY IF NOT EXISTS sms_usage_logs_opt_out_idx
    ON sms_usage_logs (phone_number)
    WHERE (message_direction = 'inbound' AND length(message_content) <= 40
           AND upper(regexp_replace(message_content, '\s', '', 'g'))
               IN ('STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'START', 'UNSTOP'))
       OR (message_direction = 'outbound' AND sms_metadata -> 'retry' ->> 'error_code' = '21610');
