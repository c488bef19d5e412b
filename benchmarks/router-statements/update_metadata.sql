\set id random(:maxid - :window + 1, :maxid)
\set ptm random(40, 2000)
\set c random(0, 6)
UPDATE sms_usage_logs
SET sms_metadata = ('{"campaign": "c' || :c || '", "locale": "en", "provider": "twilio", "segments": 1, "price": "0.0079", "twilio_ms": ' || :ptm || '}')::jsonb
WHERE id = :id;
