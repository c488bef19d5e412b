-- sms-retry 016 down: 015's sms_retry_report_failure_at and sms_retry_report_status_at again (their
-- bodies and comments restored byte for byte: a router's pumping report follows the code's rule
-- again); sms_retry_pumping_hold goes. Grants and owners are kept.
-- squawk-ignore-file ban-drop-function
SET lock_timeout = '2s';
SET statement_timeout = '30s';

BEGIN;
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

DROP FUNCTION IF EXISTS sms_retry_pumping_hold(jsonb, integer, integer);
COMMIT;
