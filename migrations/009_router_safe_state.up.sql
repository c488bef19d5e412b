-- sms-retry 009 up: sms-retry's state out of the router's reach, without blocking its writes.
-- 1. A guard on the retry columns: an UPDATE that is not sms-retry's own (a router's ORM writing a
--    whole row, or its whole sms_metadata, from a read taken before sms-retry's last write) can
--    no longer roll back a lease, a doubt mark, a count or a history entry.
-- 2. What earlier versions kept under sms_metadata.retry moves to sms-retry's own column
--    sms_retry (added by 002), in small batches.
-- 3. The indexes that read sms_metadata are rebuilt on sms_retry (adoption v3, opt-out v4), so the
--    router's own updates of sms_metadata stay HOT.
-- Run with psql -f or sms-retry migrate, never inside BEGIN/COMMIT (CONCURRENTLY, batches).
-- sms-retry:applied-when: to_regprocedure('sms_retry_guard()') IS NOT NULL AND to_regprocedure('sms_retry_step(jsonb)') IS NOT NULL AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass('sms_usage_logs') AND tgname = 'sms_retry_guard' AND tgparentid = 0 AND cardinality(tgattr::int2[]) = 7) AND (SELECT count(*) FROM pg_index WHERE indisvalid AND indexrelid IN (to_regclass('sms_usage_logs_retry_adopt_v3_idx'), to_regclass('sms_usage_logs_retry_work_idx'))) >= 1 AND (SELECT count(*) FROM pg_index WHERE indisvalid AND indexrelid = to_regclass('sms_usage_logs_opt_out_v4_idx')) = 1 AND to_regclass('sms_usage_logs_retry_adopt_v2_idx') IS NULL AND to_regclass('sms_usage_logs_opt_out_v3_idx') IS NULL AND obj_description(to_regclass('sms_usage_logs_opt_out_v4_idx'), 'pg_class') = (SELECT 'sms-retry: built by a migration; words ' || md5(prosrc) FROM pg_proc WHERE oid = to_regprocedure('sms_retry_opt_keyword(text)')) AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass('sms_usage_logs') AND conname = 'sms_usage_logs_final_status_check') AND col_description(to_regclass('sms_usage_logs'), (SELECT attnum FROM pg_attribute WHERE attrelid = to_regclass('sms_usage_logs') AND attname = 'sms_retry')) NOT LIKE '%moving%'
SET lock_timeout = '2s';
SET statement_timeout = '1h';

