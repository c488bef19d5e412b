/// Every runtime statement's text, in one place: `$n` placeholders only, named noun-then-verb.
/// The store runs them only as `TypedStatement`s (`TypedStatements.swift`: one type per
/// statement, its parameters typed, its row decoded once); an integration test PREPAREs each.
/// A shared fragment (`duePredicate(now:)`, `optOutLatest(phone:)`, `sentEpoch(now:)`) takes
/// the placeholder of the statement it is composed into; nothing is substituted into SQL text.
///
/// sms-retry's state lives in its own column, `sms_retry` (a JSON object); `sms_metadata` is the
/// router's and is only read (the original message's sender and content, its kind, a code).
/// Every statement that writes sms-retry's columns steps `sms_retry.rev` by one (`Queries.state`):
/// migration 009's guard undoes any other write to them (a router's stale whole-row write).
/// `success` is only ever set from false to true (an accepted resend, a delivery); the router's
/// other columns are never written.
///
/// Every statement that reads the time takes a "now" parameter (`NULL` = the server's `now()`):
/// the store's `SMSRetryClock.statementNow` (a typed statement's `now: Date?`), so a test's fixed
/// instant reaches the SQL as well as the Swift.
enum Queries {
    /// The row's `sms_retry` as an object (`{}` before sms-retry first wrote the row).
    static let retry = "coalesce(s.sms_retry, '{}'::jsonb)"

    /// The value sms-retry writes into `sms_retry`: `object` with the revision stepped by one,
    /// which is what tells migration 009's guard that the write is sms-retry's own.
    static func state(_ object: String) -> String {
        "(\(object)) || jsonb_build_object('rev', coalesce((s.sms_retry ->> 'rev')::bigint, 0) + 1)"
    }

    /// `retry.history` as an array.
    static let history = """
        (CASE WHEN jsonb_typeof(\(retry) -> 'history') = 'array' THEN \(retry) -> 'history' ELSE '[]'::jsonb END)
        """

    /// Rows waiting for a retry whose time has come. The partial index
    /// `sms_usage_logs_retry_work_idx` (migration 011) holds, in `next_retry_at` order, the rows
    /// with `success = false AND next_retry_at IS NOT NULL` (this arm of its predicate, word for
    /// word) and then the unadopted ones (`unadoptedPredicate`).
    /// `now` is the statement's own "now" parameter (`$3`): the predicate is composed into each
    /// statement with its placeholder, never substituted into finished text.
    static func duePredicate(now: String) -> String {
        """
        success = false AND next_retry_at IS NOT NULL \
        AND next_retry_at <= coalesce(\(now)::timestamptz, now()) AND retry_count < max_retries
        """
    }

