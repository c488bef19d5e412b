import Foundation
import Testing
@testable import SMSRetry

@Suite struct MigrationTests {
    let migrator = try! Migrator(directory: Paths.migrations, logger: quietLogger)

    func columns(_ t: TestDatabase) async throws -> Set<String> {
        Set(try await t.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'sms_usage_logs'")
            .all.compactMap { $0.string("column_name") })
    }

    @Test func upDownUpKeepsRowsAndForeignMetadata() async throws {
        let t = try await TestDatabase.make(migrated: false)
        let first = try await migrator.up(t.db, createTable: true)
        #expect(first.allSatisfy { $0.action == .applied } && first.count == migrator.migrations.count)
        let a = try await t.insert(metadata: #"{"campaign": "otp", "nested": {"k": [1, 2]}}"#)
        let b = try await t.insert(metadata: nil)
        _ = try await t.store().recordFailure(logID: a, errorCode: 30003, errorMessage: "unreachable")

        let down = try await migrator.down(t.db, to: 1)
        #expect(down.map(\.version) == migrator.migrations.map(\.version).filter { $0 > 1 }.reversed())
        #expect(try await columns(t).isDisjoint(with: ["retry_count", "max_retries", "next_retry_at", "twilio_message_sid",
                                                       "final_status", "delivery_confirmed_at"]))
        let kept = try await t.query("SELECT count(*) AS n, (SELECT sms_metadata -> 'nested' FROM sms_usage_logs WHERE id = $1)::text AS nested FROM sms_usage_logs", [String(a)])[0]
        #expect(kept.int("n") == 2)
        #expect(kept.string("nested") == #"{"k": [1, 2]}"#)

        let again = try await migrator.up(t.db)
        #expect(again.map(\.action) == [.alreadyApplied] + Array(repeating: .applied, count: migrator.migrations.count - 1))
        let rowB = try await t.row(b)
        #expect(rowB.int("retry_count") == 0 && rowB.int("max_retries") == 3 && rowB.string("final_status") == "unknown")
        let rowA = try await t.row(a)
        #expect(rowA.string("metadata")?.contains(#""campaign": "otp""#) == true)
        #expect(try await migrator.up(t.db).allSatisfy { $0.action == .alreadyApplied }, "a rerun is harmless")
        #expect(try await migrator.status(t.db).allSatisfy(\.applied))
    }

    @Test("the opt-out words changed: the index is rebuilt concurrently, and the claim's lookup reads it")
    func changedOptOutWordsRebuildTheIndex() async throws {
        let t = try await TestDatabase.make()
        let before = try await migrator.status(t.db).allSatisfy(\.applied)
        #expect(before)
        // An operator adds ARRET (French) to the one list.
        let source = try await t.query("SELECT pg_get_functiondef('sms_retry_opt_keyword(text)'::regprocedure) AS d")[0].string("d")!
        try await t.query(source.replacingOccurrences(of: "'REVOKE', 'OPTOUT')", with: "'REVOKE', 'OPTOUT', 'ARRET')"))
        let nine = try await migrator.status(t.db).first(where: { $0.migration.version == 9 })
        #expect(nine?.applied == false, "an index built with other words is not current")
        let statements = try await t.query("SELECT sms_retry_opt_out_index_statements('sms_usage_logs') AS s").all.compactMap { $0.string("s") }
        #expect(statements.count == 2 && statements.first?.hasPrefix("REINDEX INDEX CONCURRENTLY") == true, "\(statements)")
        for statement in statements { try await t.query(statement) }
        #expect(try await migrator.status(t.db).allSatisfy(\.applied))
        // The claim's opt-out lookup finds an ARRET, through the index.
        let id = try await t.insert(phone: "+14155597001", metadata: #"{"category": "transactional"}"#)
        _ = try await t.store().recordFailure(logID: id, errorCode: 30003, errorMessage: nil)
        _ = try await t.insert(phone: "+14155597001", direction: "inbound", content: "Arret", success: true, error: nil, metadata: nil)
        let plan2 = try await t.query("EXPLAIN (COSTS OFF) SELECT 1 FROM sms_usage_logs AS o WHERE o.phone_number = '+14155597001' AND (\(Queries.optOutPredicate))")
            .all.compactMap { $0.string("QUERY PLAN") }.joined(separator: "\n")
        #expect(plan2.contains("sms_usage_logs_opt_out_v4_idx"), "\(plan2)")
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let summary = try await runOnce(t, twilio, clock: t.clockAtDue())
        #expect(summary.optedOut == 1 && summary.sent == 0, "\(summary)")
    }

    @Test func downStepsOneAtATimeAndNeverDropsATableWithRows() async throws {
        let t = try await TestDatabase.make()
        let newest = migrator.migrations.last!.version
        #expect(try await migrator.down(t.db).map(\.version) == [newest])
        #expect(try await migrator.status(t.db).map(\.applied) == migrator.migrations.map { $0.version != newest })
        _ = try await t.insert()
        await #expect(throws: MigrationError.self) { try await migrator.down(t.db, to: 0) }
        #expect(try await t.query("SELECT count(*) AS n FROM sms_usage_logs")[0].int("n") == 1, "the row survived")
        // Steps are separate: the others were reverted before 001 refused.
        #expect(try await migrator.status(t.db).map(\.applied) == migrator.migrations.map { $0.version == 1 })
        try await t.query("DELETE FROM sms_usage_logs")
        #expect(try await migrator.down(t.db, to: 0).map(\.version) == [1])
        #expect(try await t.query("SELECT to_regclass('sms_usage_logs') IS NULL AS gone")[0].bool("gone") == true)
    }

    /// sms-retry's functions (definition, settings, grants), views and the policy the SQL functions
    /// read: its value, not its body's text (data `migrate` and `policy apply` rewrite as jsonb renders it).
    func definitions(_ t: TestDatabase) async throws -> String {
        try await t.query("""
            SELECT string_agg(d, E'\n' ORDER BY d) AS defs FROM (
                SELECT pg_get_functiondef(p.oid) || coalesce(array_to_string(p.proconfig, ','), '') || coalesce(p.proacl::text, '') AS d
                FROM pg_proc p WHERE p.proname LIKE 'sms_retry%' AND p.proname <> 'sms_retry_policy'
                UNION ALL SELECT c.relname || ': ' || pg_get_viewdef(c.oid) FROM pg_class c WHERE c.relkind = 'v' AND c.relname LIKE 'sms_retry%'
                UNION ALL SELECT 'trigger: ' || pg_get_triggerdef(g.oid) FROM pg_trigger g WHERE g.tgname LIKE 'sms_retry%' AND g.tgparentid = 0
                UNION ALL SELECT 'policy: ' || sms_retry_policy()::text) AS x
            """)[0].string("defs") ?? ""
    }

    /// The migrations up to `version`, from the folder.
    func migrator(upTo version: Int) throws -> Migrator {
        let files = try FileManager.default.contentsOfDirectory(atPath: Paths.migrations)
            .filter { $0.hasSuffix(".sql") && (Int($0.prefix(3)) ?? .max) <= version }
            .map { (name: $0, text: try String(contentsOfFile: Paths.migrations + "/" + $0, encoding: .utf8)) }
        return try Migrator(files: files, source: "migrations up to \(version)", logger: quietLogger)
    }

    @Test("014's to 017's downs put back exactly the functions, triggers, views, grants and policy before them; their headers tell", arguments: [14, 15, 16, 17])
    func downRestoresTheDefinitionsBefore(version: Int) async throws {
        let t = try await TestDatabase.make(migrated: false)
        let upTo = try migrator(upTo: version)
        _ = try await migrator(upTo: version - 1).up(t.db, createTable: true)
        let before = try await definitions(t)
        #expect(try await upTo.status(t.db).last?.applied == false)
        #expect(try await upTo.up(t.db).last?.action == .applied)
        #expect(try await upTo.status(t.db).last?.applied == true)
        #expect(try await definitions(t) != before, "the up changed nothing this test sees")
        #expect(try await upTo.down(t.db).map(\.version) == [version])
        #expect(try await definitions(t) == before)
        #expect(try await upTo.status(t.db).last?.applied == false)
        #expect(try await upTo.up(t.db).last?.action == .applied, "up again after the down")
    }

    @Test func anInvalidIndexFromAFailedBuildIsRebuilt() async throws {
        let t = try await TestDatabase.make()
        // What a concurrent build that failed half-way leaves behind.
        try await t.query("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'sms_usage_logs_created_at_brin_idx'::regclass")
        #expect(try await migrator.status(t.db).map(\.applied) == migrator.migrations.map { $0.version != 11 })
        let steps = try await migrator.up(t.db)
        #expect(steps.first { $0.version == 11 }?.action == .applied)
        #expect(try await t.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'sms_usage_logs_created_at_brin_idx'::regclass")[0].bool("indisvalid") == true)
    }

    /// What `sms-retry migrate` runs from any folder is what migrations/ holds, file for file.
    @Test func theBuiltInMigrationsAreTheFiles() throws {
        let embedded = try Migrator.embedded()
        #expect(embedded.migrations.map(\.name) == migrator.migrations.map(\.name))
        for (built, file) in zip(embedded.migrations, migrator.migrations) {
            #expect(built.up.trimmingCharacters(in: .newlines) == file.up.trimmingCharacters(in: .newlines), "\(file.name).up.sql")
            #expect(built.down.trimmingCharacters(in: .newlines) == file.down.trimmingCharacters(in: .newlines), "\(file.name).down.sql")
        }
        #expect(SMSRetryVersion.commit.count == 12, "the commit: \(SMSRetryVersion.commit)")
    }

    @Test func psqlAppliesTheSameFiles() async throws {
        let t = try await TestDatabase.make(migrated: false)
        let ups = migrator.migrations.map { $0.name + ".up.sql" }
        try await psqlUpThenDown(t, migrator, upFiles: ups + [ups[2]])   // a rerun must be harmless too
        #expect(try await migrator.status(t.db).map(\.applied) == migrator.migrations.map { $0.version == 1 })
    }

    @Test("down drops only indexes an up built: one of the team's under the same name stays")
    func downKeepsAnIndexSmsRetryDidNotBuild() async throws {
        let t = try await TestDatabase.make(migrated: false)
        try await t.query(try String(contentsOfFile: Paths.migrations + "/001_baseline.up.sql", encoding: .utf8)
            .components(separatedBy: "CREATE TABLE IF NOT EXISTS").last.map { "CREATE TABLE IF NOT EXISTS" + $0 } ?? "")
        try await t.query("CREATE INDEX sms_usage_logs_twilio_sid_idx ON sms_usage_logs (id)")
        try await t.query("COMMENT ON INDEX sms_usage_logs_twilio_sid_idx IS 'ours: the billing team'")
        _ = try await migrator.up(t.db)
        #expect(try await t.query("SELECT obj_description('sms_usage_logs_retry_work_idx'::regclass, 'pg_class') AS c")[0].string("c")?.hasPrefix("sms-retry") == true)
        _ = try await migrator.down(t.db, to: 1)
        #expect(try await t.query("SELECT to_regclass('sms_usage_logs_twilio_sid_idx') IS NOT NULL AS kept")[0].bool("kept") == true)
        #expect(try await t.query("SELECT to_regclass('sms_usage_logs_retry_work_idx') IS NULL AS gone")[0].bool("gone") == true)
    }

    @Test func everyRuntimeQueryPreparesAgainstTheSchema() async throws {
        let t = try await TestDatabase.make()
        // Each prepares, and its row type decodes a row of exactly the columns the server says it
        // returns: a column its decoder reads that the SQL lacks fails here.
        for type in TypedStatements.all {
            let sql = type.sql
            try await t.query("PREPARE \(type.name) AS \(sql)")
            let columns = try await t.db.withConnection { conn throws -> [String] in try conn.describeColumns(sql) }
            do {
                try type.decodeSample(columns: columns)
            } catch {
                Issue.record("\(type.name): \(error) (it returns \(columns))")
            }
        }
        #expect(Set(TypedStatements.all.map { $0.name }).count == TypedStatements.all.count)
        // Every type declared a TypedStatement is in the list the loop above goes through.
        let declared = try FileManager.default.subpathsOfDirectory(atPath: Paths.root + "/Sources/SMSRetry")
            .filter { $0.hasSuffix(".swift") }
            .map { try String(contentsOfFile: Paths.root + "/Sources/SMSRetry/" + $0, encoding: .utf8) }
            .map { $0.components(separatedBy: ": TypedStatement {").count - 1 }.reduce(0, +)
        #expect(declared == TypedStatements.all.count, "declared \(declared), listed \(TypedStatements.all.count)")
        // The check can fail: the claim's row without one of its columns names that column.
        let claimColumns = try await t.db.withConnection { conn throws -> [String] in try conn.describeColumns(ClaimDue.sql) }
        do {
            try ClaimDue.decodeSample(columns: claimColumns.filter { $0 != "lease_until" })
            Issue.record("the claim's row decoded without lease_until")
        } catch let error as RowDecodingError {
            #expect(error == RowDecodingError(column: "lease_until", problem: .noColumn), "\(error)")
        }
        // A failing statement names itself.
        do {
            _ = try await t.db.query(RunPresence(lockClass: 0), ["not a number"])
            Issue.record("runPresence with a bad parameter should fail")
        } catch let error as DatabaseError {
            #expect(error.statement == "runPresence" && "\(error)".hasPrefix("database error 22P02 in runPresence:"), "\(error)")
        }
    }

    @Test func claimingUsesThePartialIndex() async throws {
        let t = try await TestDatabase.make()
        try await t.query("""
            INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content, success)
            SELECT 1, '+1415555' || lpad((g % 10000)::text, 4, '0'), 'outbound', 5, 'hello', g % 50 <> 0
            FROM generate_series(1, 20000) g
            """)
        try await t.query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), next_retry_at = now() - interval '1 minute' WHERE success = false")
        try await t.query("ANALYZE sms_usage_logs")
        let text = try await t.claimPlan()
        #expect(text.contains("sms_usage_logs_retry_work_idx"), "\(text)")
    }
}

