-- sms-retry 010 up: sms_retry_health warns when accepted messages wait without a final status
-- (status callbacks lost for a long time, and reconcile's sweep not catching up).
-- sms-retry:applied-when: EXISTS (SELECT 1 FROM pg_proc WHERE oid = to_regprocedure('sms_retry_unconfirmed(interval, interval)') AND array_to_string(proconfig, ',') LIKE '%search_path=%') AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('sms_retry_health') AND attname = 'unconfirmed' AND NOT attisdropped)
--
-- Settings (as 005's):
--   sms_retry.health_unconfirmed_age    '1 hour'    an accepted outbound message with no final status for longer ...
--   sms_retry.health_warn_unconfirmed   100         ... counted; more of them than this: warning
--   sms_retry.health_unconfirmed_window '6 hours'   ... among those created this recently (the count reads the rows
--                                                   inserted in it: the view took 41 ms at 100k rows a day, benchmarks/sweep-walk.sh)
--   sms_retry.sid_metadata_key          (none)      where the router keeps a SID in sms_metadata (dotted, e.g. twilio.sid), as
--                                                   reconcile's --sid-metadata-key; rows with no SID anywhere are not counted
SET lock_timeout = '2s';
SET statement_timeout = '30s';

BEGIN;

-- Accepted outbound messages (success, a SID) with no final status (final_status unknown or sent),
-- created between `younger_than` and `older_than` ago (router's clock). Read as reconcile's sweep
-- reads them (docs/ARCHITECTURE.md, "The sweep"): down the primary key, 5,000 rows at a time,
-- until three chunks in a row hold no row of the window, so no index the router's INSERT pays for
-- is needed; it costs a read of the window's rows (the primary key and the rows it points to).
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

CREATE OR REPLACE VIEW sms_retry_health AS
WITH settings AS (
    SELECT coalesce(nullif(current_setting('sms_retry.health_warn_success_rate', true), ''), '0.80')::numeric AS warn_rate,
           coalesce(nullif(current_setting('sms_retry.health_crit_success_rate', true), ''), '0.60')::numeric AS crit_rate,
           coalesce(nullif(current_setting('sms_retry.health_min_finished', true), ''), '10')::int AS min_finished,
           coalesce(nullif(current_setting('sms_retry.health_warn_backlog', true), ''), '100')::bigint AS warn_backlog,
           coalesce(nullif(current_setting('sms_retry.health_crit_backlog', true), ''), '1000')::bigint AS crit_backlog,
           coalesce(nullif(current_setting('sms_retry.health_warn_delay', true), ''), '5 minutes')::interval AS warn_delay,
           coalesce(nullif(current_setting('sms_retry.health_crit_delay', true), ''), '30 minutes')::interval AS crit_delay,
           coalesce(nullif(current_setting('sms_retry.health_unconfirmed_age', true), ''), '1 hour')::interval AS unconfirmed_age,
           coalesce(nullif(current_setting('sms_retry.health_warn_unconfirmed', true), ''), '100')::bigint AS warn_unconfirmed,
           coalesce(nullif(current_setting('sms_retry.health_unconfirmed_window', true), ''), '6 hours')::interval AS unconfirmed_window
), period AS MATERIALIZED (
    SELECT sms_retry_router_time(now()) - sms_retry_period() AS since
), facts AS (
    SELECT round(c.recovered::numeric / nullif(c.scheduled - c.pending, 0), 4) AS rate, c.scheduled - c.pending AS finished,
           q.due_now AS backlog, make_interval(secs => q.oldest_due_seconds) AS delay
    FROM period, sms_retry_failed_counts(period.since) c, sms_retry_queue q
), waiting AS MATERIALIZED (
    SELECT sms_retry_unconfirmed(settings.unconfirmed_age, settings.unconfirmed_window) AS unconfirmed FROM settings
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
    UNION ALL
    SELECT 1, format('%s accepted messages have had no final status for more than %s (status callbacks lost? is reconcile running?)',
                     unconfirmed, unconfirmed_age)
    FROM waiting, settings WHERE unconfirmed > warn_unconfirmed
)
SELECT CASE coalesce(max(c.level), 0) WHEN 0 THEN 'healthy' WHEN 1 THEN 'warning' ELSE 'critical' END AS status,
       coalesce(array_agg(c.reason ORDER BY c.level DESC, c.reason) FILTER (WHERE c.reason IS NOT NULL), '{}') AS reasons,
       (SELECT rate FROM facts) AS retry_success_rate,
       (SELECT finished FROM facts) AS finished_retries,
       (SELECT backlog FROM facts) AS backlog,
       (SELECT extract(epoch FROM delay)::bigint FROM facts) AS oldest_due_seconds,
       now() AS checked_at,
       (SELECT unconfirmed FROM waiting) AS unconfirmed
FROM (SELECT 1) one LEFT JOIN checks c ON true;
COMMENT ON VIEW sms_retry_health IS
    'One row: healthy / warning / critical and why. Thresholds are the sms_retry.health_* settings.';
COMMENT ON COLUMN sms_retry_health.status IS 'healthy, warning or critical: the worst of the checks. Warning when the retry success rate over sms_retry.period is below 80% (critical: 60%; judged once 10 retries have finished), more than 100 rows are due (critical: 1000), the oldest due row has waited more than 5 minutes (critical: 30), or more than 100 accepted messages of the last 6 hours have had no final status for over an hour (sms_retry.health_warn_unconfirmed, sms_retry.health_unconfirmed_age, sms_retry.health_unconfirmed_window; warning only).';
COMMENT ON COLUMN sms_retry_health.reasons IS 'Why, one sentence per failed check, worst first; empty when healthy.';
COMMENT ON COLUMN sms_retry_health.retry_success_rate IS 'sms_retry_overview.retry_success_rate.';
COMMENT ON COLUMN sms_retry_health.finished_retries IS 'Retries of the period that have finished (scheduled - pending).';
COMMENT ON COLUMN sms_retry_health.backlog IS 'Rows due now (sms_retry_queue.due_now).';
COMMENT ON COLUMN sms_retry_health.oldest_due_seconds IS 'sms_retry_queue.oldest_due_seconds.';
COMMENT ON COLUMN sms_retry_health.checked_at IS 'When the checks ran.';
COMMENT ON COLUMN sms_retry_health.unconfirmed IS 'Accepted outbound messages created within sms_retry.health_unconfirmed_window (default 6 hours) with no final status for longer than sms_retry.health_unconfirmed_age (default 1 hour): status callbacks lost and not yet swept by reconcile.';
COMMIT;
