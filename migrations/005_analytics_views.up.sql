-- sms-retry 005 up: analytics as plain SQL views over sms_usage_logs (no tables).
-- sms-retry:applied-when: (SELECT count(*) FROM pg_views WHERE viewname IN ('sms_retry_overview', 'sms_retry_by_attempt', 'sms_retry_by_error_code', 'sms_retry_queue', 'sms_retry_daily', 'sms_retry_health') AND schemaname = ANY (current_schemas(false))) = 6 AND to_regprocedure('sms_retry_segments(text)') IS NOT NULL AND (to_regprocedure('sms_retry_first_id_since(timestamp without time zone)') IS NOT NULL OR to_regclass('sms_usage_logs_created_at_brin_idx') IS NOT NULL) AND to_regprocedure('sms_retry_direction(text)') IS NOT NULL AND to_regprocedure('sms_retry_router_time(timestamp with time zone)') IS NOT NULL AND to_regprocedure('sms_retry_direction_counts(timestamp without time zone)') IS NOT NULL AND to_regprocedure('sms_retry_failed_counts(timestamp without time zone)') IS NOT NULL AND to_regprocedure('sms_retry_period()') IS NOT NULL AND EXISTS (SELECT 1 FROM pg_proc WHERE oid = to_regprocedure('sms_retry_failed_counts(timestamp without time zone)') AND array_to_string(proconfig, ',') LIKE '%search_path=%') AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('sms_retry_overview') AND attname = 'period') AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('sms_retry_by_attempt') AND attname = 'avg_twilio_call_ms') AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('sms_retry_queue') AND attname = 'held_quiet_hours') AND NOT EXISTS (SELECT 1 FROM pg_views WHERE schemaname = ANY (current_schemas(false)) AND viewname LIKE 'sms\_retry\_%' AND definition LIKE '%sms_metadata%') AND NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'sms_retry_failed_counts' AND prosrc LIKE '%sms_metadata%')
--
-- Settings (custom parameters: SET in a session, or ALTER DATABASE/ROLE ... SET for everyone):
--   sms_retry.period                    '24 hours'  period of overview, by_attempt, by_error_code, health
--                                                   (sms_retry.window, its name before 1.0, is still read)
--   sms_retry.days                      30          days shown by sms_retry_daily
--   sms_retry.created_at_time_zone      (TimeZone)  the zone the router writes created_at in (e.g. 'UTC')
--   sms_retry.price_per_segment         0.0079      estimated price of one SMS segment (USD)
--   sms_retry.health_warn_success_rate  0.80        retry success rate below this: warning
--   sms_retry.health_crit_success_rate  0.60        ... below this: critical
--   sms_retry.health_min_finished       10          fewer finished retries than this: rate not judged
--   sms_retry.health_warn_backlog       100         rows due now above this: warning
--   sms_retry.health_crit_backlog       1000        ... above this: critical
--   sms_retry.health_warn_delay         5 minutes   oldest due row waiting longer: warning
--   sms_retry.health_crit_delay         30 minutes  ... longer: critical
SET lock_timeout = '2s';
SET statement_timeout = '30s';