@Suite struct DatabaseTests {
    @Test func aDroppedConnectionIsReportedAsLostAndReconnects() async throws {
        let t = try await TestDatabase.make()
        let pid = try await t.query("SELECT pg_backend_pid() AS pid")[0].string("pid")!
        let admin = try await Database.connect("dbname=postgres")
        try await admin.query("SELECT pg_terminate_backend($1::int)", [pid])
        do {
            try await t.query("SELECT 1")
            Issue.record("a terminated connection must fail")
        } catch let error as DatabaseError {
            #expect(error.isConnectionLoss, "\(error)")
        }
        #expect(await t.db.reconnect())
        #expect(try await t.query("SELECT 41 + 1 AS n")[0].int("n") == 42)
    }

    /// Named statements are prepared once per session; a session that lost them (a pooler's
    /// DISCARD ALL, a reconnect) prepares them again instead of failing.
    @Test func aStatementPreparedOnceSurvivesASessionThatForgotIt() async throws {
        let t = try await TestDatabase.make()
        let store = t.store()
        _ = try await store.dueCount()
        // The name carries a hash of the statement's text (PGConnection.serverName).
        let names = try await t.query("SELECT name FROM pg_prepared_statements").all.compactMap { $0.string("name") }
        #expect(names.contains { $0.hasPrefix("sms_retry_dueCount_") }, "\(names)")
        try await t.query("DEALLOCATE ALL")
        #expect(try await store.dueCount() == 0)
        #expect(try await t.query("SELECT count(*) AS n FROM pg_prepared_statements WHERE name LIKE 'sms\\_retry\\_dueCount\\_%'")[0].int("n") == 1)
    }

