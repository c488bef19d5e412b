-- sms-retry 017 down: 009's guard again, a BEFORE trigger that puts sms-retry's columns back in
-- the row before the write lands (its function's body and comment as 009 made them; rights and
-- owner kept: CREATE OR REPLACE).
SET lock_timeout = '2s';
SET statement_timeout = '30s';

BEGIN;

CREATE OR REPLACE FUNCTION sms_retry_guard() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF NEW.sms_retry -> 'rev' = to_jsonb(coalesce((OLD.sms_retry ->> 'rev')::bigint, 0) + 1) THEN
        RETURN NEW;
    END IF;
    NEW.sms_retry := OLD.sms_retry;
    NEW.retry_count := OLD.retry_count;
    NEW.max_retries := OLD.max_retries;
    NEW.next_retry_at := OLD.next_retry_at;
    IF OLD.twilio_message_sid IS NOT NULL THEN
        NEW.twilio_message_sid := OLD.twilio_message_sid;
    END IF;
    IF NEW.final_status IS DISTINCT FROM 'delivered' THEN
        NEW.final_status := OLD.final_status;
        NEW.delivery_confirmed_at := OLD.delivery_confirmed_at;
    END IF;
    RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION sms_retry_guard() IS 'sms-retry: undoes a write to its columns that is not its own (migration 009)';

CREATE OR REPLACE TRIGGER sms_retry_guard
    BEFORE UPDATE OF sms_retry, retry_count, max_retries, next_retry_at, final_status,
                     delivery_confirmed_at, twilio_message_sid
    ON sms_usage_logs
    FOR EACH ROW
    WHEN (OLD.sms_retry IS NOT NULL
          AND (NEW.sms_retry, NEW.retry_count, NEW.max_retries, NEW.next_retry_at, NEW.final_status,
               NEW.delivery_confirmed_at, NEW.twilio_message_sid)
              IS DISTINCT FROM (OLD.sms_retry, OLD.retry_count, OLD.max_retries, OLD.next_retry_at, OLD.final_status,
                                OLD.delivery_confirmed_at, OLD.twilio_message_sid))
    EXECUTE FUNCTION sms_retry_guard();

COMMIT;
