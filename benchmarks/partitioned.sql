-- The router's table range-partitioned by month of created_at, for the benchmarks: the last two
-- months, this one, the next one and a DEFAULT (older rows, anything else), as a retention job
-- that drops old months would keep it. The columns of 001_baseline; the key includes created_at,
-- as PostgreSQL requires of a partitioned table's primary key.
CREATE TABLE sms_usage_logs (
    id SERIAL,
    user_id INTEGER NOT NULL,
    phone_number VARCHAR(20) NOT NULL,
    message_direction VARCHAR(10) NOT NULL,
    message_length INTEGER NOT NULL,
    message_content TEXT,
    success BOOLEAN DEFAULT TRUE,
    processing_time_ms INTEGER,
    error_message TEXT,
    sms_metadata JSONB,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
DO $$
DECLARE m date := date_trunc('month', localtimestamp)::date;
BEGIN
    FOR k IN -2..1 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF sms_usage_logs FOR VALUES FROM (%L) TO (%L)',
                       'sms_usage_logs_' || to_char(m + make_interval(months => k), 'YYYY_MM'),
                       m + make_interval(months => k), m + make_interval(months => k + 1));
    END LOOP;
    CREATE TABLE sms_usage_logs_default PARTITION OF sms_usage_logs DEFAULT;
END
$$;
