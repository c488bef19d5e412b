-- sms-retry 012 up: the router reports in SQL, in its own transaction (issue 25).
-- sms_retry_report_failure / _sent / _status, sms_retry_cancel, sms_retry_retry_now and
-- sms_retry_state, each returning jsonb with `result` for the router to branch on; bad input is an
-- error with a SQLSTATE (22004 a NULL that may not be, 22023 a bad value), never a silent no-op.
-- One implementation with the Swift library (docs/ARCHITECTURE.md, "Reporting in SQL"):
--   sms_retry_policy()   the decision's inputs as `RetryPolicy.sqlJSON` renders them: `migrate`
--                        and `policy apply` redefine it from the policy `run` loads; `check` compares.
--   sms_retry_decide()   RetryPolicy.decide over that object (classification, backoff, jitter, cap).
--   sms_retry_write()    the record statement itself: its body holds Queries.outcomesRecord byte for
--                        byte (a test holds them equal), so a report writes exactly what a run writes.
-- The report functions are SECURITY DEFINER (they run as the owner of sms-retry's columns, so the
-- router's role needs EXECUTE and nothing on sms-retry's columns) with search_path fixed to the
-- table's schema then pg_catalog then pg_temp; EXECUTE is revoked from PUBLIC and granted by
-- `migrate --grant-router ROLE`.
-- sms-retry:applied-when: (SELECT count(*) FROM pg_proc WHERE oid IN (to_regprocedure('sms_retry_report_failure(bigint, integer, text)'), to_regprocedure('sms_retry_report_sent(bigint, text)'), to_regprocedure('sms_retry_report_status(text, text, integer)'), to_regprocedure('sms_retry_cancel(bigint)'), to_regprocedure('sms_retry_retry_now(bigint)'), to_regprocedure('sms_retry_state(bigint)')) AND prosecdef AND array_to_string(proconfig, ',') LIKE '%search_path=%pg_temp%') = 6 AND to_regprocedure('sms_retry_policy()') IS NOT NULL AND to_regprocedure('sms_retry_decide(jsonb, integer, integer)') IS NOT NULL
SET lock_timeout = '2s';
SET statement_timeout = '30s';

BEGIN;

