-- sms-retry 013 up: what resends spend, per day and country, and the rows the spend guard holds
-- (issue 26). Two views only: no table, no index, nothing the router's statements pay for.
-- sms-retry:applied-when: to_regclass('sms_retry_spend_daily') IS NOT NULL AND to_regclass('sms_retry_held') IS NOT NULL AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('sms_retry_spend_daily') AND attname = 'estimated_cost')
SET lock_timeout = '2s';
SET statement_timeout = '1h';

BEGIN;
-- Resends by the day they were made (router's clock) and the recipient's country
-- (`sms_retry.spend.country`, written when the spend guard let the resend go; 'unknown' before).
-- A resend is what the daily budget counts: a history entry of a request Twilio answered or may
-- have taken. The rows are read through the failed-rows index of 011 (every resent row is in
-- it), created up to 30 days (the longest maximum age of a message) before the first day.
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
           OR (h.e ->> 'outcome' = 'pumping_held' AND h.e ? 'code'))
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
COMMENT ON VIEW sms_retry_spend_daily IS
    'Resends per day (the last sms_retry.days days, default 30) and recipient country: how many, how many Twilio accepted, their segments and estimated cost. What the spend guard''s daily budget counts.';
COMMENT ON COLUMN sms_retry_spend_daily.day IS 'The day the resends were made (router''s clock).';
COMMENT ON COLUMN sms_retry_spend_daily.country IS 'The recipient''s country (ISO 3166-1), as the spend guard found it from the number; unknown for resends made before it.';
COMMENT ON COLUMN sms_retry_spend_daily.resends IS 'Requests to Twilio it answered or may have taken (accepted, refused, of unknown fate, blocked by SMS pumping protection): what max_resends_per_day counts.';
COMMENT ON COLUMN sms_retry_spend_daily.accepted IS 'Of them, resends Twilio accepted (what is paid).';
COMMENT ON COLUMN sms_retry_spend_daily.segments IS 'SMS segments of the accepted resends (GSM-7 160/153 characters, else UCS-2 70/67).';
COMMENT ON COLUMN sms_retry_spend_daily.estimated_cost IS 'The accepted resends at the policy''s resend_prices (sms_retry.spend.cost), else at sms_retry.price_per_segment (default 0.0079) per segment.';

-- Pending rows held, uncounted, by why: quiet hours and the spend guard's holds.
-- The work index's arm (success = false AND next_retry_at IS NOT NULL): the backlog, not the table.
CREATE OR REPLACE VIEW sms_retry_held AS
SELECT s.sms_retry ->> 'reason' AS reason,
       count(*)::bigint AS rows,
       min(s.next_retry_at) AS first_due,
       max(s.next_retry_at) AS last_due
FROM sms_usage_logs s
WHERE s.success = false AND s.next_retry_at IS NOT NULL
  AND s.sms_retry ->> 'reason' IN ('quiet_hours', 'budget_held', 'prefix_held', 'pumping_held')
GROUP BY 1
ORDER BY 2 DESC, 1;
COMMENT ON VIEW sms_retry_held IS
    'Pending resends held without using an attempt, by reason: quiet_hours (the recipient''s quiet hours), budget_held (the fleet''s daily budget), prefix_held (the range''s hourly cap), pumping_held (Twilio''s SMS pumping protection).';
COMMENT ON COLUMN sms_retry_held.reason IS 'Why they wait (sms_retry.reason).';
COMMENT ON COLUMN sms_retry_held.rows IS 'Rows held for that reason.';
COMMENT ON COLUMN sms_retry_held.first_due IS 'When the first of them is due again.';
COMMENT ON COLUMN sms_retry_held.last_due IS 'When the last of them is due again.';
COMMIT;
