-- sms-retry 010 down: sms_retry_health as 005 made it, without the unconfirmed check.
-- A down migration removes what its up created; the column and the function are sms-retry's own.
-- squawk-ignore-file ban-drop-view, ban-drop-function
SET lock_timeout = '2s';
SET statement_timeout = '30s';

BEGIN;

DROP VIEW IF EXISTS sms_retry_health;
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
DROP FUNCTION IF EXISTS sms_retry_unconfirmed(interval, interval);

COMMIT;
