-- sms-retry 011 down: 003's due index, 004's failed-rows index and 009's adoption index again,
-- and the daily view and the period functions as 005 and 010 made them (by id).
-- A down migration removes what its up added: the indexes, functions and views are sms-retry's own.
-- Run with psql -f or sms-retry migrate, never inside BEGIN/COMMIT (CONCURRENTLY).
-- squawk-ignore-file ban-drop-view, ban-drop-function
SET lock_timeout = '2s';
SET statement_timeout = '1h';

SELECT sms_retry_index_statements('sms_usage_logs', 'sms_usage_logs_retry_due_idx',
                                  '(next_retry_at) WHERE success = false AND next_retry_at IS NOT NULL')
\gexec
SELECT sms_retry_index_statements('sms_usage_logs', 'sms_usage_logs_retry_rows_idx',
    $def$(created_at) WHERE success = false OR retry_count > 0$def$)
\gexec
SELECT sms_retry_index_statements('sms_usage_logs', 'sms_usage_logs_retry_adopt_v3_idx',
    $def$(created_at) WHERE success = false AND retry_count = 0 AND next_retry_at IS NULL AND sms_retry IS NULL
      AND sms_retry_is_outbound(message_direction)$def$)
\gexec

BEGIN;
-- The first id whose row was created at or after `since`, by binary search over the primary key
-- (about 24 index probes for 10M rows). id is a SERIAL and the router stamps created_at when it
-- inserts, so ids rise with created_at; a row written out of order near the boundary can only
-- shift the boundary by that row. Lets the overview count a window's rows without an index on
-- created_at.
CREATE OR REPLACE FUNCTION sms_retry_first_id_since(since timestamp) RETURNS bigint
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path FROM CURRENT AS $$
DECLARE
    lo bigint;
    hi bigint;
    mid bigint;
    probe_id bigint;
    probe_at timestamp;
BEGIN
    SELECT min(id), max(id) INTO lo, hi FROM sms_usage_logs;
    IF lo IS NULL THEN
        RETURN NULL;
    END IF;
    hi := hi + 1;                          -- "none yet": one past the newest row
    WHILE lo < hi LOOP
        mid := lo + (hi - lo) / 2;
        SELECT id, created_at INTO probe_id, probe_at FROM sms_usage_logs WHERE id >= mid ORDER BY id LIMIT 1;
        IF probe_id IS NULL THEN
            hi := mid;
        ELSIF probe_at IS NULL OR probe_at < since THEN
            lo := probe_id + 1;
        ELSE
            hi := mid;
        END IF;
    END LOOP;
    RETURN lo;
END
$$;
COMMENT ON FUNCTION sms_retry_first_id_since(timestamp) IS 'First sms_usage_logs id created at or after the given time (binary search over the primary key).';

