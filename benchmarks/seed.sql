-- Rows as the router writes them, for the benchmarks: psql -v rows=N -v fail_permille=F -f seed.sql
-- Uses only the router's own columns, so it runs before or after the retry migrations.
-- Over the last 30 days, ids rising with created_at: a third inbound, F‰ of the rest failed,
-- 1% NULL bodies, a quarter with foreign sms_metadata keys, some bodies long or in UCS-2.
INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content,
                            success, error_message, processing_time_ms, sms_metadata, created_at)
SELECT g % 5000,
       '+1415' || lpad((g % 10000000)::text, 7, '0'),
       CASE WHEN g % 3 = 0 THEN 'inbound' ELSE 'outbound' END,
       20,
       CASE WHEN g % 97 = 0 THEN NULL
            WHEN g % 50 = 1 THEN repeat('Your appointment is confirmed. ', 8)
            WHEN g % 50 = 2 THEN 'Ваш код подтверждения ' || g
            ELSE 'message number ' || g END,
       g % 1000 >= :fail_permille,
       CASE WHEN g % 1000 < :fail_permille THEN 'HTTP 400 error: Unable to create record: Twilio 30003' END,
       40 + g % 200,
       CASE WHEN g % 4 = 0 THEN jsonb_build_object('campaign', 'c' || (g % 7), 'locale', 'en') END,
       localtimestamp - (:rows - g) * interval '30 days' / :rows
FROM generate_series(1, :rows) g;
