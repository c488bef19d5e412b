-- sms-retry 008 up: Twilio's opt-out and opt-in words in one function, and the opt-out index
-- rebuilt on it (REVOKE and OPTOUT, Twilio's since May 2025, and YES); 009 rebuilds it as version 4,
-- on sms-retry's own column, which counts as this one applied.
-- sms-retry:applied-when: to_regprocedure('sms_retry_opt_keyword(text)') IS NOT NULL AND to_regprocedure('sms_retry_opt_out_index_statements(regclass)') IS NOT NULL AND to_regclass('sms_usage_logs_opt_out_v2_idx') IS NULL AND ((SELECT count(*) FROM pg_index WHERE indisvalid AND indexrelid = to_regclass('sms_usage_logs_opt_out_v4_idx')) = 1 OR ((SELECT count(*) FROM pg_index WHERE indisvalid AND indexrelid = to_regclass('sms_usage_logs_opt_out_v3_idx')) = 1 AND obj_description(to_regclass('sms_usage_logs_opt_out_v3_idx'), 'pg_class') = (SELECT 'sms-retry: built by a migration; words ' || md5(prosrc) FROM pg_proc WHERE oid = to_regprocedure('sms_retry_opt_keyword(text)'))))
SET lock_timeout = '2s';
SET statement_timeout = '1h';

-- The words, in this one place: a message that is one of them (any case, spaces ignored, so
-- "Opt Out" is OPTOUT; at most 40 characters) is an opt-out ('out') or an opt-in ('in') as
-- Twilio applies them; anything else is NULL. The claim and the opt-out index both call it.
-- To change the words: CREATE OR REPLACE this function, then run
--   SELECT sms_retry_opt_out_index_statements('sms_usage_logs') \gexec
-- which rebuilds the index without blocking writes (this file does both).
CREATE OR REPLACE FUNCTION sms_retry_opt_keyword(content text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN length(content) > 40 THEN NULL
                WHEN upper(regexp_replace(content, '\s', '', 'g'))
                     IN ('STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'REVOKE', 'OPTOUT') THEN 'out'
                WHEN upper(regexp_replace(content, '\s', '', 'g')) IN ('START', 'UNSTOP', 'YES') THEN 'in' END
$$;
COMMENT ON FUNCTION sms_retry_opt_keyword(text) IS 'sms-retry: ''out'' for an opt-out word (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT), ''in'' for an opt-in word (START, UNSTOP, YES), else NULL; any case, spaces ignored (migration 008)';

-- What the opt-out index's COMMENT says when it was built with the current words.
CREATE OR REPLACE FUNCTION sms_retry_opt_out_index_mark() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT 'sms-retry: built by a migration; words ' || md5(prosrc)
    FROM pg_proc WHERE oid = 'sms_retry_opt_keyword(text)'::regprocedure
$$;

-- The statements that bring the opt-out index up to date, for \gexec: build it when missing
-- (concurrently, any partitioning: sms_retry_index_statements of 003); when it was built with
-- other words, REINDEX ... CONCURRENTLY (writes go on; until it ends, a lookup may miss an
-- event of a newly added word, as before the change); then mark it with the words' fingerprint.
CREATE OR REPLACE FUNCTION sms_retry_opt_out_index_statements(tbl regclass) RETURNS SETOF text
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    idx regclass := to_regclass('sms_usage_logs_opt_out_v3_idx');
BEGIN
    IF idx IS NULL OR NOT (SELECT indisvalid FROM pg_index WHERE indexrelid = idx) THEN
        RETURN QUERY SELECT sms_retry_index_statements(tbl, 'sms_usage_logs_opt_out_v3_idx',
            $def$(phone_number)
            WHERE (sms_retry_direction(message_direction) = 'inbound' AND sms_retry_opt_keyword(message_content) IS NOT NULL)
               OR (sms_retry_direction(message_direction) = 'outbound' AND sms_metadata -> 'retry' ->> 'error_code' = '21610')$def$);
    ELSIF obj_description(idx, 'pg_class') IS DISTINCT FROM sms_retry_opt_out_index_mark() THEN
        RETURN NEXT format('REINDEX INDEX CONCURRENTLY %s', idx);
    END IF;
    RETURN NEXT format('COMMENT ON INDEX %I IS %L', 'sms_usage_logs_opt_out_v3_idx', sms_retry_opt_out_index_mark());
END
$fn$;
COMMENT ON FUNCTION sms_retry_opt_out_index_statements(regclass) IS 'sms-retry: plans the opt-out index build or rebuild (migration 008)';

SELECT sms_retry_opt_out_index_statements('sms_usage_logs')
\gexec

-- Version 2 (007) knew neither REVOKE, OPTOUT nor YES: replaced.
SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_opt_out_v2_idx')
\gexec
