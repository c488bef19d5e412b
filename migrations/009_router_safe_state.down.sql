-- sms-retry 009 down: sms-retry's state back under sms_metadata.retry, the indexes of 006 and 008
-- as they were, the guard gone. The views (005) and the sms_retry column (002) stay: to go back to
-- a version before 009, revert to 004 (`migrate --down --to 4`), then run that version's migrate.
-- A down migration removes what its up added: the trigger, function and indexes are sms-retry's own.
-- squawk-ignore-file ban-drop-function
SET lock_timeout = '2s';
SET statement_timeout = '1h';

DROP TRIGGER IF EXISTS sms_retry_guard ON sms_usage_logs;
DROP FUNCTION IF EXISTS sms_retry_guard();
DROP FUNCTION IF EXISTS sms_retry_step(jsonb);

-- Back under sms_metadata.retry, in batches as the up moved it: the router's other keys kept, a
-- NULL metadata made an object, one that is not an object kept whole under original_metadata.
SELECT format($sql$UPDATE sms_usage_logs
    SET sms_metadata = (CASE WHEN sms_metadata IS NULL THEN '{}'::jsonb WHEN jsonb_typeof(sms_metadata) = 'object' THEN sms_metadata
                             ELSE jsonb_build_object('original_metadata', sms_metadata) END)
                       || jsonb_build_object('retry', sms_retry - 'rev'),
        sms_retry = NULL
    WHERE id IN (SELECT id FROM sms_usage_logs WHERE ctid >= '(%s,0)'::tid AND ctid < '(%s,0)'::tid AND sms_retry IS NOT NULL)
      AND sms_retry IS NOT NULL$sql$, page, page + 1000)
FROM generate_series(0, (SELECT coalesce(max(pg_relation_size(relid) / current_setting('block_size')::bigint), 0)
                         FROM pg_partition_tree('sms_usage_logs') WHERE isleaf), 1000) AS page
\gexec

UPDATE sms_usage_logs
SET sms_metadata = (CASE WHEN sms_metadata IS NULL THEN '{}'::jsonb WHEN jsonb_typeof(sms_metadata) = 'object' THEN sms_metadata
                         ELSE jsonb_build_object('original_metadata', sms_metadata) END)
                   || jsonb_build_object('retry', sms_retry - 'rev'),
    sms_retry = NULL
WHERE sms_retry IS NOT NULL;

SELECT sms_retry_index_statements('sms_usage_logs', 'sms_usage_logs_retry_adopt_v2_idx',
    $def$(created_at) WHERE success = false AND sms_retry_direction(message_direction) = 'outbound' AND retry_count = 0
      AND next_retry_at IS NULL AND (sms_metadata IS NULL OR NOT sms_metadata ? 'retry')$def$)
\gexec
SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_retry_adopt_v3_idx')
\gexec

-- 008's opt-out index (version 3, on sms_metadata.retry) and its planning function, as 008 made them.
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
SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_opt_out_v4_idx')
\gexec
-- The non-inlined predicate functions of the two indexes just dropped (adoption v3, opt-out v4).
DROP FUNCTION IF EXISTS sms_retry_is_opt_word(text);
DROP FUNCTION IF EXISTS sms_retry_is_outbound(text);

-- The CHECK on final_status, as earlier versions of 002 made it: NOT VALID (no scan under the
-- lock), then VALIDATE, which reads the table without blocking writes.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'sms_usage_logs'::regclass
                     AND conname = 'sms_usage_logs_final_status_check') THEN
        ALTER TABLE sms_usage_logs
            ADD CONSTRAINT sms_usage_logs_final_status_check
            CHECK (final_status IN ('unknown', 'sent', 'delivered', 'failed', 'undelivered')) NOT VALID;
    END IF;
END
$$;
-- Rerunning VALIDATE on a valid constraint is a no-op, so the statement is safe to repeat.
-- squawk-ignore prefer-robust-stmts
ALTER TABLE sms_usage_logs VALIDATE CONSTRAINT sms_usage_logs_final_status_check;