-- Rows created since `since`, counted per message_direction as written (a handful of values, so
-- the direction rule then runs once per spelling, not once per row). Reads the rows from the
-- first id of the period (sms_retry_first_id_since) on. A function so that the planner knows
-- that first id when it plans the scan, and with JIT off: a window of a few hundred thousand
-- rows reaches the JIT cost threshold, and compiling cost more than the count (measured at 10M
-- rows: 113 ms this way, 200-370 ms inline).
CREATE OR REPLACE FUNCTION sms_retry_direction_counts(since timestamp)
RETURNS TABLE (message_direction text, messages bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET jit = off SET search_path FROM CURRENT AS $$
DECLARE
    first_id bigint := sms_retry_first_id_since(since);
BEGIN
    RETURN QUERY
        SELECT s.message_direction::text, count(*)
        FROM sms_usage_logs s
        WHERE s.id >= first_id AND s.created_at >= since
        GROUP BY 1;
END
$$;
COMMENT ON FUNCTION sms_retry_direction_counts(timestamp) IS 'Rows created since the given time, per message_direction as written.';

CREATE OR REPLACE FUNCTION sms_retry_unconfirmed(older_than interval, younger_than interval) RETURNS bigint
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path FROM CURRENT AS $fn$
DECLARE
    below bigint;
    low bigint;
    scanned bigint;
    in_window bigint;
    waiting bigint;
    quiet int := 0;
    total bigint := 0;
    key text[] := string_to_array(nullif(current_setting('sms_retry.sid_metadata_key', true), ''), '.');
BEGIN
    LOOP
        SELECT min(id), count(*),
               count(*) FILTER (WHERE created_at >= sms_retry_router_time(now()) - younger_than),
               count(*) FILTER (WHERE success AND final_status IN ('unknown', 'sent')
                                  AND created_at >= sms_retry_router_time(now()) - younger_than
                                  AND created_at < sms_retry_router_time(now()) - older_than
                                  AND (twilio_message_sid IS NOT NULL OR (key IS NOT NULL AND sms_metadata #>> key IS NOT NULL))
                                  AND sms_retry_is_outbound(message_direction))
        INTO low, scanned, in_window, waiting
        FROM (SELECT id, created_at, success, final_status, twilio_message_sid, sms_metadata, message_direction
              FROM sms_usage_logs WHERE id < coalesce(below, 9223372036854775807) ORDER BY id DESC LIMIT 5000) chunk;
        total := total + waiting;
        quiet := CASE WHEN in_window > 0 THEN 0 ELSE quiet + 1 END;
        EXIT WHEN scanned < 5000 OR low IS NULL OR quiet >= 3;
        below := low;
    END LOOP;
    RETURN total;
END
$fn$;
COMMENT ON FUNCTION sms_retry_unconfirmed(interval, interval) IS 'sms-retry: accepted outbound messages with no final status created between the two ages ago (migration 010)';

-- The failed outbound messages created since `since`, counted once for the overview and health
-- alike (health needs no count of all the period's messages, the overview's costly part).
CREATE OR REPLACE FUNCTION sms_retry_failed_counts(since timestamp)
RETURNS TABLE (failed_messages bigint, scheduled bigint, recovered bigint, exhausted bigint, pending bigint,
               not_delivered bigint, avg_attempts numeric)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path FROM CURRENT AS $$
    SELECT count(*),
           count(*) FILTER (WHERE s.retry_count > 0 OR s.next_retry_at IS NOT NULL OR s.sms_retry ? 'strategy'),
           count(*) FILTER (WHERE s.success AND s.retry_count > 0),
           count(*) FILTER (WHERE s.sms_retry ->> 'reason' = 'exhausted'),
           count(*) FILTER (WHERE s.next_retry_at IS NOT NULL),
           count(*) FILTER (WHERE NOT s.success),
           avg(s.retry_count) FILTER (WHERE s.success AND s.retry_count > 0)
    FROM sms_usage_logs s
    WHERE (s.success = false OR s.retry_count > 0)
      AND sms_retry_direction(s.message_direction) = 'outbound'
      AND s.created_at >= since
$$;
COMMENT ON FUNCTION sms_retry_failed_counts(timestamp) IS 'Failed outbound messages created since the given time: how many, scheduled, recovered, exhausted, pending, not delivered, average resends of the recovered.';

DROP VIEW IF EXISTS sms_retry_daily, sms_retry_by_attempt, sms_retry_by_error_code;
CREATE VIEW sms_retry_by_attempt AS
WITH settings AS MATERIALIZED (
    SELECT sms_retry_router_time(now()) - sms_retry_period() AS since
)
SELECT (h.entry ->> 'attempt')::int AS attempt,
       count(*) AS attempts,
       count(*) FILTER (WHERE h.entry ->> 'outcome' = 'sent') AS recovered,
       round(avg((h.entry ->> 'duration_ms')::numeric)) AS avg_twilio_call_ms
FROM sms_usage_logs s
CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(s.sms_retry -> 'history') = 'array'
                                             THEN s.sms_retry -> 'history' ELSE '[]'::jsonb END) AS h(entry)
WHERE (s.success = false OR s.retry_count > 0)
  AND s.created_at >= (SELECT since FROM settings)
  AND h.entry ->> 'outcome' IN ('sent', 'rejected', 'http_error', 'transport_error')
GROUP BY 1
ORDER BY 1;
COMMENT ON VIEW sms_retry_by_attempt IS
    'Resends by attempt number over the last sms_retry.period (default 24 hours). One row per attempt number.';
COMMENT ON COLUMN sms_retry_by_attempt.attempt IS 'Attempt number: 1 = the first resend.';
COMMENT ON COLUMN sms_retry_by_attempt.attempts IS 'Resends made with this number (sent to Twilio and answered, refused, or lost in transport).';
COMMENT ON COLUMN sms_retry_by_attempt.recovered IS 'Of them, the resends Twilio accepted.';
COMMENT ON COLUMN sms_retry_by_attempt.avg_twilio_call_ms IS 'Average time of the Twilio API call in ms, measured by sms-retry (not the router''s processing_time_ms).';

CREATE VIEW sms_retry_by_error_code AS
WITH settings AS MATERIALIZED (
    SELECT sms_retry_router_time(now()) - sms_retry_period() AS since
)
SELECT coalesce(s.sms_retry ->> 'error_code',
                CASE WHEN s.sms_retry IS NOT NULL THEN 'transport' ELSE 'unreported' END) AS error_code,
       count(*) AS messages,
       bool_and(coalesce(s.sms_retry ->> 'reason', '') <> 'not_retryable'
                AND s.sms_retry IS NOT NULL) AS retryable,
       round(avg(CASE WHEN s.success THEN 1 ELSE 0 END), 4) AS recovered_share,
       max(coalesce((s.sms_retry ->> 'updated_at')::timestamptz, s.created_at::timestamptz)) AS last_seen
FROM sms_usage_logs s
WHERE (s.success = false OR s.retry_count > 0)
  AND sms_retry_direction(s.message_direction) = 'outbound'
  AND s.created_at >= (SELECT since FROM settings)
GROUP BY 1
ORDER BY messages DESC, error_code;
COMMENT ON VIEW sms_retry_by_error_code IS
    'Failed outbound messages over the last sms_retry.period (default 24 hours) by their latest Twilio error code. One row per code.';
COMMENT ON COLUMN sms_retry_by_error_code.error_code IS 'The latest Twilio error code; transport = HTTP 5xx or no answer; unreported = a failed row the router never reported.';
COMMENT ON COLUMN sms_retry_by_error_code.messages IS 'Failed outbound messages whose latest code this is.';
COMMENT ON COLUMN sms_retry_by_error_code.retryable IS 'Whether sms-retry retries this code (false when any of the messages was closed as not retryable).';
COMMENT ON COLUMN sms_retry_by_error_code.recovered_share IS 'Share of these messages that a resend recovered.';
COMMENT ON COLUMN sms_retry_by_error_code.last_seen IS 'When the code was last recorded.';

CREATE VIEW sms_retry_daily AS
WITH settings AS MATERIALIZED (
    SELECT x.days, x.price, sms_retry_router_time(now())::date AS today,
           sms_retry_router_time(now())::date - (x.days - 1) AS first_day
    FROM (SELECT coalesce(nullif(current_setting('sms_retry.days', true), ''), '30')::int AS days,
                 coalesce(nullif(current_setting('sms_retry.price_per_segment', true), ''), '0.0079')::numeric AS price) x
), spellings AS (
    -- One pass over the failed rows of the period, by day and message_direction as written; no
    -- history is unpacked (retry.accepted counts the resends Twilio accepted), and only closed
    -- rows are asked for their close reason.
    SELECT s.created_at::date AS day, s.message_direction,
           count(*) AS failures,
           sum(s.retry_count) AS retries_sent,
           count(*) FILTER (WHERE s.success AND s.retry_count > 0) AS recovered,
           count(*) FILTER (WHERE NOT s.success AND s.final_status IN ('failed', 'undelivered')
                            AND s.sms_retry ->> 'reason' = 'exhausted') AS exhausted,
           sum(sms_retry_segments(s.message_content) * (s.sms_retry ->> 'accepted')::int)
               FILTER (WHERE s.retry_count > 0) AS segments
    FROM sms_usage_logs s
    WHERE (s.success = false OR s.retry_count > 0) AND s.created_at >= (SELECT first_day FROM settings)
    GROUP BY 1, 2
), cohorts AS (
    SELECT day, sum(failures) AS failures, sum(retries_sent) AS retries_sent, sum(recovered) AS recovered,
           sum(exhausted) AS exhausted, sum(segments) AS segments
    FROM spellings
    WHERE sms_retry_direction(message_direction) = 'outbound'
    GROUP BY day
)
SELECT d.day,
       coalesce(c.failures, 0)::bigint AS failures,
       coalesce(c.retries_sent, 0)::bigint AS retries_sent,
       coalesce(c.recovered, 0)::bigint AS recovered,
       coalesce(c.exhausted, 0)::bigint AS exhausted,
       coalesce(c.segments, 0)::bigint AS segments_resent,
       round(coalesce(c.segments, 0) * settings.price, 4) AS estimated_cost
FROM settings
CROSS JOIN LATERAL generate_series(settings.first_day, settings.today, interval '1 day') AS g(day_start)
CROSS JOIN LATERAL (SELECT g.day_start::date AS day) d
LEFT JOIN cohorts c ON c.day = d.day
ORDER BY d.day DESC;
COMMENT ON VIEW sms_retry_daily IS
    'Per day for the last sms_retry.days days (default 30), the outbound messages created that day that failed, and what their resends did and cost. One row per day, newest first.';
COMMENT ON COLUMN sms_retry_daily.day IS 'The day the messages were created (router''s clock).';
COMMENT ON COLUMN sms_retry_daily.failures IS 'Outbound messages of the day that failed at least once.';
COMMENT ON COLUMN sms_retry_daily.retries_sent IS 'Resends made for them.';
COMMENT ON COLUMN sms_retry_daily.recovered IS 'Of them, messages a resend delivered to Twilio.';
COMMENT ON COLUMN sms_retry_daily.exhausted IS 'Of them, messages that used every attempt without success.';
COMMENT ON COLUMN sms_retry_daily.segments_resent IS 'SMS segments of the resends Twilio accepted (GSM-7 160/153 characters, else UCS-2 70/67).';
COMMENT ON COLUMN sms_retry_daily.estimated_cost IS 'segments_resent at sms_retry.price_per_segment (default 0.0079 USD per segment).';
COMMIT;

SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_retry_work_idx')
\gexec
SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_retry_failed_idx')
\gexec
SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_created_at_brin_idx')
\gexec