-- The one direction rule (Sources/SMSRetry/Store/Direction.swift is its twin): case and
-- surrounding white space ignored; 'outbound' for outbound and Twilio's outbound-api,
-- outbound-reply and outbound-call; 'inbound' for inbound; NULL for anything else, which is
-- neither sent nor counted as outbound. IMMUTABLE and inlined: index predicates use it too.
CREATE OR REPLACE FUNCTION sms_retry_direction(direction text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE lower(btrim(direction, E' \t\r\n'))
        WHEN 'outbound' THEN 'outbound' WHEN 'outbound-api' THEN 'outbound'
        WHEN 'outbound-reply' THEN 'outbound' WHEN 'outbound-call' THEN 'outbound'
        WHEN 'inbound' THEN 'inbound' END
$$;
COMMENT ON FUNCTION sms_retry_direction(text) IS 'outbound (outbound, outbound-api, outbound-reply, outbound-call), inbound, or NULL: a message_direction as sms-retry reads it (any case, surrounding spaces ignored).';

-- The router's clock: `t` as the router would write it into created_at (a timestamp without
-- time zone), in sms_retry.created_at_time_zone, by default the session's TimeZone. Every age and
-- window of created_at goes through it (sms_retry_router_time(now()) is the router's "now"), so a
-- router writing UTC under a server whose TimeZone is not UTC is read right once the setting
-- says 'UTC'. For a created_at that is timestamptz, leave the setting unset.
CREATE OR REPLACE FUNCTION sms_retry_router_time(t timestamptz) RETURNS timestamp
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT t AT TIME ZONE coalesce(nullif(current_setting('sms_retry.created_at_time_zone', true), ''),
                                   current_setting('TimeZone'))
$$;
COMMENT ON FUNCTION sms_retry_router_time(timestamptz) IS 'An instant on the router''s clock (created_at''s zone: sms_retry.created_at_time_zone, default the session''s TimeZone).';

-- SMS segments of a body: GSM-7 (160 per single message, 153 per part; ^{}\[~]|€ and form
-- feed take two septets) or UCS-2 (70 / 67 UTF-16 units; characters beyond the BMP take two).
CREATE OR REPLACE FUNCTION sms_retry_segments(body text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- One expression, no sub-selects (they would stop the planner from inlining it), constant
    -- patterns (cached once compiled); most bodies stop at the length test. Two-unit characters
    -- are counted by deleting them (translate, or a regex matching only them): a regex that
    -- matched every other character cost ~0.3 ms per long message.
    SELECT CASE
        WHEN body IS NULL OR body = '' THEN 0
        WHEN length(body) <= 35 THEN 1               -- one segment in either encoding
        WHEN body ~ E'^[\n\r\f@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&''()*+,./0-9:;<=>?¡A-ZÄÖÑÜ§¿a-zäöñüà^{}\\\\\\[~\\]|€-]*$' THEN
            CASE WHEN length(body) <= 80 THEN 1      -- even if every character took two septets
                 WHEN 2 * length(body) - length(translate(body, E'\f^{}\\[~]|€', '')) <= 160 THEN 1
                 ELSE ceil((2 * length(body) - length(translate(body, E'\f^{}\\[~]|€', ''))) / 153.0)::int
            END
        WHEN 2 * length(body) - length(regexp_replace(body, '[\U00010000-\U0010FFFF]', '', 'g')) <= 70 THEN 1
        ELSE ceil((2 * length(body) - length(regexp_replace(body, '[\U00010000-\U0010FFFF]', '', 'g'))) / 67.0)::int
    END
$$;
COMMENT ON FUNCTION sms_retry_segments(text) IS 'SMS segments a body takes: GSM-7 160/153 characters, else UCS-2 70/67 UTF-16 units.';

-- The functions below that read the table (first_id_since, direction_counts, failed_counts) keep
-- the search path they were made with (SET search_path FROM CURRENT: the table's schema first, as
-- migrate sets it), so a psql user whose path does not name that schema can still read the views
-- as schema.sms_retry_overview.
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

-- The period of overview, by_attempt, by_error_code and health: sms_retry.period (its name before
-- 1.0, sms_retry.window, is still read), default 24 hours.
CREATE OR REPLACE FUNCTION sms_retry_period() RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(nullif(current_setting('sms_retry.period', true), ''),
                    nullif(current_setting('sms_retry.window', true), ''), '24 hours')::interval
$$;
COMMENT ON FUNCTION sms_retry_period() IS 'The analytics period: sms_retry.period (or sms_retry.window), default 24 hours.';

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

-- The views are dropped and made again in one transaction, so a reader sees the old set or the
-- new one: a later version may rename a column, which CREATE OR REPLACE VIEW cannot. A view of
-- your own built on these stops the DROP with an error naming it; nothing is lost either way.
-- Each view computes the start of its period once (a MATERIALIZED settings row read through a
-- sub-select), not once per row, and counts rows per message_direction as written before the
-- direction rule maps the few spellings.
BEGIN;
SET LOCAL client_min_messages = warning;   -- no NOTICE for views a first install does not have
-- squawk-ignore ban-drop-view
DROP VIEW IF EXISTS sms_retry_health, sms_retry_overview, sms_retry_by_attempt, sms_retry_by_error_code,
                    sms_retry_queue, sms_retry_daily;

CREATE VIEW sms_retry_overview AS
WITH settings AS MATERIALIZED (
    SELECT sms_retry_period() AS period_length, sms_retry_router_time(now()) - sms_retry_period() AS since
), counts AS (
    SELECT c.* FROM settings, sms_retry_failed_counts(settings.since) c
), outbound AS (
    SELECT coalesce(sum(d.messages) FILTER (WHERE sms_retry_direction(d.message_direction) = 'outbound'), 0)::bigint AS messages,
           coalesce(sum(d.messages) FILTER (WHERE sms_retry_direction(d.message_direction) IS NULL), 0)::bigint AS other_direction
    FROM settings, sms_retry_direction_counts(settings.since) d
)
SELECT settings.period_length AS period,
       outbound.messages AS outbound_messages,
       counts.failed_messages, counts.scheduled, counts.recovered, counts.exhausted, counts.pending,
       round(counts.recovered::numeric / nullif(counts.scheduled - counts.pending, 0), 4) AS retry_success_rate,
       round(counts.avg_attempts, 2) AS avg_attempts_per_recovered,
       round((outbound.messages - counts.not_delivered)::numeric / nullif(outbound.messages, 0), 4) AS delivery_success_rate,
       outbound.other_direction AS other_direction_messages
FROM settings, counts, outbound;
COMMENT ON VIEW sms_retry_overview IS
    'How retries are doing over the last sms_retry.period (default 24 hours, by created_at). One row.';
COMMENT ON COLUMN sms_retry_overview.period IS 'The period counted: sms_retry.period (default 24 hours), back from now on the router''s clock.';
COMMENT ON COLUMN sms_retry_overview.outbound_messages IS 'Outbound messages created in the period (message_direction outbound, outbound-api, outbound-reply or outbound-call).';
COMMENT ON COLUMN sms_retry_overview.failed_messages IS 'Outbound messages of the period that failed at least once (success false now, or recovered by a resend).';
COMMENT ON COLUMN sms_retry_overview.scheduled IS 'Failed messages that were scheduled for a resend.';
COMMENT ON COLUMN sms_retry_overview.recovered IS 'Failed messages that a resend delivered to Twilio (success true after at least one resend).';
COMMENT ON COLUMN sms_retry_overview.exhausted IS 'Failed messages that used every attempt without success.';
COMMENT ON COLUMN sms_retry_overview.pending IS 'Failed messages still waiting for a resend.';
COMMENT ON COLUMN sms_retry_overview.retry_success_rate IS 'recovered / (scheduled - pending): the share of finished retries that recovered the message. NULL when none has finished.';
COMMENT ON COLUMN sms_retry_overview.avg_attempts_per_recovered IS 'Average resends a recovered message took.';
COMMENT ON COLUMN sms_retry_overview.delivery_success_rate IS 'Share of the period''s outbound messages that ended up sent (first time or by a resend).';
COMMENT ON COLUMN sms_retry_overview.other_direction_messages IS 'Rows of the period whose message_direction is neither outbound nor inbound; sms-retry never sends these.';

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

CREATE VIEW sms_retry_queue AS
SELECT count(*) FILTER (WHERE next_retry_at <= now() AND retry_count < max_retries) AS due_now,
       count(*) FILTER (WHERE next_retry_at > now() AND next_retry_at <= now() + interval '1 hour'
                        AND NOT (sms_retry ? 'lease')) AS due_next_hour,
       count(*) FILTER (WHERE next_retry_at < now() - interval '5 minutes' AND retry_count < max_retries) AS overdue_5m,
       coalesce(extract(epoch FROM now() - min(next_retry_at) FILTER (WHERE next_retry_at <= now()
                                                                      AND retry_count < max_retries)), 0)::bigint AS oldest_due_seconds,
       count(*) FILTER (WHERE next_retry_at > now() AND sms_retry ? 'lease') AS in_flight,
       count(*) AS pending,
       count(*) FILTER (WHERE next_retry_at > now() AND sms_retry ->> 'reason' = 'quiet_hours') AS held_quiet_hours
FROM sms_usage_logs
WHERE success = false AND next_retry_at IS NOT NULL;
COMMENT ON VIEW sms_retry_queue IS
    'The retry queue now. One row. Reads only the due-rows index.';
COMMENT ON COLUMN sms_retry_queue.due_now IS 'Rows due for a resend now.';
COMMENT ON COLUMN sms_retry_queue.due_next_hour IS 'Rows that become due within the next hour.';
COMMENT ON COLUMN sms_retry_queue.overdue_5m IS 'Rows due for more than 5 minutes: no run has taken them.';
COMMENT ON COLUMN sms_retry_queue.oldest_due_seconds IS 'How long the oldest due row has waited, in seconds (0 when none is due).';
COMMENT ON COLUMN sms_retry_queue.in_flight IS 'Rows a run has claimed and is sending now (its lease has not ended).';
COMMENT ON COLUMN sms_retry_queue.pending IS 'Every row waiting for a resend, due or not.';
COMMENT ON COLUMN sms_retry_queue.held_quiet_hours IS 'Pending rows held until their recipient''s quiet hours end.';

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

CREATE VIEW sms_retry_health AS
WITH settings AS (
    SELECT coalesce(nullif(current_setting('sms_retry.health_warn_success_rate', true), ''), '0.80')::numeric AS warn_rate,
           coalesce(nullif(current_setting('sms_retry.health_crit_success_rate', true), ''), '0.60')::numeric AS crit_rate,
           coalesce(nullif(current_setting('sms_retry.health_min_finished', true), ''), '10')::int AS min_finished,
           coalesce(nullif(current_setting('sms_retry.health_warn_backlog', true), ''), '100')::bigint AS warn_backlog,
           coalesce(nullif(current_setting('sms_retry.health_crit_backlog', true), ''), '1000')::bigint AS crit_backlog,
           coalesce(nullif(current_setting('sms_retry.health_warn_delay', true), ''), '5 minutes')::interval AS warn_delay,
           coalesce(nullif(current_setting('sms_retry.health_crit_delay', true), ''), '30 minutes')::interval AS crit_delay
), period AS MATERIALIZED (
    SELECT sms_retry_router_time(now()) - sms_retry_period() AS since
), facts AS (
    SELECT round(c.recovered::numeric / nullif(c.scheduled - c.pending, 0), 4) AS rate, c.scheduled - c.pending AS finished,
           q.due_now AS backlog, make_interval(secs => q.oldest_due_seconds) AS delay
    FROM period, sms_retry_failed_counts(period.since) c, sms_retry_queue q
), checks AS (
    SELECT 2 AS level, format('retry success rate %s%% is below %s%%', round(rate * 100, 1), round(crit_rate * 100)) AS reason
    FROM facts, settings WHERE finished >= min_finished AND rate < crit_rate
    UNION ALL
    SELECT 1, format('retry success rate %s%% is below %s%%', round(rate * 100, 1), round(warn_rate * 100))
    FROM facts, settings WHERE finished >= min_finished AND rate >= crit_rate AND rate < warn_rate
    UNION ALL
    SELECT CASE WHEN backlog > crit_backlog THEN 2 ELSE 1 END,
           format('%s rows due now (backlog above %s)', backlog, CASE WHEN backlog > crit_backlog THEN crit_backlog ELSE warn_backlog END)
    FROM facts, settings WHERE backlog > warn_backlog
    UNION ALL
    SELECT CASE WHEN delay > crit_delay THEN 2 ELSE 1 END,
           format('oldest due row has waited %s (more than %s)', justify_interval(date_trunc('second', delay)),
                  CASE WHEN delay > crit_delay THEN crit_delay ELSE warn_delay END)
    FROM facts, settings WHERE delay > warn_delay
)
SELECT CASE coalesce(max(c.level), 0) WHEN 0 THEN 'healthy' WHEN 1 THEN 'warning' ELSE 'critical' END AS status,
       coalesce(array_agg(c.reason ORDER BY c.level DESC, c.reason) FILTER (WHERE c.reason IS NOT NULL), '{}') AS reasons,
       (SELECT rate FROM facts) AS retry_success_rate,
       (SELECT finished FROM facts) AS finished_retries,
       (SELECT backlog FROM facts) AS backlog,
       (SELECT extract(epoch FROM delay)::bigint FROM facts) AS oldest_due_seconds,
       now() AS checked_at
FROM (SELECT 1) one LEFT JOIN checks c ON true;
COMMENT ON VIEW sms_retry_health IS
    'One row: healthy / warning / critical and why. Thresholds are the sms_retry.health_* settings.';
COMMENT ON COLUMN sms_retry_health.status IS 'healthy, warning or critical: the worst of the checks. Warning when the retry success rate over sms_retry.period is below 80% (critical: 60%; judged once 10 retries have finished), more than 100 rows are due (critical: 1000), or the oldest due row has waited more than 5 minutes (critical: 30).';
COMMENT ON COLUMN sms_retry_health.reasons IS 'Why, one sentence per failed check, worst first; empty when healthy.';
COMMENT ON COLUMN sms_retry_health.retry_success_rate IS 'sms_retry_overview.retry_success_rate.';
COMMENT ON COLUMN sms_retry_health.finished_retries IS 'Retries of the period that have finished (scheduled - pending).';
COMMENT ON COLUMN sms_retry_health.backlog IS 'Rows due now (sms_retry_queue.due_now).';
COMMENT ON COLUMN sms_retry_health.oldest_due_seconds IS 'sms_retry_queue.oldest_due_seconds.';
COMMENT ON COLUMN sms_retry_health.checked_at IS 'When the checks ran.';
COMMIT;
