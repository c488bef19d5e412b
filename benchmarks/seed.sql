-- Rows as the router writes them, for the benchmarks:
--   psql -v rows=N -v fail_permille=F [-v shuffle=0|1|2] -f seed.sql
-- Uses only the router's own columns, so it runs before or after the retry migrations.
-- Over the last 30 days: a third inbound, F‰ of the rest failed, 1% NULL bodies, a quarter with
-- foreign sms_metadata keys, some bodies long or in UCS-2. shuffle=0 (default): rows written in
-- created_at order, ids rising with it. shuffle=1: the same rows, their ids in no order of
-- created_at (an import that kept another system's ids): row g gets id (g × 7919) mod N + 1
-- (a permutation when N has no factor 7919) after the ids already there. shuffle=2: ids rise, but
-- rows are written in no order of created_at (row g is created at that permuted position): the
-- worst case for a BRIN index on created_at.
\if :{?shuffle}
\else
\set shuffle 0
\endif
SELECT coalesce(max(id), 0) AS id_base FROM sms_usage_logs \gset
INSERT INTO sms_usage_logs (id, user_id, phone_number, message_direction, message_length, message_content,
                            success, error_message, processing_time_ms, sms_metadata, created_at)
SELECT CASE WHEN :shuffle = 1 THEN :id_base + (g::bigint * 7919) % :rows + 1
            ELSE nextval(pg_get_serial_sequence('sms_usage_logs', 'id')) END,
       g % 5000,
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
       localtimestamp - (:rows - CASE WHEN :shuffle = 2 THEN (g::bigint * 7919) % :rows + 1 ELSE g END) * interval '30 days' / :rows
FROM generate_series(1, :rows) g;
SELECT :shuffle = 1 AS explicit_ids \gset
\if :explicit_ids
SELECT setval(pg_get_serial_sequence('sms_usage_logs', 'id'), max(id)) FROM sms_usage_logs \gset
\endif
