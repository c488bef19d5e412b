\set id random(:maxid - :window + 1, :maxid)
UPDATE sms_usage_logs SET success = NOT success WHERE id = :id;