-- The policy the report functions read. Redefined by `migrate` and `sms-retry policy apply FILE`
-- from the policy `run` loads (RetryPolicy.sqlJSON); this body is the built-in default.
CREATE OR REPLACE FUNCTION sms_retry_policy() RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $policy$SELECT '{"codes": {"21211": {"base_delay": 0, "max_retries": 0, "meaning": "invalid ''To'' phone number", "retryable": false, "strategy": "exponential"}, "21212": {"base_delay": 0, "max_retries": 0, "meaning": "invalid ''From'' number", "retryable": false, "strategy": "exponential"}, "21214": {"base_delay": 0, "max_retries": 0, "meaning": "''To'' phone number cannot be reached", "retryable": false, "strategy": "exponential"}, "21408": {"base_delay": 0, "max_retries": 0, "meaning": "permission to send to this region is not enabled", "retryable": false, "strategy": "exponential"}, "21606": {"base_delay": 0, "max_retries": 0, "meaning": "''From'' number is not a valid message-capable number for this destination", "retryable": false, "strategy": "exponential"}, "21608": {"base_delay": 0, "max_retries": 0, "meaning": "unverified ''To'' number on a trial account", "retryable": false, "strategy": "exponential"}, "21610": {"base_delay": 0, "max_retries": 0, "meaning": "recipient unsubscribed (replied STOP)", "retryable": false, "strategy": "exponential"}, "21612": {"base_delay": 0, "max_retries": 0, "meaning": "''From''\/''To'' pair cannot send messages", "retryable": false, "strategy": "exponential"}, "21614": {"base_delay": 0, "max_retries": 0, "meaning": "''To'' number is not a mobile number", "retryable": false, "strategy": "exponential"}, "21617": {"base_delay": 0, "max_retries": 0, "meaning": "body exceeds the 1600 character limit", "retryable": false, "strategy": "exponential"}, "21659": {"base_delay": 0, "max_retries": 0, "meaning": "''From'' is not a Twilio phone number, or a short code of another country", "retryable": false, "strategy": "exponential"}, "21660": {"base_delay": 0, "max_retries": 0, "meaning": "''From'' number is not on this account", "retryable": false, "strategy": "exponential"}, "21661": {"base_delay": 0, "max_retries": 0, "meaning": "''From'' number is not SMS-capable", "retryable": false, "strategy": "exponential"}, "30001": {"base_delay": 60, "max_retries": 3, "meaning": "queue overflow", "retryable": true, "strategy": "exponential"}, "30002": {"base_delay": 0, "max_retries": 0, "meaning": "account suspended", "retryable": false, "strategy": "exponential"}, "30003": {"base_delay": 300, "max_retries": 2, "meaning": "unreachable destination handset", "retryable": true, "strategy": "linear"}, "30004": {"base_delay": 0, "max_retries": 0, "meaning": "message blocked (blocklist or opt-out)", "retryable": false, "strategy": "exponential"}, "30005": {"base_delay": 0, "max_retries": 0, "meaning": "unknown destination handset", "retryable": false, "strategy": "exponential"}, "30006": {"base_delay": 0, "max_retries": 0, "meaning": "landline or unreachable carrier", "retryable": false, "strategy": "exponential"}, "30007": {"base_delay": 0, "max_retries": 0, "meaning": "message filtered (spam or carrier policy)", "retryable": false, "strategy": "exponential"}, "30008": {"base_delay": 120, "max_retries": 1, "meaning": "unknown error", "retryable": true, "strategy": "exponential"}, "30017": {"base_delay": 300, "max_retries": 3, "meaning": "carrier network congestion", "retryable": true, "strategy": "exponential"}, "30022": {"base_delay": 300, "max_retries": 3, "meaning": "US A2P 10DLC rate limit exceeded (over the campaign''s throughput)", "retryable": true, "strategy": "linear"}, "30023": {"base_delay": 21600, "max_retries": 1, "meaning": "US A2P 10DLC daily cap reached", "retryable": true, "strategy": "linear"}, "30024": {"base_delay": 0, "max_retries": 0, "meaning": "numeric sender ID not provisioned by carrier", "retryable": false, "strategy": "exponential"}, "30027": {"base_delay": 21600, "max_retries": 1, "meaning": "US A2P 10DLC T-Mobile daily limit reached", "retryable": true, "strategy": "linear"}, "30032": {"base_delay": 0, "max_retries": 0, "meaning": "toll-free number has not been verified", "retryable": false, "strategy": "exponential"}, "30034": {"base_delay": 0, "max_retries": 0, "meaning": "US A2P 10DLC message from an unregistered number", "retryable": false, "strategy": "exponential"}, "30036": {"base_delay": 0, "max_retries": 0, "meaning": "validity period expired", "retryable": false, "strategy": "exponential"}, "30410": {"base_delay": 300, "max_retries": 2, "meaning": "provider timeout; Twilio did not retry", "retryable": true, "strategy": "exponential"}, "30450": {"base_delay": 1200, "max_retries": 2, "meaning": "message delivery blocked by SMS pumping protection", "retryable": true, "strategy": "linear"}}, "jitter": 0.1, "max_delay": 86400, "transport": {"base_delay": 60, "max_retries": 3, "meaning": "HTTP 5xx or transport error (timeout, refused, reset)", "retryable": true, "strategy": "exponential"}, "unknown_3xxxx": {"base_delay": 120, "max_retries": 2, "meaning": "unlisted 3xxxx delivery error", "retryable": true, "strategy": "exponential"}}'::jsonb$policy$;
COMMENT ON FUNCTION sms_retry_policy() IS 'sms-retry: the retry policy the report functions read (RetryPolicy.sqlJSON), written by migrate and policy apply (migration 012)';

-- RetryPolicy.decide: what to do after a failure with `error_code` (NULL: no Twilio code, a send
-- of unknown fate) when `attempts_made` resends were made. {"decision": "retry", "delay",
-- "strategy", "max_retries", "counted"} or {"decision": "give_up", "reason"}, with "meaning".
CREATE OR REPLACE FUNCTION sms_retry_decide(policy jsonb, error_code integer, attempts_made integer) RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL SAFE AS $fn$
DECLARE
    rule jsonb;
    n integer := greatest(coalesce(attempts_made, 0), 0);
    raw float8;
    delay float8;
    jitter float8 := coalesce((policy ->> 'jitter')::float8, 0);
    cap float8 := (policy ->> 'max_delay')::float8;