    /// Claims up to $1 due rows for $2 seconds (the lease) for run $4; $3 = now; $5 = only
    /// unknown-fate rows; $6 = the `MessageKeys` paths.
    ///
    /// `FOR UPDATE SKIP LOCKED` lets concurrent runs take disjoint rows; pushing `next_retry_at`
    /// to the end of the lease takes the row out of the due set once this statement commits,
    /// which happens before anything is sent. A run that dies leaves its rows due again when the
    /// lease ends; `retry.lease` records who claimed the row and for which attempt. A claim that
    /// finds such a lease (`previous_lease`: its run stopped before recording anything) turns it
    /// into `retry.uncertain` in the same write, so the doubt outlives this claim whatever
    /// becomes of it (a hand-back, a release, another dead run): `since` stays the earliest
    /// send that may have created a message, `counted` whether the last uncertain send recorded
    /// was counted in `retry_count`, `lease_at` when the last dead run claimed the row.
    static let claimDue = """
        WITH due AS (
            SELECT id, next_retry_at AS due_at, sms_retry -> 'lease' AS previous_lease
            FROM sms_usage_logs
            WHERE \(duePredicate(now: "$3"))
              AND (NOT $5::bool OR sms_retry ? 'uncertain' OR sms_retry ? 'lease')
            ORDER BY next_retry_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        )
        UPDATE sms_usage_logs AS s
        SET next_retry_at = coalesce($3::timestamptz, now()) + make_interval(secs => $2::float8),
            sms_retry = \(state("""
                \(retry)
                || CASE WHEN jsonb_typeof(due.previous_lease) = 'object' THEN jsonb_build_object('uncertain', jsonb_strip_nulls(
                       jsonb_build_object(
                           'since', least((\(retry) -> 'uncertain' ->> 'since')::timestamptz,
                                          (due.previous_lease ->> 'claimed_at')::timestamptz),
                           -- written before `counted` existed, a doubt was always a counted send
                           'counted', coalesce((\(retry) -> 'uncertain' ->> 'counted')::bool, \(retry) ? 'uncertain'),
                           'router', \(retry) -> 'uncertain' -> 'router',
                           'lease_at', (due.previous_lease ->> 'claimed_at')::timestamptz)))
                   ELSE '{}'::jsonb END
                || jsonb_build_object('lease',
                jsonb_build_object('run', $4::text, 'claimed_at', coalesce($3::timestamptz, now()),
                                   'attempt', s.retry_count + 1))
                """))
        FROM due
        WHERE s.id = due.id
        RETURNING s.id, s.phone_number, s.message_direction, s.message_content, s.retry_count,
                  s.max_retries, s.next_retry_at::text AS lease_until,
                  due.previous_lease::text AS previous_lease, extract(epoch FROM due.due_at)::float8 AS due_epoch,
                  extract(epoch FROM (s.sms_retry -> 'uncertain' ->> 'since')::timestamptz)::float8
                      AS uncertain_since_epoch,
                  coalesce((s.sms_retry -> 'uncertain' ->> 'counted')::bool, true) AS uncertain_counted,
                  coalesce((s.sms_retry -> 'uncertain' ->> 'router')::bool, false) AS uncertain_router,
                  extract(epoch FROM (s.sms_retry -> 'uncertain' ->> 'lease_at')::timestamptz)::float8
                      AS uncertain_lease_epoch,
                  s.twilio_message_sid AS sid,
                  -- the original message's sender and content, at the policy's key paths ($6)
                  \((1...MessageKeys.names.count).map { "(s.sms_metadata #> string_to_array(($6::text[])[\($0)], '.'))::text AS meta_\($0)" }.joined(separator: ", ")),
                  extract(epoch FROM sms_retry_router_time(coalesce($3::timestamptz, now())) - s.created_at)::float8 AS age_seconds,
                  sms_retry_segments(s.message_content) AS segments,
                  (\(optOutLatest(phone: "s.phone_number"))) AS opt_out
        """

    /// The fleet's spend is counted and reserved under this transaction-scoped advisory lock
    /// ($1 = its class, `RetryStore.spendLockClass`; key 0): one claim at a time counts what is
    /// left of the budget and takes its rows within it, so concurrent runs cannot both spend the
    /// last of it. Released at COMMIT; a pooler in transaction mode keeps it (it is the transaction's).
    /// Also JIT off for the rest of the claim's transaction (`set_config(…, true)`: the transaction's
    /// own, so a pooler in transaction mode hands back a clean session): the count below reads
    /// tens of thousands of rows, which puts it past `jit_above_cost`, and compiling it cost
    /// ~50 ms of a ~250 ms count (100k resent rows, benchmarks/spend-claim.sh).
    static let spendLock = "SELECT pg_advisory_xact_lock($1::int, 0), set_config('jit', 'off', true)"

