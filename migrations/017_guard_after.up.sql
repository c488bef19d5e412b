-- sms-retry 017 up: the guard on sms-retry's columns (009) runs after the router's UPDATE instead
-- of before it, so the router's own updates pay half as much for it (issue 21).
-- A BEFORE ROW trigger makes PostgreSQL lock the row before every UPDATE of the table, the
-- router's UPDATE of its own columns included (its column list is only looked at after the
-- lock): about 4.5 % of the router's UPDATE rate. An AFTER ROW trigger only reads the old row
-- version: about 2 %. (docs/ARCHITECTURE.md, "What the router pays".)
-- What it guards is unchanged: an UPDATE of sms-retry's columns that is not sms-retry's own (its
-- sms_retry.rev is not one more than the row's) is undone at the end of the statement, inside the
-- writer's transaction, so nobody else ever sees it: sms_retry, retry_count, max_retries and
-- next_retry_at as they were; a SID already set kept; final_status and delivery_confirmed_at as
-- they were unless the writer set final_status 'delivered'. The router's own columns keep what it
-- wrote. sms_retry.rev steps past both versions, so an older read written back later is undone
-- too. The undo is itself an UPDATE of the row (on the row's own partition, by id and created_at,
-- the key a table partitioned by created_at has); the function that
-- makes it runs as its owner, so a router role needs no rights on partitions.
--   sms_retry_guard()     009's function, now the AFTER trigger's (undoes by an UPDATE).
--   sms_retry_guard       the trigger: AFTER UPDATE OF the same seven columns, WHEN now also
--                         leaves sms-retry's own writes (rev stepped by one) alone.
-- sms-retry:applied-when: EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass('sms_usage_logs') AND tgname = 'sms_retry_guard' AND tgparentid = 0 AND (tgtype::int & 2) = 0) AND EXISTS (SELECT 1 FROM pg_proc WHERE oid = to_regprocedure('sms_retry_guard()') AND prosecdef)
SET lock_timeout = '2s';
SET statement_timeout = '30s';

BEGIN;

CREATE OR REPLACE FUNCTION sms_retry_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    delivered boolean := NEW.final_status IS NOT DISTINCT FROM 'delivered';
BEGIN
    -- The undo below is an UPDATE of these columns too: it fires this trigger, with nothing to undo.
    IF current_setting('sms_retry.guard_undoing', true) = 'on' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('sms_retry.guard_undoing', 'on', true);
    BEGIN
        EXECUTE format('UPDATE %I.%I SET sms_retry = $1, retry_count = $2, max_retries = $3, next_retry_at = $4,
                               twilio_message_sid = $5, final_status = $6, delivery_confirmed_at = $7
                        WHERE id = $8 AND created_at IS NOT DISTINCT FROM $9', TG_TABLE_SCHEMA, TG_TABLE_NAME)
        USING OLD.sms_retry || jsonb_build_object('rev', greatest(coalesce((OLD.sms_retry ->> 'rev')::bigint, 0),
                                                                  coalesce((NEW.sms_retry ->> 'rev')::bigint, 0)) + 1),
              OLD.retry_count, OLD.max_retries, OLD.next_retry_at,
              coalesce(OLD.twilio_message_sid, NEW.twilio_message_sid),
              CASE WHEN delivered THEN NEW.final_status ELSE OLD.final_status END,
              CASE WHEN delivered THEN NEW.delivery_confirmed_at ELSE OLD.delivery_confirmed_at END,
              NEW.id, NEW.created_at;
    EXCEPTION WHEN OTHERS THEN
        PERFORM set_config('sms_retry.guard_undoing', '', true);
        RAISE;
    END;
    PERFORM set_config('sms_retry.guard_undoing', '', true);
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION sms_retry_guard() IS 'sms-retry: undoes a write to its columns that is not its own, after it (migrations 009, 017)';

CREATE OR REPLACE TRIGGER sms_retry_guard
    AFTER UPDATE OF sms_retry, retry_count, max_retries, next_retry_at, final_status,
                    delivery_confirmed_at, twilio_message_sid
    ON sms_usage_logs
    FOR EACH ROW
    WHEN (OLD.sms_retry IS NOT NULL
          AND NEW.sms_retry -> 'rev' IS DISTINCT FROM to_jsonb(coalesce((OLD.sms_retry ->> 'rev')::bigint, 0) + 1)
          AND (NEW.sms_retry, NEW.retry_count, NEW.max_retries, NEW.next_retry_at, NEW.final_status,
               NEW.delivery_confirmed_at, NEW.twilio_message_sid)
              IS DISTINCT FROM (OLD.sms_retry, OLD.retry_count, OLD.max_retries, OLD.next_retry_at, OLD.final_status,
                                OLD.delivery_confirmed_at, OLD.twilio_message_sid))
    EXECUTE FUNCTION sms_retry_guard();

COMMIT;