BEGIN
    IF error_code IN (20429, 20003) THEN
        -- Throttled, or authentication: not the message's fault; retry later, count nothing.
        rule := policy -> 'transport';
        delay := (rule ->> 'base_delay')::float8;
        IF jitter > 0 AND delay > 0 THEN delay := least(delay * (1 - jitter + 2 * jitter * random()), cap); END IF;
        RETURN jsonb_build_object('decision', 'retry', 'delay', delay, 'strategy', rule ->> 'strategy',
                                  'counted', false, 'meaning', rule ->> 'meaning');
    END IF;
    rule := CASE WHEN error_code IS NULL THEN policy -> 'transport'
                 WHEN policy -> 'codes' ? error_code::text THEN policy -> 'codes' -> error_code::text
                 WHEN error_code BETWEEN 30000 AND 39999 THEN policy -> 'unknown_3xxxx'
                 WHEN error_code BETWEEN 20000 AND 29999 THEN '{"retryable": false, "meaning": "unknown 2xxxx code: a request Twilio refused"}'
                 ELSE '{"retryable": false, "meaning": "unknown code outside 2xxxx/3xxxx"}' END;
    IF NOT (rule ->> 'retryable')::boolean THEN
        RETURN jsonb_build_object('decision', 'give_up', 'reason', 'not_retryable', 'meaning', rule ->> 'meaning');
    END IF;
    IF n >= (rule ->> 'max_retries')::integer THEN
        RETURN jsonb_build_object('decision', 'give_up', 'reason', 'exhausted', 'meaning', rule ->> 'meaning');
    END IF;
    raw := CASE rule ->> 'strategy'
               WHEN 'exponential' THEN (rule ->> 'base_delay')::float8 * power(2::float8, least(n, 40))
               WHEN 'linear' THEN (rule ->> 'base_delay')::float8 * (n + 1)
               ELSE 0 END;
    delay := least(raw, cap);
    IF jitter > 0 AND delay > 0 THEN delay := least(delay * (1 - jitter + 2 * jitter * random()), cap); END IF;
    RETURN jsonb_build_object('decision', 'retry', 'delay', delay, 'strategy', rule ->> 'strategy',
                              'max_retries', (rule ->> 'max_retries')::integer, 'counted', true,
                              'meaning', rule ->> 'meaning');
END
$fn$;
COMMENT ON FUNCTION sms_retry_decide(jsonb, integer, integer) IS 'sms-retry: RetryPolicy.decide over sms_retry_policy() (migration 012)';

-- The record statement (Queries.outcomesRecord), one definition for the library and the report
-- functions: $1 now (NULL: now()), $2 history kept, then Outcome.recordColumns as arrays. PL/pgSQL,
-- not SQL: its plan is kept for the session (a SQL function's is made anew at every call: p99 2.9 ms
-- against 1 ms measured from Python), and generic from the first call (array parameters otherwise
-- get a custom plan each time: p50 0.41-0.56 ms against 0.29-0.30); the cast to bigint takes an
-- integer or a bigint id.
CREATE OR REPLACE FUNCTION sms_retry_write(timestamptz, integer, bigint[], text[], bool[], float8[], text[], integer[], text[],
                                           integer[], integer[], text[], text[], integer[], timestamptz[], text[], text[], text[],
                                           text[], text[], bool[], text[])