    /// The fleet's resends so far, per range (`sms_retry.spend.range`; '' for rows resent before
    /// the spend guard): today's (since $2, the budget day's start) and their estimated cost, and
    /// the last hour's. A resend is a history entry of a request Twilio answered or may have
    /// taken (`sent`, `rejected`, `transport_error`, `http_error`, and `pumping_held` with Twilio's
    /// code and no SID: a create Twilio refused, not a status about a resend already counted),
    /// plus a live claim that reserved one (`sms_retry.lease.reserved`: being sent, not yet
    /// recorded). A rejected request costs nothing at Twilio, but counting every request keeps
    /// the count what an operator means by resends, and the cost an upper estimate. $1 now, $3 how far back a resent
    /// row can have been created (the longest maximum age, seconds), $4 the default price per
    /// segment for rows with no `sms_retry.spend.cost`. The rows read: resent ones (`retry_count`),
    /// claimed ones, and those the guard ever let go (`sms_retry.spend`: a pumping block leaves
    /// `retry_count` as it was). Reads the failed-rows index of 011
    /// (`sms_usage_logs_retry_failed_idx`: `success = false OR retry_count > 0`, by `created_at`):
    /// every resent row is in it, and no index is added for the router's statements to maintain.
    static let spendSoFar = """
        SELECT r.range, sum(r.today + r.reserved)::bigint AS resends_today,
               sum((r.today + r.reserved) * r.cost)::float8 AS cost_today,
               sum(r.hour + r.reserved)::bigint AS resends_hour
        FROM (
            SELECT coalesce(s.sms_retry -> 'spend' ->> 'range', '') AS range,
                   coalesce((s.sms_retry -> 'spend' ->> 'cost')::float8, sms_retry_segments(s.message_content) * $4::float8) AS cost,
                   (s.next_retry_at > coalesce($1::timestamptz, now())
                    AND coalesce(s.sms_retry -> 'lease' ? 'reserved', false))::int AS reserved,
                   c.today, c.hour
            FROM sms_usage_logs AS s
            CROSS JOIN LATERAL (
                SELECT count(*) FILTER (WHERE (h.e ->> 'at')::timestamptz >= $2::timestamptz) AS today,
                       count(*) FILTER (WHERE (h.e ->> 'at')::timestamptz >= coalesce($1::timestamptz, now()) - interval '1 hour') AS hour
                FROM jsonb_array_elements(CASE WHEN jsonb_typeof(s.sms_retry -> 'history') = 'array'
                                               THEN s.sms_retry -> 'history' ELSE '[]'::jsonb END) AS h(e)
                WHERE h.e ->> 'outcome' IN ('sent', 'rejected', 'transport_error', 'http_error')
                   OR (h.e ->> 'outcome' = 'pumping_held' AND h.e ? 'code' AND NOT h.e ? 'sid')
            ) AS c
            WHERE (s.success = false OR s.retry_count > 0)
              AND s.created_at >= sms_retry_router_time($2::timestamptz) - make_interval(secs => $3::float8)
              AND s.created_at < sms_retry_router_time(coalesce($1::timestamptz, now())) + interval '1 day'
              AND (s.retry_count > 0 OR s.sms_retry ? 'lease' OR s.sms_retry ? 'spend')
              -- A history entry is written by the record that sets `updated_at`, never later than
              -- it: a row sms-retry last wrote before both windows holds none of their resends,
              -- and its history is not unpacked (a row from before `updated_at` is read whole).
              AND (coalesce((s.sms_retry ->> 'updated_at')::timestamptz
                            >= least($2::timestamptz, coalesce($1::timestamptz, now()) - interval '1 hour'), true)
                   OR (s.next_retry_at > coalesce($1::timestamptz, now()) AND coalesce(s.sms_retry -> 'lease' ? 'reserved', false)))
        ) AS r
        GROUP BY r.range
        """

    /// Pending rows the spend guard holds, by reason and number (`health` names their ranges):
    /// the work index's arm of `duePredicate` (`success = false AND next_retry_at IS NOT NULL`).
    static let spendHeld = """
        SELECT sms_retry ->> 'reason' AS reason, phone_number, count(*) AS rows
        FROM sms_usage_logs
        WHERE success = false AND next_retry_at IS NOT NULL
          AND sms_retry ->> 'reason' IN ('budget_held', 'prefix_held', 'pumping_held')
        GROUP BY 1, 2
        """

    /// The numbers of the newest 10,000 outbound messages (`check`'s countries line): a backward
    /// walk of the primary key, not a read of the table.
    static let recentRecipients = """
        SELECT phone_number FROM (
            SELECT phone_number, message_direction FROM sms_usage_logs ORDER BY id DESC LIMIT 10000
        ) AS recent
        WHERE sms_retry_direction(message_direction) = 'outbound'
        """

    /// Reserves the resends the spend guard allowed at a claim, in the claim's transaction: each
    /// row ($1 ids, still under this run's lease $5) gets `sms_retry.spend` (its country $2,
    /// range $3 and estimated cost $4, which later counts read) and `sms_retry.lease.reserved`,
    /// which `spendSoFar` counts until the record removes the lease with the send's history entry.
    static let spendReserve = """
        UPDATE sms_usage_logs AS s
        SET sms_retry = \(state("""
            \(retry) || jsonb_build_object(
                'spend', jsonb_strip_nulls(jsonb_build_object('country', r.country, 'range', r.range, 'cost', r.cost)),
                'lease', coalesce(\(retry) -> 'lease', '{}'::jsonb) || jsonb_build_object('reserved', r.cost))
            """))
        FROM unnest($1::bigint[], $2::text[], $3::text[], $4::float8[], $5::timestamptz[]) AS r(id, country, range, cost, lease_until)
        WHERE s.id = r.id AND s.next_retry_at = r.lease_until
        """

