-- sms-retry 003 up: two small partial indexes, built without blocking writes, on a plain or a
-- partitioned table; and the two functions that plan every index sms-retry builds or drops.
-- CREATE INDEX CONCURRENTLY cannot run inside a transaction: run this file with psql -f (which
-- autocommits each statement) or sms-retry migrate, never inside BEGIN/COMMIT.
-- sms-retry:applied-when: (SELECT count(*) FROM pg_index WHERE indisvalid AND indexrelid IN (to_regclass('sms_usage_logs_retry_due_idx'), to_regclass('sms_usage_logs_retry_work_idx'))) >= 1 AND (SELECT count(*) FROM pg_index WHERE indisvalid AND indexrelid = to_regclass('sms_usage_logs_twilio_sid_idx')) = 1 AND to_regprocedure('sms_retry_index_statements(regclass, text, text)') IS NOT NULL AND to_regprocedure('sms_retry_index_drop_statements(regclass, text)') IS NOT NULL AND to_regprocedure('sms_retry_index_name(text, text)') IS NOT NULL
SET lock_timeout = '2s';
SET statement_timeout = '1h';

-- The statements that build index `index_name` on `tbl` with `definition` (columns and
-- predicate) without blocking writes, in order, for psql's \gexec (or sms-retry migrate, which
-- runs them the same way). Rerunnable: what exists and is valid is left alone.
-- A plain table: drop a leftover INVALID index of a failed concurrent build (IF NOT EXISTS would
-- accept it as done), then CREATE INDEX CONCURRENTLY. A partitioned table (any scheme, any
-- depth), where CONCURRENTLY is refused: the index ON ONLY each partitioned table (invalid
-- until complete), each leaf partition's index CONCURRENTLY, then each attached to its
-- parent's, bottom up; partitions created later get the index from PostgreSQL itself.
-- A partition's index is named after the partition: <partition>_<index_name less the table's name>.
-- A partition's index name: <partition>_<suffix>, or, past PostgreSQL's 63 bytes, cut with a
-- hash of the whole name so two long partition names never share one.
CREATE OR REPLACE FUNCTION sms_retry_index_name(partition_name text, suffix text) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE WHEN octet_length(partition_name || '_' || suffix) <= 63 THEN partition_name || '_' || suffix
                ELSE left(partition_name, 40) || '_' || left(md5(partition_name || '_' || suffix), 8) || '_' || left(suffix, 13) END
$fn$;
COMMENT ON FUNCTION sms_retry_index_name(text, text) IS 'sms-retry: names a partition''s index (migration 003)';

CREATE OR REPLACE FUNCTION sms_retry_index_statements(tbl regclass, index_name text, definition text)
RETURNS SETOF text LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    node record;
    suffix text := regexp_replace(index_name, '^' || (SELECT relname FROM pg_class WHERE oid = tbl) || '_', '');