RETURNS TABLE (written_id bigint, written_retry_count integer, written_next_retry_epoch float8)
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT SET plan_cache_mode = force_generic_plan AS $write$
BEGIN
    RETURN QUERY WITH w AS (
UPDATE sms_usage_logs AS s
SET success = CASE WHEN o.kind IN ('sent', 'delivered') THEN true
                   WHEN o.kind IN ('release', 'progress') OR o.lease_until IS NOT NULL THEN s.success ELSE false END,
    final_status = CASE WHEN (CASE WHEN s.success AND o.lease_until IS NOT NULL AND o.kind IN ('retry', 'release', 'failed') THEN 'confirmed' ELSE o.kind END) = 'confirmed' THEN (CASE WHEN s.final_status = 'delivered' THEN 'delivered' ELSE 'sent' END)
                        ELSE coalesce(o.final_status, CASE o.kind WHEN 'sent' THEN 'sent' WHEN 'failed' THEN 'failed'
                        WHEN 'delivered' THEN 'delivered'
                        WHEN 'retry' THEN (CASE WHEN s.final_status = 'failed' THEN 'unknown' ELSE s.final_status END)
                        ELSE s.final_status END) END,
    delivery_confirmed_at = CASE WHEN o.kind = 'delivered'
                                 THEN coalesce(s.delivery_confirmed_at, coalesce($1::timestamptz, now()))
                                 ELSE s.delivery_confirmed_at END,
    twilio_message_sid = coalesce(o.sid, s.twilio_message_sid),
    retry_count = s.retry_count + o.counted::int,
    max_retries = coalesce(o.max_retries, s.max_retries),
    next_retry_at = CASE WHEN (CASE WHEN s.success AND o.lease_until IS NOT NULL AND o.kind IN ('retry', 'release', 'failed') THEN 'confirmed' ELSE o.kind END) IN ('retry', 'release')
                         THEN coalesce($1::timestamptz, now()) + make_interval(secs => o.delay)
                         WHEN o.kind = 'progress' THEN s.next_retry_at END,
    sms_retry = ((coalesce(s.sms_retry, '{}'::jsonb) - 'lease' - (CASE WHEN o.kind IN ('retry', 'sent', 'delivered') THEN 'reason' ELSE '' END)
          - (CASE WHEN o.uncertain IS NOT NULL OR (CASE WHEN s.success AND o.lease_until IS NOT NULL AND o.kind IN ('retry', 'release', 'failed') THEN 'confirmed' ELSE o.kind END) IN ('sent', 'failed', 'delivered', 'confirmed')
                  THEN 'uncertain' ELSE '' END))
|| jsonb_strip_nulls(jsonb_build_object(
       'error_code', o.error_code, 'error_message', o.error_message,
       'strategy', o.strategy,
       'reason', CASE WHEN (CASE WHEN s.success AND o.lease_until IS NOT NULL AND o.kind IN ('retry', 'release', 'failed') THEN 'confirmed' ELSE o.kind END) = 'confirmed' THEN 'router_confirmed' ELSE o.reason END, 'note', o.note,
       'updated_at', coalesce($1::timestamptz, now()),
       -- the message's Twilio status; merged while it is about the same SID
       'delivery', (CASE WHEN jsonb_typeof(coalesce(s.sms_retry, '{}'::jsonb) -> 'delivery') = 'object'
                          AND coalesce(s.sms_retry, '{}'::jsonb) -> 'delivery' ->> 'sid' = o.delivery::jsonb ->> 'sid'
                         THEN coalesce(s.sms_retry, '{}'::jsonb) -> 'delivery' ELSE '{}'::jsonb END) || o.delivery::jsonb,
       'uncertain', CASE WHEN o.uncertain <> '' AND (CASE WHEN s.success AND o.lease_until IS NOT NULL AND o.kind IN ('retry', 'release', 'failed') THEN 'confirmed' ELSE o.kind END) <> 'confirmed' THEN o.uncertain::jsonb END,
       -- resends Twilio accepted (what they cost), kept as a count for the views
       'accepted', CASE WHEN (o.counted OR o.amend) AND o.sid IS NOT NULL
                        THEN coalesce((coalesce(s.sms_retry, '{}'::jsonb) ->> 'accepted')::int, 0) + 1 END))
|| CASE WHEN o.outcome IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('history',
       jsonb_path_query_array(
           CASE WHEN o.amend AND (CASE WHEN jsonb_typeof(coalesce(s.sms_retry, '{}'::jsonb) -> 'history') = 'array' THEN coalesce(s.sms_retry, '{}'::jsonb) -> 'history' ELSE '[]'::jsonb END) @? '$[*] ? (@.uncertain == true)' THEN (
               SELECT jsonb_agg(CASE WHEN h.i = m.i
                                     THEN (h.e - 'uncertain') || jsonb_strip_nulls(jsonb_build_object(
                                         'outcome', o.outcome, 'code', o.error_code, 'sid', o.sid,
                                         'note', o.note, 'found_at', coalesce($1::timestamptz, now())))
                                     ELSE h.e END ORDER BY h.i)
               FROM jsonb_array_elements((CASE WHEN jsonb_typeof(coalesce(s.sms_retry, '{}'::jsonb) -> 'history') = 'array' THEN coalesce(s.sms_retry, '{}'::jsonb) -> 'history' ELSE '[]'::jsonb END)) WITH ORDINALITY AS h(e, i),
                    (SELECT max(x.i) AS i FROM jsonb_array_elements((CASE WHEN jsonb_typeof(coalesce(s.sms_retry, '{}'::jsonb) -> 'history') = 'array' THEN coalesce(s.sms_retry, '{}'::jsonb) -> 'history' ELSE '[]'::jsonb END)) WITH ORDINALITY AS x(e, i)
                     WHERE x.e @> '{"uncertain": true}') AS m)
           ELSE (CASE WHEN jsonb_typeof(coalesce(s.sms_retry, '{}'::jsonb) -> 'history') = 'array' THEN coalesce(s.sms_retry, '{}'::jsonb) -> 'history' ELSE '[]'::jsonb END) || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
               'at', coalesce($1::timestamptz, now()),
               'attempt', s.retry_count + o.counted::int,
               'outcome', o.outcome, 'code', o.error_code, 'error', o.error_message,
               'sid', o.sid, 'http_status', o.http_status, 'duration_ms', o.duration_ms,
               'note', o.note, 'from', o.sender, 'uncertain', CASE WHEN o.uncertain <> '' THEN true END)))
           END,
           '$[last - $keep + 1 to last]', jsonb_build_object('keep', $2::int)))
   END) || jsonb_build_object('rev', coalesce((s.sms_retry ->> 'rev')::bigint, 0) + 1)