    /// The opt-out events: inbound opt-out and opt-in words (`sms_retry_is_opt_word`, migration
    /// 009: `sms_retry_opt_keyword`, the one list of them, IS NOT NULL, in a function PostgreSQL
    /// does not inline) and outbound messages refused with 21610. Each arm is the matching arm of
    /// the opt-out index's predicate (migration 009, `sms_usage_logs_opt_out_v4_idx`), word for
    /// word, and the direction rule: the planner proves it implies the index's wider predicate
    /// (kept small for the router's statements, which copy it each time) and uses the index.
    static let optOutPredicate = """
        (o.message_direction <> 'outbound' AND sms_retry_is_opt_word(o.message_content) \
        AND sms_retry_direction(o.message_direction) = 'inbound') \
        OR (o.sms_retry ->> 'error_code' = '21610' AND sms_retry_direction(o.message_direction) = 'outbound')
        """

    /// Whether the number `phone` (an SQL expression: the claim's `s.phone_number`) has opted out: its latest opt-out or opt-in event is an opt-out
    /// (an inbound opt-out word, or a 21610 Twilio gave for it, dated when it was recorded).
    /// Returns the event (the word as sent, less spaces, upper case: 'STOP', 'OPTOUT'; or
    /// '21610') or NULL. Reads migration 008's index.
    static func optOutLatest(phone: String) -> String {
        """
        SELECT CASE WHEN e.meaning = 'in' THEN NULL ELSE e.event END FROM (
            SELECT CASE WHEN sms_retry_direction(o.message_direction) = 'outbound' THEN 'out'
                        ELSE sms_retry_opt_keyword(o.message_content) END AS meaning,
                   CASE WHEN sms_retry_direction(o.message_direction) = 'outbound' THEN '21610'
                        ELSE upper(regexp_replace(o.message_content, '\\s', '', 'g')) END AS event,
                   CASE WHEN sms_retry_direction(o.message_direction) = 'outbound'
                        THEN coalesce(sms_retry_router_time((o.sms_retry ->> 'updated_at')::timestamptz), o.created_at)
                        ELSE o.created_at END AS at, o.id
            FROM sms_usage_logs AS o
            WHERE o.phone_number = \(phone) AND (\(optOutPredicate))
        ) AS e ORDER BY e.at DESC NULLS LAST, e.id DESC LIMIT 1
        """
    }

    /// The due rows a run would claim, without claiming them ($1 limit, $2 now, $3 the kind's
    /// key path): `--dry-run`.
    static let dueList = """
        SELECT id, phone_number, message_direction, retry_count, max_retries,
               next_retry_at::text AS next_retry_at,
               sms_retry ->> 'error_code' AS error_code,
               extract(epoch FROM sms_retry_router_time(coalesce($2::timestamptz, now())) - created_at)::float8 AS age_seconds,
               (sms_metadata #> string_to_array($3::text, '.'))::text AS kind,
               sms_retry_segments(message_content) AS segments
        FROM sms_usage_logs
        WHERE \(duePredicate(now: "$2"))
        ORDER BY next_retry_at
        LIMIT $1
        """

    /// The report functions of migration 015, as the library calls them: its clock (a "now" parameter, NULL =
    /// the server's now()) and its policy (`RetryPolicy.sqlJSON`) where a decision needs one.
    /// Each answer is the function's jsonb as columns, its `next_retry_at` in seconds since 1970.
    static func report(_ call: String) -> String {
        """
        SELECT r ->> 'result' AS result, (r ->> 'log_id')::bigint AS log_id, (r ->> 'attempt')::int AS attempt,
               (r ->> 'attempts')::int AS attempts, r ->> 'reason' AS reason, r ->> 'meaning' AS meaning,
               r ->> 'status' AS status, r ->> 'current' AS current,
               extract(epoch FROM (r ->> 'next_retry_at')::timestamptz)::float8 AS next_epoch
        FROM \(call) AS r
        """
    }
    static let reportFailure = report("sms_retry_report_failure_at($1::bigint, $2::integer, $3::text, $4::timestamptz, $5::jsonb)")
    static let reportSent = report("sms_retry_report_sent_at($1::bigint, $2::text, $3::timestamptz)")
    static let reportStatus = report("sms_retry_report_status_at($1::text, $2::text, $3::integer, $4::timestamptz, $5::jsonb)")
    static let reportCancel = report("sms_retry_cancel_at($1::bigint, $2::text, $3::timestamptz)")
    static let reportRetryNow = report("sms_retry_retry_now_at($1::bigint, $2::timestamptz)")

    /// When the router's send of the row started, in seconds since 1970: its created_at on the
    /// router's clock, less the processing time it logged (a send that timed out after 30 s is
    /// logged 30 s after Twilio may have created it).
    /// `now` is the statement's "now" placeholder.
    static func sentEpoch(now: String) -> String {
        """
        extract(epoch FROM coalesce(\(now)::timestamptz, now()))::float8 \
        - extract(epoch FROM sms_retry_router_time(coalesce(\(now)::timestamptz, now())) - created_at)::float8 \
        - greatest(coalesce(processing_time_ms, 0), 0) / 1000.0 AS sent_epoch
        """
    }

