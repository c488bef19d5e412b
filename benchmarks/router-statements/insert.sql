\set uid random(0, 4999)
\set n random(1, 9999999)
\set r random(0, 999)
\set ptm random(40, 239)
\set c random(0, 6)
INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content,
                            success, error_message, processing_time_ms, sms_metadata, created_at)
VALUES (:uid, '+1415' || lpad(:n::text, 7, '0'), 'outbound', 20, 'message number ' || :n,
        :r >= 30, CASE WHEN :r < 30 THEN 'HTTP 400 error: Unable to create record: Twilio 30003' END, :ptm,
        ('{"campaign": "c' || :c || '", "locale": "en", "provider": "twilio"}')::jsonb, now());
