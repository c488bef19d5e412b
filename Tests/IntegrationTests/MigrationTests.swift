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
        try await t.makeDue()
        let plan2 = try await t.query("EXPLAIN (COSTS OFF) SELECT 1 FROM sms_usage_logs AS o WHERE o.phone_number = '+14155597001' AND (\(Queries.optOutPredicate))")
            .all.compactMap { $0.string("QUERY PLAN") }.joined(separator: "\n")
        #expect(plan2.contains("sms_usage_logs_opt_out_v4_idx"), "\(plan2)")
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let summary = try await runOnce(t, twilio)
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

    @Test func anInvalidIndexFromAFailedBuildIsRebuilt() async throws {
        let t = try await TestDatabase.make()
        // What a concurrent build that failed half-way leaves behind.
        try await t.query("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'sms_usage_logs_retry_due_idx'::regclass")
        #expect(try await migrator.status(t.db).map(\.applied) == migrator.migrations.map { $0.version != 3 })
        let steps = try await migrator.up(t.db)
        #expect(steps.first { $0.version == 3 }?.action == .applied)
        #expect(try await t.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'sms_usage_logs_retry_due_idx'::regclass")[0].bool("indisvalid") == true)
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
        #expect(try await t.query("SELECT obj_description('sms_usage_logs_retry_due_idx'::regclass, 'pg_class') AS c")[0].string("c")?.hasPrefix("sms-retry") == true)
        _ = try await migrator.down(t.db, to: 1)
        #expect(try await t.query("SELECT to_regclass('sms_usage_logs_twilio_sid_idx') IS NOT NULL AS kept")[0].bool("kept") == true)
        #expect(try await t.query("SELECT to_regclass('sms_usage_logs_retry_due_idx') IS NULL AS gone")[0].bool("gone") == true)
    }

    @Test func everyRuntimeQueryPreparesAgainstTheSchema() async throws {
        let t = try await TestDatabase.make()
        for statement in Statement.allCases {
            try await t.query("PREPARE \(statement.name) AS \(statement.sql)")
        }
        // A failing statement names itself.
        do {
            _ = try await t.db.query(Statement.runPresence, ["not a number"])
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
        #expect(text.contains("sms_usage_logs_retry_due_idx"), "\(text)")
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
        let names = try await t.query("SELECT name FROM pg_prepared_statements").all.compactMap { $0.string("name") }
        #expect(names.contains("sms_retry_dueCount"), "\(names)")
        try await t.query("DEALLOCATE ALL")
        #expect(try await store.dueCount() == 0)
        #expect(try await t.query("SELECT count(*) AS n FROM pg_prepared_statements WHERE name = 'sms_retry_dueCount'")[0].int("n") == 1)
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
