-- sms-retry 001 up: the router's table, exactly as the router has it.
-- For fresh databases (the demo, tests). Where the table already exists this does nothing.
-- squawk-ignore-file prefer-identity, prefer-bigint-over-int, prefer-text-field, prefer-timestamp-tz
-- sms-retry:applied-when: to_regclass('sms_usage_logs') IS NOT NULL
SET lock_timeout = '2s';
SET statement_timeout = '30s';

-- The column types are the router's own (SERIAL, VARCHAR, TIMESTAMP): this file mirrors the
-- existing table rather than designing a new one, so the type rules do not apply here.
CREATE TABLE IF NOT EXISTS sms_usage_logs (
    id SERIAL PRIMARY KEY,
    user_id INTEGER NOT NULL,
    phone_number VARCHAR(20) NOT NULL,
    message_direction VARCHAR(10) NOT NULL,
    message_length INTEGER NOT NULL,
    message_content TEXT,
    success BOOLEAN DEFAULT TRUE,
    processing_time_ms INTEGER,
    error_message TEXT,
    sms_metadata JSONB,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