BEGIN
    FOR node IN
        WITH RECURSIVE tree AS (
            SELECT c.oid, NULL::oid AS parent, 0 AS depth FROM pg_class c WHERE c.oid = tbl
            UNION ALL
            SELECT i.inhrelid, i.inhparent, t.depth + 1 FROM pg_inherits i JOIN tree t ON i.inhparent = t.oid
        )
        SELECT t.oid, t.parent, t.depth, c.relkind, n.nspname, c.relname,
               CASE WHEN t.parent IS NULL THEN index_name ELSE sms_retry_index_name(c.relname, suffix) END AS idx,
               pn.nspname AS parent_nsp,
               CASE WHEN pt.parent IS NULL THEN index_name ELSE sms_retry_index_name(pc.relname, suffix) END AS parent_idx
        FROM tree t
        JOIN pg_class c ON c.oid = t.oid JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN tree pt ON pt.oid = t.parent
        LEFT JOIN pg_class pc ON pc.oid = t.parent LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
        WHERE c.relkind IN ('r', 'p')
        ORDER BY t.depth, c.relname
    LOOP
        IF EXISTS (SELECT 1 FROM pg_index x JOIN pg_class xc ON xc.oid = x.indexrelid
                   WHERE xc.relname = node.idx AND xc.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = node.oid)
                     AND NOT x.indisvalid AND node.relkind = 'r') THEN
            RETURN NEXT format('DROP INDEX CONCURRENTLY IF EXISTS %I.%I', node.nspname, node.idx);
        END IF;
        IF node.relkind = 'p' THEN
            RETURN NEXT format('CREATE INDEX IF NOT EXISTS %I ON ONLY %I.%I %s', node.idx, node.nspname, node.relname, definition);
        ELSE
            RETURN NEXT format('CREATE INDEX CONCURRENTLY IF NOT EXISTS %I ON %I.%I %s', node.idx, node.nspname, node.relname, definition);
        END IF;
    END LOOP;
    -- Attach, deepest first, each partition's index to its parent's (once).
    FOR node IN
        WITH RECURSIVE tree AS (
            SELECT c.oid, NULL::oid AS parent, 0 AS depth FROM pg_class c WHERE c.oid = tbl
            UNION ALL
            SELECT i.inhrelid, i.inhparent, t.depth + 1 FROM pg_inherits i JOIN tree t ON i.inhparent = t.oid
        )
        SELECT n.nspname, sms_retry_index_name(c.relname, suffix) AS idx, pn.nspname AS parent_nsp,
               CASE WHEN pt.parent IS NULL THEN index_name ELSE sms_retry_index_name(pc.relname, suffix) END AS parent_idx
        FROM tree t
        JOIN pg_class c ON c.oid = t.oid JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN tree pt ON pt.oid = t.parent
        JOIN pg_class pc ON pc.oid = t.parent JOIN pg_namespace pn ON pn.oid = pc.relnamespace
        WHERE c.relkind IN ('r', 'p')
        ORDER BY t.depth DESC, c.relname
    LOOP
        RETURN NEXT format($attach$DO $do$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = %L::regclass AND inhparent = %L::regclass) THEN
                ALTER INDEX %I.%I ATTACH PARTITION %I.%I;
            END IF;
        END $do$$attach$, quote_ident(node.nspname) || '.' || quote_ident(node.idx),
            quote_ident(node.parent_nsp) || '.' || quote_ident(node.parent_idx),
            node.parent_nsp, node.parent_idx, node.nspname, node.idx);
    END LOOP;
    -- Marked as sms-retry's when this builds it, so a down drops only what an up built (an index
    -- of that name already there is left as it is, comment and all).
    IF to_regclass(format('%I.%I', (SELECT relnamespace::regnamespace::name FROM pg_class WHERE oid = tbl), index_name)) IS NULL
       OR obj_description(to_regclass(format('%I.%I', (SELECT relnamespace::regnamespace::name FROM pg_class WHERE oid = tbl), index_name)), 'pg_class') LIKE 'sms-retry%' THEN
        RETURN NEXT format('COMMENT ON INDEX %I.%I IS %L', (SELECT relnamespace::regnamespace::name FROM pg_class WHERE oid = tbl),
                           index_name, 'sms-retry: built by a migration');
    END IF;
END
$fn$;
COMMENT ON FUNCTION sms_retry_index_statements(regclass, text, text) IS 'sms-retry: plans a non-blocking index build (migration 003)';

-- The statement that drops index `index_name` (of `tbl`) with the least locking: CONCURRENTLY
-- on a plain table; on a partitioned one, where CONCURRENTLY is refused, a plain DROP INDEX of
-- the partitioned index (its partitions' indexes go with it), which waits at most lock_timeout.
CREATE OR REPLACE FUNCTION sms_retry_index_drop_statements(tbl regclass, index_name text)
RETURNS SETOF text LANGUAGE sql STABLE AS $fn$
    SELECT format(CASE WHEN c.relkind = 'p' THEN 'DROP INDEX IF EXISTS %I.%I' ELSE 'DROP INDEX CONCURRENTLY IF EXISTS %I.%I' END,
                  n.nspname, index_name)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_class ix ON ix.relname = index_name AND ix.relnamespace = c.relnamespace
    WHERE c.oid = tbl
      -- only an index that exists and an up built (its COMMENT, or none: from before the COMMENTs)
      AND ix.oid IS NOT NULL AND coalesce(obj_description(ix.oid, 'pg_class'), 'sms-retry') LIKE 'sms-retry%'
$fn$;
COMMENT ON FUNCTION sms_retry_index_drop_statements(regclass, text) IS 'sms-retry: plans an index drop (migration 003)';

-- Only rows waiting for a retry: its size follows the backlog, not the table, so claiming due
-- rows costs the same on 10k or 10M rows. (011's work index serves it since: not built again
-- where that one exists, as when this file is run a second time.)
SELECT sms_retry_index_statements('sms_usage_logs', 'sms_usage_logs_retry_due_idx',
                                  '(next_retry_at) WHERE success = false AND next_retry_at IS NOT NULL')
WHERE to_regclass('sms_usage_logs_retry_work_idx') IS NULL
\gexec

-- Delivery-status callbacks find their row by Twilio's message SID.
SELECT sms_retry_index_statements('sms_usage_logs', 'sms_usage_logs_twilio_sid_idx',
                                  '(twilio_message_sid) WHERE twilio_message_sid IS NOT NULL')
\gexec
