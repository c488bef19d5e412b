-- sms-retry 011 up: analytics read by created_at alone, right on a table whose ids do not follow
-- created_at (a backfill, an import) and reading only the period's partitions of a partitioned
-- one; three indexes in place of four, so the router's statements pay for no more than before.
-- Run with psql -f or sms-retry migrate, never inside BEGIN/COMMIT (CONCURRENTLY).
-- sms-retry:applied-when: (SELECT count(*) FROM pg_index WHERE indisvalid AND indexrelid IN (to_regclass('sms_usage_logs_retry_work_idx'), to_regclass('sms_usage_logs_retry_failed_idx'), to_regclass('sms_usage_logs_created_at_brin_idx'))) = 3 AND to_regclass('sms_usage_logs_retry_due_idx') IS NULL AND to_regclass('sms_usage_logs_retry_rows_idx') IS NULL AND to_regclass('sms_usage_logs_retry_adopt_v3_idx') IS NULL AND to_regprocedure('sms_retry_first_id_since(timestamp without time zone)') IS NULL AND NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'sms_retry_unconfirmed' AND prosrc LIKE '%LIMIT 5000%')
SET lock_timeout = '2s';
SET statement_timeout = '1h';

-- Every index of a table costs each of the router's statements on it, a HOT UPDATE included, a
-- fixed price (PostgreSQL opens it, copies its predicate and, for a simple-protocol statement,
-- plans with it: about 9k instructions, callgrind) whether or not the row goes into it
-- (docs/ARCHITECTURE.md, "What the router pays"). So the new access paths come with as many
-- indexes going as coming: 003's due index and 009's adoption index become one, 004's
-- failed-rows index gains the columns the daily view counts, and the period's rows get a BRIN
-- index, a few pages that the router's INSERT at the end of the table hardly touches.

-- The rows a run takes up: due for a resend (next_retry_at set), and the failed outbound rows
-- nobody has classified yet (adoption; NULL next_retry_at sorts after every due row). Both
-- queries (Sources/SMSRetry/Store/Queries.swift: the claim and dueList, unadoptedPredicate)
-- name one arm of the OR word for word, which lets the planner use it. Change one, change both.
SELECT sms_retry_index_statements('sms_usage_logs', 'sms_usage_logs_retry_work_idx',
    $def$(next_retry_at, created_at) WHERE success = false AND (next_retry_at IS NOT NULL
      OR (retry_count = 0 AND sms_retry IS NULL AND sms_retry_is_outbound(message_direction)))$def$)
\gexec

-- The rows that ever failed (a few percent of the table), as 004's, with what the daily view
-- counts (day, direction, resends, recovered) in the index itself: 30 days of failures are read
-- without visiting the table (an index-only scan), and retry_count as a key column lets the view
-- visit only the resent rows for their cost and close reason.
SELECT sms_retry_index_statements('sms_usage_logs', 'sms_usage_logs_retry_failed_idx',
    $def$(created_at, retry_count) INCLUDE (message_direction, success) WHERE success = false OR retry_count > 0$def$)
\gexec

-- All of the period's rows (the overview's outbound_messages, health's unconfirmed count), by
-- created_at whatever the ids: a BRIN index keeps the least and greatest created_at of every 32
-- pages (about 200 kB for 10M rows). The router's INSERT at the end of the table usually finds
-- its range not yet summarized and writes nothing; autosummarize summarizes a range once full.
-- Rows inserted out of order widen their ranges: the views stay right and read more.
SELECT sms_retry_index_statements('sms_usage_logs', 'sms_usage_logs_created_at_brin_idx',
    $def$USING brin (created_at) WITH (pages_per_range = 32, autosummarize = on)$def$)
\gexec

BEGIN;

