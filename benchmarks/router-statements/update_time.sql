\set id random(:maxid - :window + 1, :maxid)
\set ptm random(40, 2000)
UPDATE sms_usage_logs SET processing_time_ms = :ptm WHERE id = :id;