    /// Up to $3 pending retries whose message is older than $1 seconds and not in flight ($2
    /// now), locked for closing (`expire`, batch after batch: one statement over every stale row
    /// grows with the backlog past a DBA's `statement_timeout`). Reads the due-rows index.
    static let staleLock = """
        SELECT id, created_at::text AS created_at, retry_count, max_retries FROM sms_usage_logs
        WHERE \(stalePredicate)
        LIMIT $3
        FOR UPDATE SKIP LOCKED
        """

    /// The rows `staleLock` would close, read only (`expire --dry-run`): ($1 max age in seconds,
    /// $2 now, $3 the id after which to list, $4 how many).
    static let staleList = """
        SELECT id, created_at::text AS created_at, retry_count, max_retries FROM sms_usage_logs
        WHERE \(stalePredicate) AND id > $3::bigint
        ORDER BY id
        LIMIT $4
        """

    /// Pending retries of messages older than $1 seconds at $2, not in flight.
    static let stalePredicate = """
        success = false AND next_retry_at IS NOT NULL
          AND created_at < sms_retry_router_time(coalesce($2::timestamptz, now())) - make_interval(secs => $1::float8)
          AND NOT (next_retry_at > coalesce($2::timestamptz, now()) AND coalesce(sms_retry ? 'lease', false))
        """

    /// Rows due now (for the metrics file; the same predicate as the claim).
    static let dueCount = """
        SELECT count(*) AS due FROM sms_usage_logs
        WHERE \(duePredicate(now: "$1"))
        """

