-- sms-retry 014 up: a pumping code (30450) that arrives by a delivery status is held like one at
-- the create call (issue 26). A status callback, `delivery-status` and reconcile's sweep go
-- through Outcome.status, a router's SQL report through sms_retry_report_status: both now hold the
-- row uncounted for at least pumping_hold_seconds, reason and history `pumping_held`, never given
-- up for it. Three definitions change, nothing on the table:
--   sms_retry_policy()          carries `pumping_codes` and `pumping_hold_seconds` (RetryPolicy.sqlJSON):
--                               the defaults are added under what the function returns now (an
--                               operator's policy is kept; `migrate` rewrites it from the file anyway).
--   sms_retry_report_status()   012's, with the pumping branch.
--   sms_retry_spend_daily       a `pumping_held` entry with a SID is a status about a resend already
--                               counted, not a new request: not counted again (Queries.spendSoFar alike).
-- sms-retry:applied-when: EXISTS (SELECT 1 FROM pg_proc WHERE oid IN (to_regprocedure('sms_retry_report_status(text, text, integer)'), to_regprocedure('sms_retry_report_status_at(text, text, integer, timestamptz, jsonb)')) AND prosrc LIKE '%pumping_codes%') AND EXISTS (SELECT 1 FROM pg_proc WHERE oid = to_regprocedure('sms_retry_policy()') AND prosrc LIKE '%pumping_codes%') AND coalesce(pg_get_viewdef(to_regclass('sms_retry_spend_daily')), '') LIKE '%''sid''%'
SET lock_timeout = '2s';
SET statement_timeout = '30s';

BEGIN;
-- The policy with the pumping keys; the defaults (SpendPolicy) only where they are missing.
DO $do$
BEGIN
    EXECUTE format('CREATE OR REPLACE FUNCTION sms_retry_policy() RETURNS jsonb LANGUAGE sql STABLE PARALLEL SAFE AS %L',
                   format('SELECT %L::jsonb', ('{"pumping_codes": [30450], "pumping_hold_seconds": 1800}'::jsonb || sms_retry_policy())::text));
END
$do$;

-- A delivery status for message `sid` (012's contract); `undelivered`/`failed` with one of the
-- policy's pumping_codes is held, not classified by the code's retry rule.
CREATE OR REPLACE FUNCTION sms_retry_report_status(sid text, status text, error_code integer) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $fn$
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
    p jsonb;
    rule jsonb;
    hold float8;
    w record;
BEGIN
    IF sid IS NULL OR sid !~ '^[A-Za-z]{2}[0-9A-Za-z]+$' THEN
        RAISE EXCEPTION 'sms_retry_report_status: % is not a Twilio message SID', coalesce(quote_literal(sid), 'NULL') USING ERRCODE = '22023';
    END IF;
    IF word IS NULL OR NOT ranks ? word THEN
        RAISE EXCEPTION 'sms_retry_report_status: % is not a Twilio message status', coalesce(quote_literal(status), 'NULL')
            USING ERRCODE = '22023', HINT = 'queued, accepted, scheduled, sending, sent, delivered, undelivered, failed, canceled or read';
    END IF;
    IF error_code IS NOT NULL AND error_code <= 0 THEN
        RAISE EXCEPTION 'sms_retry_report_status: error_code % is not a Twilio error code', error_code USING ERRCODE = '22023';
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
        p := sms_retry_policy();
        d := sms_retry_decide(p, error_code, made);
        label := word;
        final := word;
        message := format('Twilio: %s%s (%s)', word, coalesce(', error ' || error_code, ''), d ->> 'meaning');
        IF error_code IS NOT NULL AND coalesce(p -> 'pumping_codes', '[]'::jsonb) @> to_jsonb(error_code) THEN
            -- SMS pumping protection (Outcome.status, as AnswerOutcome at the create call): held,
            -- not given up and not stepped, for at least pumping_hold_seconds or the code's own
            -- delay before jitter (RetryPolicy.baseDelay) when longer.
            rule := CASE WHEN p -> 'codes' ? error_code::text THEN p -> 'codes' -> error_code::text
                         WHEN error_code BETWEEN 30000 AND 39999 THEN p -> 'unknown_3xxxx' ELSE '{}'::jsonb END;
            hold := greatest(coalesce((p ->> 'pumping_hold_seconds')::float8, 1800),
                             least(CASE rule ->> 'strategy'
                                       WHEN 'exponential' THEN (rule ->> 'base_delay')::float8 * power(2::float8, least(made, 40))
                                       WHEN 'linear' THEN (rule ->> 'base_delay')::float8 * (made + 1)
                                       ELSE 0 END, (p ->> 'max_delay')::float8));
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
    SELECT * INTO w FROM sms_retry_write(NULL, 20, ARRAY[r.id::bigint], ARRAY[kind], ARRAY[false],
        ARRAY[CASE WHEN retry THEN (d ->> 'delay')::float8 END], ARRAY[sid], ARRAY[CASE WHEN d IS NOT NULL THEN error_code END],
        ARRAY[message], ARRAY[NULL::integer], ARRAY[NULL::integer], ARRAY[reason], ARRAY[CASE WHEN retry THEN d ->> 'strategy' END],
        ARRAY[CASE WHEN retry AND (d ->> 'counted')::boolean THEN (d ->> 'max_retries')::integer END], ARRAY[NULL::timestamptz],
        ARRAY[label], ARRAY[note], ARRAY[final],
        ARRAY[jsonb_strip_nulls(jsonb_build_object('sid', sid, 'status', word,
                                                   'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
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
COMMENT ON FUNCTION sms_retry_report_status(text, text, integer) IS 'sms-retry: a Twilio delivery status for a message SID, as serve-callbacks applies it; a pumping code holds the row (migrations 012, 014)';
-- CREATE OR REPLACE resets the function's settings: its search_path again, as 012 set it (its
-- owner, SECURITY DEFINER and its grants are kept).
DO $do$
BEGIN
    EXECUTE format('ALTER FUNCTION sms_retry_report_status(text, text, integer) SET search_path = %I, pg_catalog, pg_temp',
                   (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.oid = 'sms_usage_logs'::regclass));
END
$do$;

-- Resends per day and country (013's view): a `pumping_held` entry counts only when it is a
-- request Twilio refused (no SID), not a status about a message already counted as sent.
CREATE OR REPLACE VIEW sms_retry_spend_daily AS
WITH settings AS MATERIALIZED (
    SELECT x.days, x.price, sms_retry_router_time(now())::date AS today,
           sms_retry_router_time(now())::date - (x.days - 1) AS first_day
    FROM (SELECT coalesce(nullif(current_setting('sms_retry.days', true), ''), '30')::int AS days,
                 coalesce(nullif(current_setting('sms_retry.price_per_segment', true), ''), '0.0079')::numeric AS price) x
), entries AS (
    SELECT sms_retry_router_time((h.e ->> 'at')::timestamptz)::date AS day,
           coalesce(s.sms_retry -> 'spend' ->> 'country', 'unknown') AS country,
           h.e ->> 'outcome' = 'sent' AS accepted,
           sms_retry_segments(s.message_content) AS segments,
           coalesce((s.sms_retry -> 'spend' ->> 'cost')::numeric,
                    sms_retry_segments(s.message_content) * (SELECT price FROM settings)) AS cost
    FROM sms_usage_logs s
    CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(s.sms_retry -> 'history') = 'array'
                                                 THEN s.sms_retry -> 'history' ELSE '[]'::jsonb END) AS h(e)
    WHERE (s.success = false OR s.retry_count > 0)
      AND s.created_at >= (SELECT first_day - 30 FROM settings)
      AND s.created_at < (SELECT today + 2 FROM settings)
      AND (s.retry_count > 0 OR s.sms_retry ? 'spend')
      AND (h.e ->> 'outcome' IN ('sent', 'rejected', 'transport_error', 'http_error')
           OR (h.e ->> 'outcome' = 'pumping_held' AND h.e ? 'code' AND NOT h.e ? 'sid'))
)
SELECT e.day, e.country,
       count(*)::bigint AS resends,
       count(*) FILTER (WHERE e.accepted)::bigint AS accepted,
       coalesce(sum(e.segments) FILTER (WHERE e.accepted), 0)::bigint AS segments,
       round(coalesce(sum(e.cost) FILTER (WHERE e.accepted), 0), 4) AS estimated_cost
FROM entries e CROSS JOIN settings
WHERE e.day >= settings.first_day AND e.day <= settings.today
GROUP BY e.day, e.country
ORDER BY e.day DESC, estimated_cost DESC, e.country;
COMMIT;