    @Test func serverErrorsCarryTheSQLStateButNotTheValues() async throws {
        let t = try await TestDatabase.make()
        do {
            try await t.query("SELECT $1::int", ["+14155550100"])
            Issue.record("not an int")
        } catch let error as DatabaseError {
            #expect(error.sqlState == "22003" && !error.isConnectionLoss)
            #expect(error.description == #"database error 22003: value "…" is out of range for type integer"#)
        }
    }
}

/// An installation from before migration 009, whose state is under `sms_metadata.retry`,
/// upgraded while the router writes.
@Suite struct StateMoveTests {
    let migrator = try! Migrator(directory: Paths.migrations, logger: quietLogger)

    @Test("an installation from before 009 upgrades while the router writes: its state moves to sms_retry, the views read it, the router's writes wait at most a moment, a down puts it back")
    func stateMovesOnline() async throws {
        let t = try await TestDatabase.make()
        try await t.query("""
            INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content, success, sms_metadata)
            SELECT g, '+1415559' || lpad(g::text, 4, '0'), 'outbound', 5, 'hello', g % 10 <> 0,
                   CASE WHEN g % 3 = 0 THEN NULL ELSE jsonb_build_object('campaign', 'c' || g) END
            FROM generate_series(1, 20000) g
            """)
        // Retry state of every kind: scheduled, sent by a run, closed.
        let failed = try await t.query("SELECT id FROM sms_usage_logs WHERE NOT success ORDER BY id").all.compactMap { $0.int("id") }
        for (i, id) in failed.enumerated() {
            _ = try await t.store().recordFailure(logID: id, errorCode: i % 5 == 0 ? 21211 : 30003, errorMessage: "m")
        }
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        var options = RunOptions()
        options.limit = 500
        _ = try await RetryRunner(store: t.store(clock: t.clockAtDue()), twilio: twilio.client(), options: options, logger: quietLogger).run()
        // What the views say of the retry state (nothing that moves with the clock).
        let views = """
            SELECT (SELECT json_agg(json_build_array(error_code, messages, retryable) ORDER BY error_code) FROM sms_retry_by_error_code)::text
                   || (SELECT json_build_array(failed_messages, scheduled, recovered, exhausted, pending)::text FROM sms_retry_overview)
                   || (SELECT json_agg(json_build_array(attempt, attempts, recovered) ORDER BY attempt) FROM sms_retry_by_attempt)::text AS v
            """
        let stats = try await t.query(views)[0].string("v")
        let state = "SELECT md5(string_agg(concat_ws('|', id, (sms_retry - 'rev')::text), ',' ORDER BY id)) AS d FROM sms_usage_logs WHERE sms_retry IS NOT NULL"
        let moved = try await t.query(state)[0].string("d")

        // Back to before 009: the state under sms_metadata.retry, no guard.
        #expect(try await migrator.down(t.db, to: 8).map(\.version) == migrator.migrations.map(\.version).filter { $0 > 8 }.reversed())
        #expect(try await t.count("sms_retry IS NOT NULL") == 0)
        #expect(try await t.count("sms_metadata ? 'retry'") == failed.count)
        let before = try await t.query("""
            SELECT md5(string_agg(concat_ws('|', id, (sms_metadata -> 'retry')::text), ',' ORDER BY id)) AS d FROM sms_usage_logs
            WHERE sms_metadata ? 'retry'
            """)[0].string("d")
        #expect(before == moved, "the down put back exactly what sms_retry held")

        // The router writes throughout the upgrade: one INSERT and one UPDATE of sms_metadata at a
        // time; the longest of them is what the upgrade made it wait.
        let stop = StopFlag()
        let writer = Task { () -> (writes: Int, longest: Double) in
            let db = try await Database.connect(t.conninfo)
            var writes = 0, longest = 0.0, n = 0
            while !stop.stopped {
                n += 1
                let started = ContinuousClock.now
                try await db.query("""
                    INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content, success)
                    VALUES (1, '+14155580000', 'outbound', 5, 'hello', true)
                    """)
                try await db.query("UPDATE sms_usage_logs SET sms_metadata = coalesce(sms_metadata, '{}') || jsonb_build_object('touched', $2::int) WHERE id = $1",
                                   [String(failed[n % failed.count]), String(n)])
                longest = max(longest, (ContinuousClock.now - started).seconds)
                writes += 2
            }
            return (writes, longest)
        }
        try await Task.sleep(for: .milliseconds(200))
        let up = try await migrator.up(t.db)
        try await Task.sleep(for: .milliseconds(200))
        stop.stop()
        let (writes, longest) = try await writer.value
        #expect(up.filter { $0.action == .applied }.map(\.version) == migrator.migrations.map(\.version).filter { $0 > 8 })
        #expect(try await t.count("sms_metadata ? 'retry'") == 0, "moved, not copied")
        #expect(try await t.query(state)[0].string("d") == moved, "sms_retry holds what sms_metadata.retry held")
        let touched = try await t.count("sms_metadata ? 'touched'"), campaigns = try await t.count("sms_metadata ? 'campaign'")
        #expect(touched > 0 && campaigns == 13334, "the router's keys, old and written during the move, are all there: \(touched), \(campaigns)")
        #expect(try await t.query(views)[0].string("v") == stats, "the views read the new place")
        #expect(longest < 2.0, "the router's writes waited at most the lock_timeout: \(longest) s")
        figure("stateMovesOnline", "20000 rows, \(failed.count) with state under sms_metadata.retry: migrate moved it while the router made \(writes) single-row writes, the longest \(String(format: "%.3f", longest)) s; views unchanged; down and up again: the same state")
    }
}
