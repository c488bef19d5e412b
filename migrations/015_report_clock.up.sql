-- sms-retry 015 up: every report is decided in one place, in PL/pgSQL (issue 25).
-- Each report function of 012 becomes a thin door over an internal one that takes the time and
-- (where a decision needs it) the policy explicitly:
--   sms_retry_report_failure_at(log_id, error_code, error_message, at, policy)
--   sms_retry_report_sent_at(log_id, sid, at)
--   sms_retry_report_status_at(sid, status, error_code, at, policy)
--   sms_retry_cancel_at(log_id, note, at)
--   sms_retry_retry_now_at(log_id, at)
-- The public functions (router) call them with now() and sms_retry_policy(); the Swift library
-- (RetryStore.recordFailure, recordSent, recordDeliveryStatus, cancel, retryNow, and through it
-- the CLI and serve-callbacks) calls them with its clock (NULL: now()) and its own policy
-- (RetryPolicy.sqlJSON). `at` NULL means now(). The internal functions are SECURITY INVOKER and
-- EXECUTE is revoked from PUBLIC: a router must not pass a policy of its own; the roles that may
-- call them (sms-retry's runtime role, `migrate --grant-runtime`) already have UPDATE on the
-- table. Input checks that are errors for the router (NULL id, bad code, SID or status) stay in
-- the public functions, with their messages and SQLSTATEs; the library's API never threw for them.
-- docs/ARCHITECTURE.md, "Reporting in SQL".
-- sms-retry:applied-when: (SELECT count(*) FROM pg_proc WHERE oid IN (to_regprocedure('sms_retry_report_failure_at(bigint, integer, text, timestamptz, jsonb)'), to_regprocedure('sms_retry_report_sent_at(bigint, text, timestamptz)'), to_regprocedure('sms_retry_report_status_at(text, text, integer, timestamptz, jsonb)'), to_regprocedure('sms_retry_cancel_at(bigint, text, timestamptz)'), to_regprocedure('sms_retry_retry_now_at(bigint, timestamptz)')) AND NOT prosecdef) = 5 AND EXISTS (SELECT 1 FROM pg_proc WHERE oid = to_regprocedure('sms_retry_report_status_at(text, text, integer, timestamptz, jsonb)') AND prosrc LIKE '%pumping_codes%') AND (SELECT count(*) FROM pg_proc WHERE oid IN (to_regprocedure('sms_retry_report_failure(bigint, integer, text)'), to_regprocedure('sms_retry_report_sent(bigint, text)'), to_regprocedure('sms_retry_report_status(text, text, integer)'), to_regprocedure('sms_retry_cancel(bigint)'), to_regprocedure('sms_retry_retry_now(bigint)')) AND prosrc LIKE '%sms\_retry\_%\_at(%' AND prosecdef) = 5
SET lock_timeout = '2s';
SET statement_timeout = '30s';

BEGIN;

-- A send's failure at `at` under `policy`: RetryStore.recordFailure's contract (012's
-- sms_retry_report_failure, its time and policy made parameters).
CREATE OR REPLACE FUNCTION sms_retry_report_failure_at(log_id bigint, error_code integer, error_message text, at timestamptz, policy jsonb)
RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    r record;
    d jsonb;
    made integer;
    doubt text;
    w record;
    retry boolean;
    t timestamptz := coalesce(at, now());
BEGIN
    SELECT s.message_direction, s.success, s.retry_count,
           extract(epoch FROM t)::float8 - extract(epoch FROM sms_retry_router_time(t) - s.created_at)::float8
           - greatest(coalesce(s.processing_time_ms, 0), 0) / 1000.0 AS sent_epoch
    INTO r FROM sms_usage_logs AS s WHERE s.id = log_id FOR UPDATE;
    IF NOT FOUND THEN RETURN jsonb_build_object('result', 'not_found', 'log_id', log_id); END IF;
    IF NOT coalesce(sms_retry_is_outbound(r.message_direction), false) THEN
        RETURN jsonb_build_object('result', 'not_outbound', 'log_id', log_id);
    END IF;
    IF r.success IS TRUE THEN RETURN jsonb_build_object('result', 'already_sent', 'log_id', log_id); END IF;
    made := coalesce(r.retry_count, 0);
    d := sms_retry_decide(policy, error_code, made);
    retry := d ->> 'decision' = 'retry';
    -- A send with no Twilio code may have created the message; Twilio is asked before the first
    -- resend, from 30 s before the router's send started.
    IF error_code IS NULL AND r.sent_epoch IS NOT NULL THEN
        doubt := jsonb_build_object('since', to_char(to_timestamp(round((r.sent_epoch - 30) * 1000) / 1000) AT TIME ZONE 'UTC',
                                                     'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                                    'counted', false, 'router', true)::text;
    END IF;
    SELECT * INTO w FROM sms_retry_write(at, 20, ARRAY[log_id], ARRAY[CASE WHEN retry THEN 'retry' ELSE 'failed' END], ARRAY[false],
        ARRAY[CASE WHEN retry THEN (d ->> 'delay')::float8 END], ARRAY[NULL::text], ARRAY[error_code], ARRAY[error_message],
        ARRAY[NULL::integer], ARRAY[NULL::integer], ARRAY[CASE WHEN NOT retry THEN d ->> 'reason' END],
        ARRAY[CASE WHEN retry THEN d ->> 'strategy' END],
        ARRAY[CASE WHEN retry AND (d ->> 'counted')::boolean THEN (d ->> 'max_retries')::integer END],
        ARRAY[NULL::timestamptz], ARRAY['failed'], ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[doubt],
        ARRAY[false], ARRAY[NULL::text]);
    IF retry THEN
        RETURN jsonb_build_object('result', 'scheduled', 'log_id', log_id, 'attempt', made + 1,
                                  'next_retry_at', to_timestamp(w.written_next_retry_epoch), 'counted', (d ->> 'counted')::boolean);
    END IF;
    RETURN jsonb_build_object('result', 'closed', 'log_id', log_id, 'reason', d ->> 'reason', 'meaning', d ->> 'meaning',
                              'attempts', made);
END
$fn$;
COMMENT ON FUNCTION sms_retry_report_failure_at(bigint, integer, text, timestamptz, jsonb) IS 'sms-retry: a failed send at a time under a policy; sms_retry_report_failure and RetryStore.recordFailure (migration 015)';

CREATE OR REPLACE FUNCTION sms_retry_report_failure(log_id bigint, error_code integer, error_message text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $fn$
BEGIN
    IF log_id IS NULL THEN
        RAISE EXCEPTION 'sms_retry_report_failure: log_id is NULL' USING ERRCODE = '22004',
            HINT = 'pass the id of the sms_usage_logs row the send was logged as';
    END IF;
    IF error_code IS NOT NULL AND error_code <= 0 THEN
        RAISE EXCEPTION 'sms_retry_report_failure: error_code % is not a Twilio error code', error_code USING ERRCODE = '22023',
            HINT = 'pass Twilio''s error code (e.g. 30003), or NULL when the send timed out or got no code (its fate is unknown)';
    END IF;
    RETURN sms_retry_report_failure_at(log_id, error_code, error_message, now(), sms_retry_policy());
END
$fn$;

-- A send Twilio accepted as `sid`, at `at`: RetryStore.recordSent's contract.
CREATE OR REPLACE FUNCTION sms_retry_report_sent_at(log_id bigint, sid text, at timestamptz) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    r record;
BEGIN
    SELECT s.message_direction INTO r FROM sms_usage_logs AS s WHERE s.id = log_id FOR UPDATE;
    IF NOT FOUND THEN RETURN jsonb_build_object('result', 'not_found', 'log_id', log_id); END IF;
    IF NOT coalesce(sms_retry_is_outbound(r.message_direction), false) THEN
        RETURN jsonb_build_object('result', 'not_outbound', 'log_id', log_id);
    END IF;
    PERFORM sms_retry_write(at, 20, ARRAY[log_id], ARRAY['sent'], ARRAY[false], ARRAY[NULL::float8], ARRAY[sid],
        ARRAY[NULL::integer], ARRAY[NULL::text], ARRAY[NULL::integer], ARRAY[NULL::integer], ARRAY[NULL::text], ARRAY[NULL::text],
        ARRAY[NULL::integer], ARRAY[NULL::timestamptz], ARRAY['sent'], ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[NULL::text],
        ARRAY[NULL::text], ARRAY[false], ARRAY[NULL::text]);
    RETURN jsonb_build_object('result', 'sent', 'log_id', log_id, 'sid', sid);
END
$fn$;
COMMENT ON FUNCTION sms_retry_report_sent_at(bigint, text, timestamptz) IS 'sms-retry: a send Twilio accepted, at a time; sms_retry_report_sent and RetryStore.recordSent (migration 015)';

CREATE OR REPLACE FUNCTION sms_retry_report_sent(log_id bigint, sid text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $fn$
BEGIN
    IF log_id IS NULL THEN
        RAISE EXCEPTION 'sms_retry_report_sent: log_id is NULL' USING ERRCODE = '22004';
    END IF;
    IF sid IS NULL OR sid !~ '^[A-Za-z]{2}[0-9A-Za-z]+$' THEN
        RAISE EXCEPTION 'sms_retry_report_sent: % is not a Twilio message SID', coalesce(quote_literal(sid), 'NULL') USING ERRCODE = '22023',
            HINT = 'pass the sid of Twilio''s answer (SM…); for a failed send call sms_retry_report_failure';
    END IF;
    RETURN sms_retry_report_sent_at(log_id, sid, now());
END
$fn$;

-- Closes a pending retry, with an operator's `note`, at `at` (RetryStore.cancel).
CREATE OR REPLACE FUNCTION sms_retry_cancel_at(log_id bigint, note text, at timestamptz) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    r record;
BEGIN
    SELECT s.message_direction, s.success, s.next_retry_at IS NOT NULL AS pending,
           (s.next_retry_at > coalesce(at, now()) AND s.sms_retry ? 'lease') AS in_flight
    INTO r FROM sms_usage_logs AS s WHERE s.id = log_id FOR UPDATE;
    IF NOT FOUND THEN RETURN jsonb_build_object('result', 'not_found', 'log_id', log_id); END IF;
    IF NOT coalesce(sms_retry_is_outbound(r.message_direction), false) THEN
        RETURN jsonb_build_object('result', 'not_outbound', 'log_id', log_id);
    END IF;
    IF r.success IS TRUE THEN RETURN jsonb_build_object('result', 'already_sent', 'log_id', log_id); END IF;
    IF r.in_flight IS TRUE THEN RETURN jsonb_build_object('result', 'in_flight', 'log_id', log_id); END IF;
    IF NOT r.pending THEN RETURN jsonb_build_object('result', 'not_pending', 'log_id', log_id); END IF;
    PERFORM sms_retry_write(at, 20, ARRAY[log_id], ARRAY['failed'], ARRAY[false], ARRAY[NULL::float8], ARRAY[NULL::text],
        ARRAY[NULL::integer], ARRAY[NULL::text], ARRAY[NULL::integer], ARRAY[NULL::integer], ARRAY['canceled'], ARRAY[NULL::text],
        ARRAY[NULL::integer], ARRAY[NULL::timestamptz], ARRAY['canceled'], ARRAY[note], ARRAY[NULL::text], ARRAY[NULL::text],
        ARRAY[NULL::text], ARRAY[false], ARRAY[NULL::text]);
    RETURN jsonb_build_object('result', 'closed', 'log_id', log_id, 'reason', 'canceled');
END
$fn$;
COMMENT ON FUNCTION sms_retry_cancel_at(bigint, text, timestamptz) IS 'sms-retry: closes a pending retry at a time, with a note; sms_retry_cancel and RetryStore.cancel (migration 015)';

CREATE OR REPLACE FUNCTION sms_retry_cancel(log_id bigint) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $fn$
BEGIN
    IF log_id IS NULL THEN RAISE EXCEPTION 'sms_retry_cancel: log_id is NULL' USING ERRCODE = '22004'; END IF;
    RETURN sms_retry_cancel_at(log_id, NULL, now());
END
$fn$;

-- Makes a row due at `at`; a row closed as exhausted, expired or canceled is reopened with one
-- more attempt (RetryStore.retryNow).
CREATE OR REPLACE FUNCTION sms_retry_retry_now_at(log_id bigint, at timestamptz) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    r record;
    w record;
    made integer;
BEGIN
    SELECT s.message_direction, s.success, s.retry_count, s.max_retries, s.sms_retry ->> 'reason' AS reason,
           (s.next_retry_at > coalesce(at, now()) AND s.sms_retry ? 'lease') AS in_flight
    INTO r FROM sms_usage_logs AS s WHERE s.id = log_id FOR UPDATE;
    IF NOT FOUND THEN RETURN jsonb_build_object('result', 'not_found', 'log_id', log_id); END IF;
    IF NOT coalesce(sms_retry_is_outbound(r.message_direction), false) THEN
        RETURN jsonb_build_object('result', 'not_outbound', 'log_id', log_id);
    END IF;
    IF r.success IS TRUE THEN RETURN jsonb_build_object('result', 'already_sent', 'log_id', log_id); END IF;
    IF r.in_flight IS TRUE THEN RETURN jsonb_build_object('result', 'in_flight', 'log_id', log_id); END IF;
    IF r.reason IS NOT NULL AND r.reason NOT IN ('exhausted', 'expired', 'canceled') THEN
        RETURN jsonb_build_object('result', 'refused', 'log_id', log_id, 'reason', r.reason);
    END IF;
    made := coalesce(r.retry_count, 0);
    SELECT * INTO w FROM sms_retry_write(at, 20, ARRAY[log_id], ARRAY['retry'], ARRAY[false], ARRAY[0::float8], ARRAY[NULL::text],
        ARRAY[NULL::integer], ARRAY[NULL::text], ARRAY[NULL::integer], ARRAY[NULL::integer], ARRAY[NULL::text], ARRAY[NULL::text],
        ARRAY[greatest(coalesce(r.max_retries, 0), made + 1)], ARRAY[NULL::timestamptz], ARRAY['retry_now'], ARRAY[NULL::text],
        ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[false], ARRAY[NULL::text]);
    RETURN jsonb_build_object('result', 'scheduled', 'log_id', log_id, 'attempt', made + 1,
                              'next_retry_at', to_timestamp(w.written_next_retry_epoch));
END
$fn$;
COMMENT ON FUNCTION sms_retry_retry_now_at(bigint, timestamptz) IS 'sms-retry: makes a row due at a time, reopening an exhausted, expired or canceled one; sms_retry_retry_now and RetryStore.retryNow (migration 015)';

CREATE OR REPLACE FUNCTION sms_retry_retry_now(log_id bigint) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $fn$
BEGIN
    IF log_id IS NULL THEN RAISE EXCEPTION 'sms_retry_retry_now: log_id is NULL' USING ERRCODE = '22004'; END IF;
    RETURN sms_retry_retry_now_at(log_id, now());
END
$fn$;

-- A delivery status for message `sid` at `at` under `policy`: RetryStore.recordDeliveryStatus's
-- contract (014's sms_retry_report_status, pumping hold included, its time and policy made parameters). Later statuses win; the same or an older one leaves the row unchanged. Any SID is
-- looked up (one no row carries is not_found); an unknown status is an error.
CREATE OR REPLACE FUNCTION sms_retry_report_status_at(sid text, status text, error_code integer, at timestamptz, policy jsonb)
RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    word text := lower(btrim(status));
    ranks constant jsonb := '{"queued": 1, "accepted": 1, "scheduled": 1, "sending": 2, "sent": 3, "delivered": 4,
                              "undelivered": 4, "failed": 4, "canceled": 4, "read": 5}';
    r record;
    known text;
    d jsonb;
    made integer;
    retry boolean;
    kind text;
    reason text;
    label text;
    final text;
    message text;
    note text;
    rule jsonb;
    hold float8;
    w record;
BEGIN
    IF word IS NULL OR NOT ranks ? word THEN
        RAISE EXCEPTION 'sms_retry_report_status: % is not a Twilio message status', coalesce(quote_literal(status), 'NULL')
            USING ERRCODE = '22023', HINT = 'queued, accepted, scheduled, sending, sent, delivered, undelivered, failed, canceled or read';
    END IF;
    SELECT s.id, s.message_direction, s.retry_count, s.success, s.final_status,
           s.sms_retry -> 'delivery' ->> 'sid' AS delivery_sid, s.sms_retry -> 'delivery' ->> 'status' AS delivery_status
    INTO r FROM sms_usage_logs AS s WHERE s.twilio_message_sid = sid ORDER BY s.id DESC LIMIT 1 FOR UPDATE;
    IF NOT FOUND THEN RETURN jsonb_build_object('result', 'not_found', 'sid', sid); END IF;
    IF NOT coalesce(sms_retry_is_outbound(r.message_direction), false) THEN
        RETURN jsonb_build_object('result', 'not_outbound', 'log_id', r.id);
    END IF;
    known := CASE WHEN r.delivery_sid = sid AND ranks ? r.delivery_status THEN r.delivery_status END;
    IF known IS NOT NULL AND (ranks ->> known)::int >= (ranks ->> word)::int THEN
        RETURN jsonb_build_object('result', 'unchanged', 'log_id', r.id, 'current', known);
    END IF;
    made := coalesce(r.retry_count, 0);
    IF (ranks ->> word)::int < 4 THEN
        kind := 'progress';
        final := CASE WHEN r.success IS TRUE AND r.final_status = 'unknown' THEN 'sent' END;
    ELSIF word IN ('delivered', 'read') THEN
        kind := 'delivered'; label := 'delivered';
    ELSIF word = 'canceled' THEN
        kind := 'failed'; reason := 'canceled'; label := 'canceled'; final := 'failed';
    ELSE
        d := sms_retry_decide(policy, error_code, made);
        label := word;
        final := word;
        message := format('Twilio: %s%s (%s)', word, coalesce(', error ' || error_code, ''), d ->> 'meaning');
        IF error_code IS NOT NULL AND coalesce(policy -> 'pumping_codes', '[]'::jsonb) @> to_jsonb(error_code) THEN
            -- SMS pumping protection (Outcome.status, as AnswerOutcome at the create call; 014):
            -- held, not given up and not stepped, for at least pumping_hold_seconds or the
            -- code's own delay before jitter (RetryPolicy.baseDelay) when longer.
            rule := CASE WHEN policy -> 'codes' ? error_code::text THEN policy -> 'codes' -> error_code::text
                         WHEN error_code BETWEEN 30000 AND 39999 THEN policy -> 'unknown_3xxxx' ELSE '{}'::jsonb END;
            hold := greatest(coalesce((policy ->> 'pumping_hold_seconds')::float8, 1800),
                             least(CASE rule ->> 'strategy'
                                       WHEN 'exponential' THEN (rule ->> 'base_delay')::float8 * power(2::float8, least(made, 40))
                                       WHEN 'linear' THEN (rule ->> 'base_delay')::float8 * (made + 1)
                                       ELSE 0 END, (policy ->> 'max_delay')::float8));
            d := jsonb_build_object('decision', 'retry', 'delay', hold, 'counted', false, 'meaning', d ->> 'meaning');
            retry := true;
            kind := 'retry';
            reason := 'pumping_held';
            label := 'pumping_held';
            note := format('Twilio %s (SMS pumping protection); held %s min', error_code, floor(hold / 60)::bigint);
        ELSE
            retry := d ->> 'decision' = 'retry';
            kind := CASE WHEN retry THEN 'retry' ELSE 'failed' END;
            reason := CASE WHEN NOT retry THEN d ->> 'reason' END;
        END IF;
    END IF;
    SELECT * INTO w FROM sms_retry_write(at, 20, ARRAY[r.id::bigint], ARRAY[kind], ARRAY[false],
        ARRAY[CASE WHEN retry THEN (d ->> 'delay')::float8 END], ARRAY[sid], ARRAY[CASE WHEN d IS NOT NULL THEN error_code END],
        ARRAY[message], ARRAY[NULL::integer], ARRAY[NULL::integer], ARRAY[reason], ARRAY[CASE WHEN retry THEN d ->> 'strategy' END],
        ARRAY[CASE WHEN retry AND (d ->> 'counted')::boolean THEN (d ->> 'max_retries')::integer END], ARRAY[NULL::timestamptz],
        ARRAY[label], ARRAY[note], ARRAY[final],
        ARRAY[jsonb_strip_nulls(jsonb_build_object('sid', sid, 'status', word,
                                                   'at', to_char(coalesce(at, now()) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                                                   'error_code', error_code::text))::text],
        ARRAY[NULL::text], ARRAY[false], ARRAY[NULL::text]);
    RETURN CASE kind
        WHEN 'progress' THEN jsonb_build_object('result', 'progress', 'log_id', r.id, 'status', word)
        WHEN 'delivered' THEN jsonb_build_object('result', 'delivered', 'log_id', r.id)
        WHEN 'retry' THEN jsonb_build_object('result', 'scheduled', 'log_id', r.id, 'attempt', made + 1,
                                             'next_retry_at', to_timestamp(w.written_next_retry_epoch))
        ELSE jsonb_build_object('result', 'closed', 'log_id', r.id, 'reason', coalesce(reason, word)) END;
END
$fn$;
COMMENT ON FUNCTION sms_retry_report_status_at(text, text, integer, timestamptz, jsonb) IS 'sms-retry: a delivery status at a time under a policy; sms_retry_report_status and RetryStore.recordDeliveryStatus (migration 015)';

CREATE OR REPLACE FUNCTION sms_retry_report_status(sid text, status text, error_code integer) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $fn$
BEGIN
    IF sid IS NULL OR sid !~ '^[A-Za-z]{2}[0-9A-Za-z]+$' THEN
        RAISE EXCEPTION 'sms_retry_report_status: % is not a Twilio message SID', coalesce(quote_literal(sid), 'NULL') USING ERRCODE = '22023';
    END IF;
    IF error_code IS NOT NULL AND error_code <= 0 THEN
        RAISE EXCEPTION 'sms_retry_report_status: error_code % is not a Twilio error code', error_code USING ERRCODE = '22023';
    END IF;
    RETURN sms_retry_report_status_at(sid, status, error_code, now(), sms_retry_policy());
END
$fn$;

-- CREATE OR REPLACE keeps a function's owner, grants and comment but not its SET clauses: the
-- public functions get 012's search_path again. The internal ones run with their caller's (the
-- public function's fixed one, or the library's session), and nobody may call them until granted
-- (`migrate --grant-runtime`; never `--grant-router`).
DO $do$
DECLARE
    home text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.oid = 'sms_usage_logs'::regclass);
    f regprocedure;
BEGIN
    FOREACH f IN ARRAY ARRAY['sms_retry_report_failure(bigint, integer, text)', 'sms_retry_report_sent(bigint, text)',
                             'sms_retry_report_status(text, text, integer)', 'sms_retry_cancel(bigint)', 'sms_retry_retry_now(bigint)']::regprocedure[] LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_catalog, pg_temp', f, home);
    END LOOP;
    FOREACH f IN ARRAY ARRAY['sms_retry_report_failure_at(bigint, integer, text, timestamptz, jsonb)', 'sms_retry_report_sent_at(bigint, text, timestamptz)',
                             'sms_retry_report_status_at(text, text, integer, timestamptz, jsonb)', 'sms_retry_cancel_at(bigint, text, timestamptz)',
                             'sms_retry_retry_now_at(bigint, timestamptz)']::regprocedure[] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$do$;
COMMIT;