FROM unnest($3::bigint[], $4::text[], $5::bool[], $6::float8[], $7::text[], $8::int[], $9::text[], $10::int[], $11::int[], $12::text[], $13::text[], $14::int[], $15::timestamptz[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::bool[], $22::text[])
     AS o(id, kind, counted, delay, sid, error_code, error_message, http_status, duration_ms, reason, strategy, max_retries, lease_until, outcome, note, final_status, delivery, uncertain, amend, sender)
WHERE s.id = o.id AND (o.lease_until IS NULL OR s.next_retry_at = o.lease_until)
RETURNING s.id, s.retry_count, extract(epoch FROM s.next_retry_at)::float8 AS next_retry_epoch
    ) SELECT w.id::bigint, w.retry_count::integer, w.next_retry_epoch FROM w;
END
$write$;
COMMENT ON FUNCTION sms_retry_write(timestamptz, integer, bigint[], text[], bool[], float8[], text[], integer[], text[], integer[], integer[], text[], text[], integer[], timestamptz[], text[], text[], text[], text[], text[], bool[], text[]) IS 'sms-retry: the record statement, Queries.outcomesRecord (migration 012)';

-- The router's row as the report functions read it, locked as Statement.rowLock locks it: the
-- report waits for a run's record of the row, never the other way round for long (one row).
-- `sent_epoch` is Queries.sentEpoch: when the router's send started, on this server's clock.