-- Who may write which column (docs/ARCHITECTURE.md, "Who writes what"): sms-retry's columns are
-- written by sms-retry, and each of its writes steps sms_retry.rev by exactly one, computed from
-- the row it updates. Any other UPDATE that would change them is undone, column by column,
-- before it is stored; the rest of that UPDATE (the router's own columns) goes through as
-- written. Two words of the router's are kept: a twilio_message_sid where the row had none, and
-- final_status 'delivered' (with its delivery_confirmed_at).
CREATE OR REPLACE FUNCTION sms_retry_guard() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF NEW.sms_retry -> 'rev' = to_jsonb(coalesce((OLD.sms_retry ->> 'rev')::bigint, 0) + 1) THEN
        RETURN NEW;
    END IF;
    NEW.sms_retry := OLD.sms_retry;
    NEW.retry_count := OLD.retry_count;
    NEW.max_retries := OLD.max_retries;
    NEW.next_retry_at := OLD.next_retry_at;
    IF OLD.twilio_message_sid IS NOT NULL THEN
        NEW.twilio_message_sid := OLD.twilio_message_sid;
    END IF;
    IF NEW.final_status IS DISTINCT FROM 'delivered' THEN
        NEW.final_status := OLD.final_status;
        NEW.delivery_confirmed_at := OLD.delivery_confirmed_at;
    END IF;
    RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION sms_retry_guard() IS 'sms-retry: undoes a write to its columns that is not its own (migration 009)';

-- The CHECK on final_status that earlier versions of 002 added: the guard now keeps others'
-- UPDATEs from changing final_status, and the CHECK cost every router statement ~47k instructions
-- (callgrind; PostgreSQL reads and prepares a CHECK anew for each statement), its largest cost.
-- A down migration exists to remove what its up added; this constraint is sms-retry's own.
-- squawk-ignore ban-drop-constraint
ALTER TABLE sms_usage_logs DROP CONSTRAINT IF EXISTS sms_usage_logs_final_status_check;

-- UPDATE OF: an UPDATE whose SET names none of these columns cannot change them, and PostgreSQL
-- skips the trigger for it on the column list alone, before it reads the WHEN clause. The
-- router's own UPDATEs (processing_time_ms, sms_metadata, success) are such UPDATEs: without the
-- list, every one of them parsed and planned this WHEN clause anew (PostgreSQL prepares it per
-- statement), about a third of the CPU of an UPDATE by id (callgrind: 323k -> 218k instructions
-- per prepared UPDATE of processing_time_ms; 211k with no trigger at all: a BEFORE ROW trigger
-- still makes each UPDATE lock its row first). An UPDATE that does name them (sms-retry's own, an
-- ORM writing a whole row) gets the WHEN clause: the function is called only for a row
-- sms-retry wrote (sms_retry IS NOT NULL) whose sms-retry columns the UPDATE would change.
-- CREATE OR REPLACE TRIGGER: PostgreSQL 14 and later. On a partitioned table the trigger is
-- cloned to every partition, present and future.
CREATE OR REPLACE TRIGGER sms_retry_guard
    BEFORE UPDATE OF sms_retry, retry_count, max_retries, next_retry_at, final_status,
                     delivery_confirmed_at, twilio_message_sid
    ON sms_usage_logs
    FOR EACH ROW
    WHEN (OLD.sms_retry IS NOT NULL
          AND (NEW.sms_retry, NEW.retry_count, NEW.max_retries, NEW.next_retry_at, NEW.final_status,
               NEW.delivery_confirmed_at, NEW.twilio_message_sid)
              IS DISTINCT FROM (OLD.sms_retry, OLD.retry_count, OLD.max_retries, OLD.next_retry_at, OLD.final_status,
                                OLD.delivery_confirmed_at, OLD.twilio_message_sid))
    EXECUTE FUNCTION sms_retry_guard();

-- The move, marked on sms-retry's column until it is done (a file stopped half-way is run again).
COMMENT ON COLUMN sms_usage_logs.sms_retry IS 'sms-retry: added by migration 002 (009 moving state from sms_metadata.retry)';

-- One statement per 1,000 pages (8 MB) of every partition at once, each its own transaction: a
-- TID range scan (PostgreSQL 14+) reads only its pages and picks the rows, which are then
-- updated by id, so a row the router updates meanwhile is moved from its newest version
-- wherever that lies (UPDATE re-reads it), its other sms_metadata keys as the router wrote them.
-- Row locks only, one batch at a time, for milliseconds.
SELECT format($sql$UPDATE sms_usage_logs
    SET sms_retry = (sms_metadata -> 'retry') || '{"rev": 1}'::jsonb, sms_metadata = sms_metadata - 'retry'
    WHERE id IN (SELECT id FROM sms_usage_logs WHERE ctid >= '(%s,0)'::tid AND ctid < '(%s,0)'::tid
                   AND sms_retry IS NULL AND jsonb_typeof(sms_metadata -> 'retry') = 'object')
      AND sms_retry IS NULL AND jsonb_typeof(sms_metadata -> 'retry') = 'object'$sql$, page, page + 1000)
FROM generate_series(0, (SELECT coalesce(max(pg_relation_size(relid) / current_setting('block_size')::bigint), 0)
                         FROM pg_partition_tree('sms_usage_logs') WHERE isleaf), 1000) AS page
\gexec

-- A row the router updated onto a page already passed while the batches ran: one last pass,
-- which reads the table and locks only the few rows it moves.
UPDATE sms_usage_logs
SET sms_retry = (sms_metadata -> 'retry') || '{"rev": 1}'::jsonb, sms_metadata = sms_metadata - 'retry'
WHERE sms_retry IS NULL AND jsonb_typeof(sms_metadata -> 'retry') = 'object';

COMMENT ON COLUMN sms_usage_logs.sms_retry IS 'sms-retry: added by migration 002';

-- Adoption (run --adopt-failures), version 3: failed outbound rows with no sms-retry state.
-- Sources/SMSRetry/Store/Queries.swift repeats the predicate word for word. Change one, change both.
-- The router's every INSERT and UPDATE (a HOT one too) opens each index of the table and copies
-- its predicate's expression tree, and a simple-protocol statement has the planner test each
-- predicate as well (PostgreSQL keeps none of this between statements): what costs the router is
-- the size of the tree, not what it computes. So the direction test,
-- sms_retry_direction(message_direction) = 'outbound' (005), is a plpgsql function, which
-- PostgreSQL does not inline: one node where the rule written out (lower, btrim, a list of four)
-- was a dozen, and the function's inlined CASE (version 2) many more. It is called for a row only
-- when the cheap tests before it hold, so for a failed row sms-retry has not taken up: per row,
-- at INSERT or non-HOT UPDATE time, not per statement.
CREATE OR REPLACE FUNCTION sms_retry_is_outbound(direction text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
BEGIN
    RETURN lower(btrim(direction, E' \t\r\n')) IN ('outbound', 'outbound-api', 'outbound-reply', 'outbound-call');
END
$fn$;
COMMENT ON FUNCTION sms_retry_is_outbound(text) IS 'sms-retry: whether a message_direction is outbound (sms_retry_direction = ''outbound''), not inlined, for the adoption index (migration 009)';

SELECT sms_retry_index_statements('sms_usage_logs', 'sms_usage_logs_retry_adopt_v3_idx',
    $def$(created_at) WHERE success = false AND retry_count = 0 AND next_retry_at IS NULL AND sms_retry IS NULL
      AND sms_retry_is_outbound(message_direction)$def$)
WHERE to_regclass('sms_usage_logs_retry_work_idx') IS NULL   -- 011's work index serves adoption since
\gexec

SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_retry_adopt_v2_idx')
\gexec

-- The opt-out index, version 4: Twilio's 21610 as sms-retry recorded it in its own column.
-- Its predicate is a little wider than the events it serves, and cheap for the router's
-- statements, each of which copies it (and, simple protocol, plans it) anew: any row not written
-- 'outbound' whose body is an opt-out or opt-in word (so every inbound one, in any spelling of
-- the direction), and any row with a 21610. The lookup (Queries.swift, optOutPredicate) adds the
-- direction rule to each arm, which the planner proves implies this predicate, and reads only
-- the rows it wants. The router's own outbound row is out after one comparison, with no
-- direction rule and no regular expression; the rows the width lets in are outbound messages
-- whose whole body is such a word, written with another spelling of 'outbound'. The word test is
-- sms_retry_is_opt_word, a plpgsql function (not inlined) around sms_retry_opt_keyword: a few
-- nodes in place of the inlined CASE of regular expressions and lists (on sms_retry_direction
-- in both arms, as first drafted, the predicate cost the router's INSERT 123k instructions,
-- callgrind, prepared; with the CASE inlined, 49k).
--
-- The words stay in sms_retry_opt_keyword alone (008): the wrapper only calls it, so the index's
-- fingerprint, sms_retry_opt_out_index_mark() (the md5 of sms_retry_opt_keyword's body), still
-- says which words the index was built with, and a change of words is still rebuilt by
-- sms_retry_opt_out_index_statements (REINDEX). The call names the function's schema, for an
-- index predicate is also evaluated with an empty search_path (pg_restore, REINDEX by hand).
DO $do$
BEGIN
    EXECUTE format($fn$CREATE OR REPLACE FUNCTION sms_retry_is_opt_word(content text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $body$
BEGIN
    RETURN %I.sms_retry_opt_keyword(content) IS NOT NULL;
END
$body$$fn$, (SELECT pronamespace::regnamespace::text FROM pg_proc WHERE oid = 'sms_retry_opt_keyword(text)'::regprocedure));
END
$do$;
COMMENT ON FUNCTION sms_retry_is_opt_word(text) IS 'sms-retry: whether a message is an opt-out or opt-in word (sms_retry_opt_keyword IS NOT NULL), not inlined, for the opt-out index (migration 009)';

CREATE OR REPLACE FUNCTION sms_retry_opt_out_index_statements(tbl regclass) RETURNS SETOF text
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    idx regclass := to_regclass('sms_usage_logs_opt_out_v4_idx');
BEGIN
    IF idx IS NULL OR NOT (SELECT indisvalid FROM pg_index WHERE indexrelid = idx) THEN
        RETURN QUERY SELECT sms_retry_index_statements(tbl, 'sms_usage_logs_opt_out_v4_idx',
            $def$(phone_number)
            WHERE (message_direction <> 'outbound' AND sms_retry_is_opt_word(message_content))
               OR sms_retry ->> 'error_code' = '21610'$def$);
    ELSIF obj_description(idx, 'pg_class') IS DISTINCT FROM sms_retry_opt_out_index_mark() THEN
        RETURN NEXT format('REINDEX INDEX CONCURRENTLY %s', idx);
    END IF;
    RETURN NEXT format('COMMENT ON INDEX %I IS %L', 'sms_usage_logs_opt_out_v4_idx', sms_retry_opt_out_index_mark());
END
$fn$;
COMMENT ON FUNCTION sms_retry_opt_out_index_statements(regclass) IS 'sms-retry: plans the opt-out index build or rebuild (migration 009)';

SELECT sms_retry_opt_out_index_statements('sms_usage_logs')
\gexec

SELECT sms_retry_index_drop_statements('sms_usage_logs', 'sms_usage_logs_opt_out_v3_idx')
\gexec

-- A change to sms-retry's columns by hand (an operator's fix, a test moving a row's time) passes
-- the guard when the same UPDATE sets sms_retry = sms_retry_step(sms_retry): the revision
-- stepped by one, a row sms-retry never wrote left as it is.
CREATE OR REPLACE FUNCTION sms_retry_step(state jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT state || jsonb_build_object('rev', coalesce((state ->> 'rev')::bigint, 0) + 1)
$fn$;
COMMENT ON FUNCTION sms_retry_step(jsonb) IS 'sms-retry: sms_retry with its revision stepped, for an UPDATE by hand of its columns (migration 009)';