-- Every period has an end as well as a start: a day past now on the router's clock (far beyond
-- any clock skew between the router and the server). With no end, a partition holding the
-- future (a DEFAULT partition, the next month's) could not be left out of a read.

-- Rows created since `since`, counted per message_direction as written (a handful of values, so
-- the direction rule then runs once per spelling). By created_at alone: the BRIN index finds the
-- pages, and on a table partitioned by created_at only the period's partitions are read. JIT
-- off: a period of a few hundred thousand rows reaches its cost threshold, and compiling costs
-- more than the count.
CREATE OR REPLACE FUNCTION sms_retry_direction_counts(since timestamp)
RETURNS TABLE (message_direction text, messages bigint)
LANGUAGE sql STABLE PARALLEL SAFE SET jit = off SET search_path FROM CURRENT AS $fn$
    SELECT s.message_direction::text, count(*)
    FROM sms_usage_logs s
    WHERE s.created_at >= since AND s.created_at < sms_retry_router_time(now()) + interval '1 day'
    GROUP BY 1
$fn$;
COMMENT ON FUNCTION sms_retry_direction_counts(timestamp) IS 'Rows created since the given time, per message_direction as written.';

-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS sms_retry_first_id_since(timestamp);

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
      AND s.created_at >= since AND s.created_at < sms_retry_router_time(now()) + interval '1 day'
$$;
COMMENT ON FUNCTION sms_retry_failed_counts(timestamp) IS 'Failed outbound messages created since the given time: how many, scheduled, recovered, exhausted, pending, not delivered, average resends of the recovered.';


-- Accepted outbound messages (success, a SID) with no final status (final_status unknown or sent),
-- created between `younger_than` and `older_than` ago (router's clock), through the BRIN index.
CREATE OR REPLACE FUNCTION sms_retry_unconfirmed(older_than interval, younger_than interval) RETURNS bigint
LANGUAGE plpgsql STABLE PARALLEL SAFE SET jit = off SET search_path FROM CURRENT AS $fn$
DECLARE
    -- Computed once: the rows' tests then compare with constants (a BRIN scan rechecks every row).
    now_at timestamp := sms_retry_router_time(now());
    key text[] := string_to_array(nullif(current_setting('sms_retry.sid_metadata_key', true), ''), '.');
    total bigint;
BEGIN
    SELECT count(*) INTO total
    FROM sms_usage_logs
    WHERE created_at >= now_at - younger_than AND created_at < now_at - older_than
      AND success AND final_status IN ('unknown', 'sent')
      AND (twilio_message_sid IS NOT NULL OR (key IS NOT NULL AND sms_metadata #>> key IS NOT NULL))
      AND sms_retry_is_outbound(message_direction);
    RETURN total;
END
$fn$;
COMMENT ON FUNCTION sms_retry_unconfirmed(interval, interval) IS 'sms-retry: accepted outbound messages with no final status created between the two ages ago (migration 010, by created_at since 011)';

-- The period views compare created_at with the start of the period written out, not read from a
-- sub-select: the planner evaluates these stable functions when it estimates, so it knows the
-- period holds a day of failures, not a third of all of them, and reads them in one plain index
-- scan (8 ms at 10M rows) instead of starting parallel workers for it (76-120 ms). The start is
-- computed once, as the scan's index condition.
-- squawk-ignore ban-drop-view
DROP VIEW IF EXISTS sms_retry_by_attempt, sms_retry_by_error_code;
CREATE VIEW sms_retry_by_attempt AS
SELECT (h.entry ->> 'attempt')::int AS attempt,
       count(*) AS attempts,
       count(*) FILTER (WHERE h.entry ->> 'outcome' = 'sent') AS recovered,
       round(avg((h.entry ->> 'duration_ms')::numeric)) AS avg_twilio_call_ms
FROM sms_usage_logs s
CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(s.sms_retry -> 'history') = 'array'
                                             THEN s.sms_retry -> 'history' ELSE '[]'::jsonb END) AS h(entry)
WHERE (s.success = false OR s.retry_count > 0)
  AND s.created_at >= sms_retry_router_time(now()) - sms_retry_period()
  AND s.created_at < sms_retry_router_time(now()) + interval '1 day'
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
  AND s.created_at >= sms_retry_router_time(now()) - sms_retry_period()
  AND s.created_at < sms_retry_router_time(now()) + interval '1 day'
GROUP BY 1
ORDER BY messages DESC, error_code;
COMMENT ON VIEW sms_retry_by_error_code IS
    'Failed outbound messages over the last sms_retry.period (default 24 hours) by their latest Twilio error code. One row per code.';
COMMENT ON COLUMN sms_retry_by_error_code.error_code IS 'The latest Twilio error code; transport = HTTP 5xx or no answer; unreported = a failed row the router never reported.';
COMMENT ON COLUMN sms_retry_by_error_code.messages IS 'Failed outbound messages whose latest code this is.';
COMMENT ON COLUMN sms_retry_by_error_code.retryable IS 'Whether sms-retry retries this code (false when any of the messages was closed as not retryable).';
COMMENT ON COLUMN sms_retry_by_error_code.recovered_share IS 'Share of these messages that a resend recovered.';
COMMENT ON COLUMN sms_retry_by_error_code.last_seen IS 'When the code was last recorded.';

-- The daily view in two passes over the failed-rows index: every failure of the days (counted
-- in the index alone), then the resent ones (their rows read for the close reason and the
-- segments of the body). exhausted counts resent messages, as every other column but failures.
-- Both passes are MATERIALIZED, so the direction rule runs once per day and spelling, not
-- pushed down into the scan for every row.
-- squawk-ignore ban-drop-view
DROP VIEW IF EXISTS sms_retry_daily;
CREATE VIEW sms_retry_daily AS
WITH settings AS MATERIALIZED (
    SELECT x.days, x.price, sms_retry_router_time(now())::date AS today,
           sms_retry_router_time(now())::date - (x.days - 1) AS first_day
    FROM (SELECT coalesce(nullif(current_setting('sms_retry.days', true), ''), '30')::int AS days,
                 coalesce(nullif(current_setting('sms_retry.price_per_segment', true), ''), '0.0079')::numeric AS price) x
), failed AS MATERIALIZED (
    SELECT s.created_at::date AS day, s.message_direction,
           count(*) AS failures,
           sum(s.retry_count) AS retries_sent,
           count(*) FILTER (WHERE s.success AND s.retry_count > 0) AS recovered
    FROM sms_usage_logs s
    WHERE (s.success = false OR s.retry_count > 0) AND s.created_at >= (SELECT first_day FROM settings)
      AND s.created_at < (SELECT today + 2 FROM settings)
    GROUP BY 1, 2
), resent AS MATERIALIZED (
    -- Each row reduced to its day, spelling, close and segments before it is grouped (OFFSET 0
    -- keeps the subquery whole): a sort carries those, not the body and sms_retry.
    SELECT r.day, r.message_direction, count(*) FILTER (WHERE r.exhausted) AS exhausted, sum(r.segments) AS segments
    FROM (SELECT s.created_at::date AS day, s.message_direction,
                 (NOT s.success AND s.final_status IN ('failed', 'undelivered') AND s.sms_retry ->> 'reason' = 'exhausted') AS exhausted,
                 sms_retry_segments(s.message_content) * (s.sms_retry ->> 'accepted')::int AS segments
          FROM sms_usage_logs s
          WHERE (s.success = false OR s.retry_count > 0) AND s.retry_count > 0 AND s.created_at >= (SELECT first_day FROM settings)
            AND s.created_at < (SELECT today + 2 FROM settings)
          OFFSET 0) r
    GROUP BY 1, 2
), cohorts AS (
    SELECT f.day, sum(f.failures) AS failures, sum(f.retries_sent) AS retries_sent, sum(f.recovered) AS recovered,
           sum(r.exhausted) AS exhausted, sum(r.segments) AS segments
    FROM failed f LEFT JOIN resent r ON r.day = f.day AND r.message_direction IS NOT DISTINCT FROM f.message_direction
    WHERE sms_retry_direction(f.message_direction) = 'outbound'
    GROUP BY f.day
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
COMMENT ON COLUMN sms_retry_daily.exhausted IS 'Of them, messages resent that used every attempt without success.';
COMMENT ON COLUMN sms_retry_daily.segments_resent IS 'SMS segments of the resends Twilio accepted (GSM-7 160/153 characters, else UCS-2 70/67).';
COMMENT ON COLUMN sms_retry_daily.estimated_cost IS 'segments_resent at sms_retry.price_per_segment (default 0.0079 USD per segment).';
COMMIT;

-- What the new indexes replace, now that no statement reads it (a partitioned one waits at most
-- lock_timeout). They are sms-retry's own (003, 004, 009).
SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_retry_due_idx')
\gexec
SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_retry_adopt_v3_idx')
\gexec
SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_retry_rows_idx')
\gexec