-- A send's failure: Twilio's `error_code`, or NULL for a send whose fate is unknown (a timeout, a
-- reset, a 5xx with no code). RetryStore.recordFailure's contract.
CREATE OR REPLACE FUNCTION sms_retry_report_failure(log_id bigint, error_code integer, error_message text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $fn$
DECLARE
    r record;
    d jsonb;
    made integer;
    doubt text;
    w record;
    retry boolean;
BEGIN
    IF log_id IS NULL THEN
        RAISE EXCEPTION 'sms_retry_report_failure: log_id is NULL' USING ERRCODE = '22004',
            HINT = 'pass the id of the sms_usage_logs row the send was logged as';
    END IF;
    IF error_code IS NOT NULL AND error_code <= 0 THEN
        RAISE EXCEPTION 'sms_retry_report_failure: error_code % is not a Twilio error code', error_code USING ERRCODE = '22023',
            HINT = 'pass Twilio''s error code (e.g. 30003), or NULL when the send timed out or got no code (its fate is unknown)';
    END IF;
    SELECT s.message_direction, s.success, s.retry_count,
           extract(epoch FROM now())::float8 - extract(epoch FROM sms_retry_router_time(now()) - s.created_at)::float8
           - greatest(coalesce(s.processing_time_ms, 0), 0) / 1000.0 AS sent_epoch
    INTO r FROM sms_usage_logs AS s WHERE s.id = log_id FOR UPDATE;
    IF NOT FOUND THEN RETURN jsonb_build_object('result', 'not_found', 'log_id', log_id); END IF;
    IF NOT coalesce(sms_retry_is_outbound(r.message_direction), false) THEN
        RETURN jsonb_build_object('result', 'not_outbound', 'log_id', log_id);
    END IF;
    IF r.success IS TRUE THEN RETURN jsonb_build_object('result', 'already_sent', 'log_id', log_id); END IF;
    made := coalesce(r.retry_count, 0);
    d := sms_retry_decide(sms_retry_policy(), error_code, made);
    retry := d ->> 'decision' = 'retry';
    -- RetryStore.routerDoubt: a send with no Twilio code may have created the message; Twilio is
    -- asked before the first resend, from 30 s before the router's send started.
    IF error_code IS NULL AND r.sent_epoch IS NOT NULL THEN
        doubt := jsonb_build_object('since', to_char(to_timestamp(round((r.sent_epoch - 30) * 1000) / 1000) AT TIME ZONE 'UTC',
                                                     'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                                    'counted', false, 'router', true)::text;
    END IF;
    SELECT * INTO w FROM sms_retry_write(NULL, 20, ARRAY[log_id], ARRAY[CASE WHEN retry THEN 'retry' ELSE 'failed' END], ARRAY[false],
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
COMMENT ON FUNCTION sms_retry_report_failure(bigint, integer, text) IS 'sms-retry: the router reports a failed send (error_code NULL: fate unknown); schedules a retry or closes the row (migration 012)';

-- A send Twilio accepted as `sid`. RetryStore.recordSent's contract.
CREATE OR REPLACE FUNCTION sms_retry_report_sent(log_id bigint, sid text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $fn$
DECLARE
    r record;
BEGIN
    IF log_id IS NULL THEN
        RAISE EXCEPTION 'sms_retry_report_sent: log_id is NULL' USING ERRCODE = '22004';
    END IF;
    IF sid IS NULL OR sid !~ '^[A-Za-z]{2}[0-9A-Za-z]+$' THEN
        RAISE EXCEPTION 'sms_retry_report_sent: % is not a Twilio message SID', coalesce(quote_literal(sid), 'NULL') USING ERRCODE = '22023',
            HINT = 'pass the sid of Twilio''s answer (SM…); for a failed send call sms_retry_report_failure';
    END IF;
    SELECT s.message_direction INTO r FROM sms_usage_logs AS s WHERE s.id = log_id FOR UPDATE;
    IF NOT FOUND THEN RETURN jsonb_build_object('result', 'not_found', 'log_id', log_id); END IF;
    IF NOT coalesce(sms_retry_is_outbound(r.message_direction), false) THEN
        RETURN jsonb_build_object('result', 'not_outbound', 'log_id', log_id);
    END IF;
    PERFORM sms_retry_write(NULL, 20, ARRAY[log_id], ARRAY['sent'], ARRAY[false], ARRAY[NULL::float8], ARRAY[sid],
        ARRAY[NULL::integer], ARRAY[NULL::text], ARRAY[NULL::integer], ARRAY[NULL::integer], ARRAY[NULL::text], ARRAY[NULL::text],
        ARRAY[NULL::integer], ARRAY[NULL::timestamptz], ARRAY['sent'], ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[NULL::text],
        ARRAY[NULL::text], ARRAY[false], ARRAY[NULL::text]);
    RETURN jsonb_build_object('result', 'sent', 'log_id', log_id, 'sid', sid);
END
$fn$;
COMMENT ON FUNCTION sms_retry_report_sent(bigint, text) IS 'sms-retry: the router reports a send Twilio accepted (migration 012)';

-- Closes a pending retry (RetryStore.cancel).
CREATE OR REPLACE FUNCTION sms_retry_cancel(log_id bigint) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $fn$
DECLARE
    r record;
BEGIN
    IF log_id IS NULL THEN RAISE EXCEPTION 'sms_retry_cancel: log_id is NULL' USING ERRCODE = '22004'; END IF;
    SELECT s.message_direction, s.success, s.next_retry_at IS NOT NULL AS pending,
           (s.next_retry_at > now() AND s.sms_retry ? 'lease') AS in_flight
    INTO r FROM sms_usage_logs AS s WHERE s.id = log_id FOR UPDATE;
    IF NOT FOUND THEN RETURN jsonb_build_object('result', 'not_found', 'log_id', log_id); END IF;
    IF NOT coalesce(sms_retry_is_outbound(r.message_direction), false) THEN
        RETURN jsonb_build_object('result', 'not_outbound', 'log_id', log_id);
    END IF;
    IF r.success IS TRUE THEN RETURN jsonb_build_object('result', 'already_sent', 'log_id', log_id); END IF;
    IF r.in_flight IS TRUE THEN RETURN jsonb_build_object('result', 'in_flight', 'log_id', log_id); END IF;
    IF NOT r.pending THEN RETURN jsonb_build_object('result', 'not_pending', 'log_id', log_id); END IF;
    PERFORM sms_retry_write(NULL, 20, ARRAY[log_id], ARRAY['failed'], ARRAY[false], ARRAY[NULL::float8], ARRAY[NULL::text],
        ARRAY[NULL::integer], ARRAY[NULL::text], ARRAY[NULL::integer], ARRAY[NULL::integer], ARRAY['canceled'], ARRAY[NULL::text],
        ARRAY[NULL::integer], ARRAY[NULL::timestamptz], ARRAY['canceled'], ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[NULL::text],
        ARRAY[NULL::text], ARRAY[false], ARRAY[NULL::text]);
    RETURN jsonb_build_object('result', 'closed', 'log_id', log_id, 'reason', 'canceled');
END
$fn$;
COMMENT ON FUNCTION sms_retry_cancel(bigint) IS 'sms-retry: closes the pending retry of a row, reason canceled (migration 012)';

-- Makes a row due now; a row closed as exhausted, expired or canceled is reopened with one more
-- attempt (RetryStore.retryNow).
CREATE OR REPLACE FUNCTION sms_retry_retry_now(log_id bigint) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $fn$
DECLARE
    r record;
    w record;
    made integer;
BEGIN
    IF log_id IS NULL THEN RAISE EXCEPTION 'sms_retry_retry_now: log_id is NULL' USING ERRCODE = '22004'; END IF;
    SELECT s.message_direction, s.success, s.retry_count, s.max_retries, s.sms_retry ->> 'reason' AS reason,
           (s.next_retry_at > now() AND s.sms_retry ? 'lease') AS in_flight
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
    SELECT * INTO w FROM sms_retry_write(NULL, 20, ARRAY[log_id], ARRAY['retry'], ARRAY[false], ARRAY[0::float8], ARRAY[NULL::text],
        ARRAY[NULL::integer], ARRAY[NULL::text], ARRAY[NULL::integer], ARRAY[NULL::integer], ARRAY[NULL::text], ARRAY[NULL::text],
        ARRAY[greatest(coalesce(r.max_retries, 0), made + 1)], ARRAY[NULL::timestamptz], ARRAY['retry_now'], ARRAY[NULL::text],
        ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[false], ARRAY[NULL::text]);
    RETURN jsonb_build_object('result', 'scheduled', 'log_id', log_id, 'attempt', made + 1,
                              'next_retry_at', to_timestamp(w.written_next_retry_epoch));
END
$fn$;
COMMENT ON FUNCTION sms_retry_retry_now(bigint) IS 'sms-retry: makes a row due now, reopening an exhausted, expired or canceled one (migration 012)';

-- A row's retry state, read only: `result` is not_found, not_outbound, sent (success is true),
-- in_flight (a run holds it), scheduled (a retry is pending), closed (with `reason`) or none (no
-- retry state: the router reported nothing, or only its send).
CREATE OR REPLACE FUNCTION sms_retry_state(log_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER AS $fn$
DECLARE
    r record;
BEGIN
    IF log_id IS NULL THEN RAISE EXCEPTION 'sms_retry_state: log_id is NULL' USING ERRCODE = '22004'; END IF;
    SELECT s.message_direction, s.success, s.retry_count, s.max_retries, s.next_retry_at, s.final_status, s.twilio_message_sid,
           s.sms_retry ->> 'reason' AS reason, s.sms_retry ? 'uncertain' AS uncertain,
           (s.next_retry_at > now() AND s.sms_retry ? 'lease') AS in_flight
    INTO r FROM sms_usage_logs AS s WHERE s.id = log_id;
    IF NOT FOUND THEN RETURN jsonb_build_object('result', 'not_found', 'log_id', log_id); END IF;
    IF NOT coalesce(sms_retry_is_outbound(r.message_direction), false) THEN
        RETURN jsonb_build_object('result', 'not_outbound', 'log_id', log_id);
    END IF;
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'result', CASE WHEN r.success IS TRUE THEN 'sent' WHEN r.in_flight THEN 'in_flight'
                       WHEN r.next_retry_at IS NOT NULL THEN 'scheduled' WHEN r.reason IS NOT NULL THEN 'closed' ELSE 'none' END,
        'log_id', log_id, 'retry_count', r.retry_count, 'max_retries', r.max_retries, 'next_retry_at', r.next_retry_at,
        'final_status', r.final_status, 'sid', r.twilio_message_sid,
        'reason', CASE WHEN r.success IS NOT TRUE AND r.next_retry_at IS NULL THEN r.reason END,
        'uncertain', CASE WHEN r.uncertain THEN true END));
END
$fn$;
COMMENT ON FUNCTION sms_retry_state(bigint) IS 'sms-retry: a row''s retry state as jsonb, read only (migration 012)';

-- A delivery status for message `sid` (a status callback's MessageSid, MessageStatus, ErrorCode):
-- RetryStore.recordDeliveryStatus's contract. Later statuses win; the same or an older one leaves
-- the row unchanged, so statuses may come in any order and more than once.
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
        d := sms_retry_decide(sms_retry_policy(), error_code, made);
        retry := d ->> 'decision' = 'retry';
        kind := CASE WHEN retry THEN 'retry' ELSE 'failed' END;
        reason := CASE WHEN NOT retry THEN d ->> 'reason' END;
        label := word;
        final := word;
        message := format('Twilio: %s%s (%s)', word, coalesce(', error ' || error_code, ''), d ->> 'meaning');
    END IF;
    SELECT * INTO w FROM sms_retry_write(NULL, 20, ARRAY[r.id::bigint], ARRAY[kind], ARRAY[false],
        ARRAY[CASE WHEN retry THEN (d ->> 'delay')::float8 END], ARRAY[sid], ARRAY[CASE WHEN d IS NOT NULL THEN error_code END],
        ARRAY[message], ARRAY[NULL::integer], ARRAY[NULL::integer], ARRAY[reason], ARRAY[CASE WHEN retry THEN d ->> 'strategy' END],
        ARRAY[CASE WHEN retry AND (d ->> 'counted')::boolean THEN (d ->> 'max_retries')::integer END], ARRAY[NULL::timestamptz],
        ARRAY[label], ARRAY[NULL::text], ARRAY[final],
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
COMMENT ON FUNCTION sms_retry_report_status(text, text, integer) IS 'sms-retry: a Twilio delivery status for a message SID, as serve-callbacks applies it (migration 012)';

-- The report functions run as their owner with the table's schema first, then pg_catalog, then
-- pg_temp last (so no temporary object can stand in for one of sms-retry's); nobody may call
-- them or the record function until granted (migrate --grant-router ROLE).
DO $do$
DECLARE
    home text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.oid = 'sms_usage_logs'::regclass);
    f regprocedure;
BEGIN
    FOREACH f IN ARRAY ARRAY['sms_retry_report_failure(bigint, integer, text)', 'sms_retry_report_sent(bigint, text)',
                             'sms_retry_report_status(text, text, integer)', 'sms_retry_cancel(bigint)', 'sms_retry_retry_now(bigint)', 'sms_retry_state(bigint)']::regprocedure[] LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_catalog, pg_temp', f, home);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC',
                   'sms_retry_write(timestamptz, integer, bigint[], text[], bool[], float8[], text[], integer[], text[], integer[], integer[], text[], text[], integer[], timestamptz[], text[], text[], text[], text[], text[], bool[], text[])'::regprocedure);
END
$do$;
COMMIT;