    /// Records a batch of outcomes in one statement: one array per column, one element per row.
    ///
    /// kind: `sent` (success, final_status 'sent', no retry pending), `retry` (scheduled after
    /// `delay` seconds; a closed row is reopened), `failed` (closed: final_status 'failed', reason
    /// in `sms_retry`), `release` (handed back unsent: due again after `delay`, nothing counted,
    /// no history), `delivered` (Twilio confirmed delivery: success, `delivery_confirmed_at`,
    /// nothing pending), `progress` (a delivery status on the way: `sms_retry` only).
    /// The router's word wins: a run's outcome (`lease_until` set) on a row whose `success` became
    /// true after the claim (the router's word, `mark-sent`, a delivered callback) never turns it
    /// back: `retry`, `release` and `failed` become `confirmed` (`kind` below): nothing pending,
    /// reason `router_confirmed`, `success` and a `delivered` left as they are. Other writes set
    /// `success` as their kind says: Twilio's `undelivered` for the row's message (a status) makes
    /// it false; the router's own reports and the operator's commands refuse a row whose
    /// `success` is true before they get here.
    /// counted: whether this outcome used an attempt (`retry_count + 1`).
    /// final_status: overrides the kind's (e.g. 'undelivered' from a callback).
    /// delivery: merged into `sms_retry.delivery` (the message's last known Twilio status) when
    /// set; replaces it when it is about another SID.
    /// uncertain: NULL keeps `sms_retry.uncertain` (a send whose fate Twilio must be asked about),
    /// '' removes it, a JSON object (`since`, `counted`, `router`) sets it and marks the history
    /// entry `uncertain`; `sent`, `failed`, `delivered` and `confirmed` always remove it.
    /// amend: this outcome is what became of the last uncertain attempt, already counted: its
    /// history entry is completed (outcome, SID, code) instead of a new one being added.
    /// lease_until: when set, the row is only written while it still carries this run's lease,
    /// so a run that overstayed its lease cannot clobber a newer claimer's outcome.
    /// $1 = now, $2 = how many history entries to keep, then one array per column of
    /// `Outcome.recordColumns`, in its order.
    static let outcomesRecord: String = {
        let kind = "(CASE WHEN s.success AND o.lease_until IS NOT NULL AND o.kind IN ('retry', 'release', 'failed') THEN 'confirmed' ELSE o.kind END)"
        return """
        UPDATE sms_usage_logs AS s
        SET success = CASE WHEN o.kind IN ('sent', 'delivered') THEN true
                           WHEN o.kind IN ('release', 'progress') OR o.lease_until IS NOT NULL THEN s.success ELSE false END,
            final_status = CASE WHEN \(kind) = 'confirmed' THEN (CASE WHEN s.final_status = 'delivered' THEN 'delivered' ELSE 'sent' END)
                                ELSE coalesce(o.final_status, CASE o.kind WHEN 'sent' THEN 'sent' WHEN 'failed' THEN 'failed'
                                WHEN 'delivered' THEN 'delivered'
                                WHEN 'retry' THEN (CASE WHEN s.final_status = 'failed' THEN 'unknown' ELSE s.final_status END)
                                ELSE s.final_status END) END,
            delivery_confirmed_at = CASE WHEN o.kind = 'delivered'
                                         THEN coalesce(s.delivery_confirmed_at, coalesce($1::timestamptz, now()))
                                         ELSE s.delivery_confirmed_at END,
            twilio_message_sid = coalesce(o.sid, s.twilio_message_sid),
            retry_count = s.retry_count + o.counted::int,
            max_retries = coalesce(o.max_retries, s.max_retries),
            next_retry_at = CASE WHEN \(kind) IN ('retry', 'release')
                                 THEN coalesce($1::timestamptz, now()) + make_interval(secs => o.delay)
                                 WHEN o.kind = 'progress' THEN s.next_retry_at END,
            sms_retry = \(state("""
                (\(retry) - 'lease' - (CASE WHEN o.kind IN ('retry', 'sent', 'delivered') THEN 'reason' ELSE '' END)
                          - (CASE WHEN o.uncertain IS NOT NULL OR \(kind) IN ('sent', 'failed', 'delivered', 'confirmed')
                                  THEN 'uncertain' ELSE '' END))
                || jsonb_strip_nulls(jsonb_build_object(
                       'error_code', o.error_code, 'error_message', o.error_message,
                       'strategy', o.strategy,
                       'reason', CASE WHEN \(kind) = 'confirmed' THEN 'router_confirmed' ELSE o.reason END, 'note', o.note,
                       'updated_at', coalesce($1::timestamptz, now()),
                       -- the message's Twilio status; merged while it is about the same SID
                       'delivery', (CASE WHEN jsonb_typeof(\(retry) -> 'delivery') = 'object'
                                          AND \(retry) -> 'delivery' ->> 'sid' = o.delivery::jsonb ->> 'sid'
                                         THEN \(retry) -> 'delivery' ELSE '{}'::jsonb END) || o.delivery::jsonb,
                       'uncertain', CASE WHEN o.uncertain <> '' AND \(kind) <> 'confirmed' THEN o.uncertain::jsonb END,
                       -- resends Twilio accepted (what they cost), kept as a count for the views
                       'accepted', CASE WHEN (o.counted OR o.amend) AND o.sid IS NOT NULL
                                        THEN coalesce((\(retry) ->> 'accepted')::int, 0) + 1 END))
                || CASE WHEN o.outcome IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('history',
                       jsonb_path_query_array(
                           CASE WHEN o.amend AND \(history) @? '$[*] ? (@.uncertain == true)' THEN (
                               SELECT jsonb_agg(CASE WHEN h.i = m.i
                                                     THEN (h.e - 'uncertain') || jsonb_strip_nulls(jsonb_build_object(
                                                         'outcome', o.outcome, 'code', o.error_code, 'sid', o.sid,
                                                         'note', o.note, 'found_at', coalesce($1::timestamptz, now())))
                                                     ELSE h.e END ORDER BY h.i)
                               FROM jsonb_array_elements(\(history)) WITH ORDINALITY AS h(e, i),
                                    (SELECT max(x.i) AS i FROM jsonb_array_elements(\(history)) WITH ORDINALITY AS x(e, i)
                                     WHERE x.e @> '{"uncertain": true}') AS m)
                           ELSE \(history) || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
                               'at', coalesce($1::timestamptz, now()),
                               'attempt', s.retry_count + o.counted::int,
                               'outcome', o.outcome, 'code', o.error_code, 'error', o.error_message,
                               'sid', o.sid, 'http_status', o.http_status, 'duration_ms', o.duration_ms,
                               'note', o.note, 'from', o.sender, 'uncertain', CASE WHEN o.uncertain <> '' THEN true END)))
                           END,
                           '$[last - $keep + 1 to last]', jsonb_build_object('keep', $2::int)))
                   END
                """))
        FROM unnest(\(Outcome.recordColumns.enumerated().map { "$\($0.offset + 3)::\($0.element.type)[]" }.joined(separator: ", ")))
             AS o(\(Outcome.recordColumns.map(\.name).joined(separator: ", ")))
        WHERE s.id = o.id AND (o.lease_until IS NULL OR s.next_retry_at = o.lease_until)
        RETURNING s.id, s.retry_count, extract(epoch FROM s.next_retry_at)::float8 AS next_retry_epoch
        """
    }()

    /// The router's word on claimed rows $1 since their claim: those it confirmed (`success` is
    /// true: its own word, `mark-sent`, a delivered callback) or deleted. Read right before the
    /// rows are sent, and for rows whose outcome a record could not write.
    static let routerWord = """
        SELECT i.id, s.id IS NULL AS deleted
        FROM unnest($1::bigint[]) AS i(id) LEFT JOIN sms_usage_logs AS s ON s.id = i.id
        WHERE s.id IS NULL OR s.success
        """

    /// Whether a row other than $2 holds message $1 (reads the SID index of 003).
    static let sidHeld = """
        SELECT EXISTS (SELECT 1 FROM sms_usage_logs WHERE twilio_message_sid = $1 AND id <> $2) AS held
        """

    /// The adoption arm of the work index's predicate (migration 011), word for word so the
    /// planner uses it. Its direction test, `sms_retry_is_outbound(message_direction)`, is
    /// `sms_retry_direction(message_direction) = 'outbound'` in a function PostgreSQL does not
    /// inline (the index costs the router's every statement less so).
    static let unadoptedPredicate = """
        success = false AND retry_count = 0 AND next_retry_at IS NULL AND sms_retry IS NULL \
        AND sms_retry_is_outbound(message_direction)
        """

    /// Locks up to $1 failed rows nobody has classified, written at least $2 seconds ago (so a
    /// router that reports through the library gets there first); $3 now.
    static let unadoptedLock = """
        SELECT id, error_message, sms_metadata::text AS metadata, \(sentEpoch(now: "$3")),
               extract(epoch FROM sms_retry_router_time(coalesce($3::timestamptz, now())) - created_at)::float8 AS age_seconds
        FROM sms_usage_logs
        WHERE \(unadoptedPredicate)
          AND created_at < sms_retry_router_time(coalesce($3::timestamptz, now())) - make_interval(secs => $2::float8)
        ORDER BY created_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED
        """

    /// How many rows adoption would take, written at least $2 seconds ago ($3 now), counted up
    /// to $1 (NULL: all): the hint of a run without `--adopt-failures` (bounded), and the rows a
    /// preview counts as expired ($2 = the maximum age). Reads only the work index.
    static let unadoptedCount = """
        SELECT count(*) AS n FROM (
            SELECT 1 FROM sms_usage_logs
            WHERE \(unadoptedPredicate)
              AND created_at < sms_retry_router_time(coalesce($3::timestamptz, now())) - make_interval(secs => $2::float8)
            LIMIT $1::bigint
        ) AS unadopted
        """

    /// The rows adoption would take that are younger than $2 seconds (so classified by their
    /// code, not closed as expired) and written at least $1 seconds ago; $3 now. Read only, for
    /// `run --dry-run --adopt-failures`.
    static let unadoptedRecent = """
        SELECT id, error_message, sms_metadata::text AS metadata,
               extract(epoch FROM sms_retry_router_time(coalesce($3::timestamptz, now())) - created_at)::float8 AS age_seconds
        FROM sms_usage_logs
        WHERE \(unadoptedPredicate)
          AND created_at < sms_retry_router_time(coalesce($3::timestamptz, now())) - make_interval(secs => $1::float8)
          AND created_at >= sms_retry_router_time(coalesce($3::timestamptz, now())) - make_interval(secs => $2::float8)
        """

    /// The sweep (`reconcile`): a chunk of at most $2 rows read down the primary key below id $1
    /// (NULL: from the top), newest ids first; how many it held, how many were created in the
    /// window ($4 seconds, $5 now), and among them the outbound rows Twilio accepted (`success`)
    /// with no final word yet (`final_status` unknown or sent), settled ($3 seconds since the
    /// router's insert, or since sms-retry's last write for a resend), not in a run's hands, with
    /// a SID (`twilio_message_sid`, else `sms_metadata` at the key path $6, none when empty).
    /// Reads the primary key and the rows it points to: no index of sms-retry's, none the
    /// router's INSERT pays for (docs/ARCHITECTURE.md, "The sweep").
    static let sweepChunk = """
        WITH chunk AS (
            SELECT id, created_at, success, final_status, message_direction, retry_count,
                   twilio_message_sid, sms_metadata, sms_retry
            FROM sms_usage_logs
            WHERE id < coalesce($1::bigint, 9223372036854775807)
            ORDER BY id DESC
            LIMIT $2
        ), edge AS (
            SELECT min(id) AS low_id, count(*) AS scanned,
                   count(*) FILTER (WHERE created_at >= sms_retry_router_time(coalesce($5::timestamptz, now()))
                                                       - make_interval(secs => $4::float8)) AS in_window
            FROM chunk
        ), found AS (
            SELECT id, coalesce(twilio_message_sid,
                                CASE WHEN cardinality($6::text[]) > 0 THEN sms_metadata #>> $6::text[] END) AS sid,
                   retry_count,
                   extract(epoch FROM coalesce($5::timestamptz, now()))::float8
                   - extract(epoch FROM sms_retry_router_time(coalesce($5::timestamptz, now())) - created_at)::float8 AS created_epoch
            FROM chunk
            WHERE success = true AND final_status IN ('unknown', 'sent')
              AND created_at >= sms_retry_router_time(coalesce($5::timestamptz, now())) - make_interval(secs => $4::float8)
              AND CASE WHEN retry_count = 0
                       THEN created_at <= sms_retry_router_time(coalesce($5::timestamptz, now())) - make_interval(secs => $3::float8)
                       ELSE coalesce((sms_retry ->> 'updated_at')::timestamptz, '-infinity'::timestamptz)
                            <= coalesce($5::timestamptz, now()) - make_interval(secs => $3::float8) END
              AND NOT coalesce(sms_retry ? 'lease', false)
              AND sms_retry_is_outbound(message_direction)
        )
        SELECT edge.low_id, edge.scanned, edge.in_window, found.id, found.sid, found.retry_count, found.created_epoch
        FROM edge LEFT JOIN found ON found.sid IS NOT NULL AND found.sid <> ''
        """

    /// The rows $1 (ids), locked for applying Twilio's statuses in one transaction: what
    /// What `sms_retry_report_status_at` reads for one callback, for a batch of the sweep's answers.
    static let statusRowsLock = """
        SELECT id, message_direction, retry_count, success, final_status,
               sms_retry -> 'delivery' ->> 'sid' AS delivery_sid,
               sms_retry -> 'delivery' ->> 'status' AS delivery_status
        FROM sms_usage_logs WHERE id = ANY($1::bigint[])
        ORDER BY id FOR UPDATE
        """

    /// A run's presence for the fleet-wide rate ($1 = the advisory-lock class): takes a free slot
    /// (a session-level advisory lock) unless this session holds one, then counts the runs
    /// holding one on this database. pg_locks needs no privilege; the lock goes with the session.
    static let runPresence = """
        WITH mine AS (
            SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int::oid
                           AND objsubid = 2 AND pid = pg_backend_pid() AND granted) AS held
        ), taken AS (
            SELECT (SELECT s FROM generate_series(0, 1023) AS s WHERE pg_try_advisory_lock($1::int, s) LIMIT 1) AS slot
            FROM mine WHERE NOT mine.held
        )
        SELECT (SELECT count(DISTINCT pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int::oid
                AND objsubid = 2 AND granted AND pid <> pg_backend_pid()
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) + 1 AS runs,
               (SELECT slot FROM taken) AS slot_taken   -- naming `taken` is what makes it run
        """

    /// Gives back this session's presence slots ($1 = the advisory-lock class).
    static let runLeave = """
        SELECT count(pg_advisory_unlock($1::int, objid::int)) AS left
        FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int::oid AND objsubid = 2
                        AND pid = pg_backend_pid() AND granted
        """

    /// The analytics views (migration 005), in the order `stats` prints them.
    static let views = ["sms_retry_overview", "sms_retry_queue", "sms_retry_by_attempt", "sms_retry_by_error_code",
                        "sms_retry_daily", "sms_retry_health", "sms_retry_spend_daily", "sms_retry_held"]

    static let health = """
        SELECT status, array_to_json(reasons)::text AS reasons, retry_success_rate, finished_retries,
               backlog, oldest_due_seconds
        FROM sms_retry_health
        """

    /// Whether this connection can write (`DatabaseAccess`): a hot standby is in recovery; a
    /// read-only endpoint or role reports transaction_read_only.
    static let serverAccess = "SELECT pg_is_in_recovery() AS in_recovery, current_setting('transaction_read_only')::bool AS read_only"

    /// A server setting ($1, e.g. statement_timeout) as this session has it, where it came from
    /// (`pg_settings.source`: user, database, configuration file, client, ...) and who the session
    /// is: for the line that names a DBA's limit (`ServerLimit`). No row for a setting this
    /// server does not have.
    static let settingSource = """
        SELECT current_setting(name) AS value, setting::float8 AS setting, unit, source,
               current_user AS role, current_database() AS database
        FROM pg_settings WHERE name = $1
        """

}
