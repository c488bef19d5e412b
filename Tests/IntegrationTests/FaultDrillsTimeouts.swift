import Foundation
import Testing
@testable import SMSRetry
import TwilioStandIn

/// A DBA's time limits on sms-retry's role: `statement_timeout`, `lock_timeout` and
/// `idle_in_transaction_session_timeout`, set with ALTER ROLE … SET as a DBA does.
extension FaultDrills {
    /// A runtime role (`migrate --grant-runtime`'s privileges) with these settings, as a DBA
    /// would give it; returns the conninfo that logs in as it.
    func timeoutRole(_ t: TestDatabase, _ name: String, _ settings: [(String, String)]) async throws -> String {
        let role = name + "_" + t.name.suffix(8)
        // Identifiers made here from fixed words and hex digits; the values are fixed too.
        try await t.query("CREATE ROLE \(role) LOGIN")
        _ = try await Migrator(directory: Paths.migrations, logger: quietLogger).grantRuntime(t.db, to: role)
        for (setting, value) in settings { try await t.query("ALTER ROLE \(role) SET \(setting) = '\(value)'") }
        return "dbname=\(t.name) user=\(role)"
    }

    @Test("ordinary timeouts on the role (500 ms): a run over 20,000 due rows completes, every row recorded once")
    func ordinaryTimeouts() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let numbers = try await t.seedDue(20_000, prefix: "+1415710")
        let url = try await timeoutRole(t, "ordinary", [("statement_timeout", "500ms"), ("lock_timeout", "500ms"),
                                                        ("idle_in_transaction_session_timeout", "500ms")])
        let clock = ContinuousClock()
        let started = clock.now
        let result = try await runCLI(["run", "--database-url", url, "--batch-size", "500", "--concurrency", "32", "--adopt-failures"],
                                      environment: twilio.environment)
        let elapsed = clock.now - started
        let perNumber = await twilio.acceptedPerNumber()
        let duplicates = perNumber.values.reduce(0) { $0 + max(0, $1 - 1) }
        #expect(result.code == 0, "\(result.code) \(result.out) \(result.err.suffix(800))")
        #expect(summaryValue(result.out, "sent") == 20_000, "\(result.out)")
        #expect(Set(perNumber.keys) == Set(numbers) && duplicates == 0)
        #expect(try await t.count("success AND retry_count = 1 AND next_retry_at IS NULL") == 20_000, "every row recorded")
        #expect(try await t.halfUpdated() == 0)
        figure("timeouts", "ordinary (statement_timeout, lock_timeout, idle_in_transaction_session_timeout = 500ms on the role), 20000 due rows, --batch-size 500: exit \(result.code), \(result.out.trimmingCharacters(in: .whitespacesAndNewlines)); rows left unrecorded 0; duplicates \(duplicates); wall \(elapsed.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1))))")
    }

    @Test("tiny timeouts on the role (50 ms) and a router holding rows past them: exit 3 with the summary and the setting's line; afterwards 0 sent twice, 0 lost, every accepted message recorded")
    func tinyTimeouts() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let numbers = try await t.seedDue(20_000, prefix: "+1415711")
        let url = try await timeoutRole(t, "tiny", [("statement_timeout", "50ms"), ("lock_timeout", "20ms"),
                                                    ("idle_in_transaction_session_timeout", "50ms")])
        // The router: once the run has claimed rows, a transaction of its own holds three of them
        // (an UPDATE it is slow to commit) for longer than the run tries their record.
        let router = try await Database.connect(t.conninfo)
        let holder = Task { () -> [Int] in
            try await router.query("BEGIN")
            var held: [Int] = []
            for _ in 0..<500 where held.isEmpty {
                held = try await router.query("""
                    SELECT id FROM sms_usage_logs WHERE NOT success AND sms_retry ? 'lease'
                    ORDER BY id LIMIT 3 FOR UPDATE SKIP LOCKED
                    """).all.compactMap { $0.int("id") }
                if held.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
            }
            try await Task.sleep(for: .seconds(15))
            try await router.query("ROLLBACK")
            return held
        }
        // --batch-size 1000: a record of 1,000 rows takes longer than 50 ms here, so the
        // statement_timeout cancels records too, which are then made in pieces.
        let result = try await runCLI(["run", "--database-url", url, "--batch-size", "1000", "--concurrency", "32"],
                                      environment: twilio.environment)
        let held = try await holder.value
        let summary = result.out.split(separator: "\n").last.map(String.init) ?? ""
        let settingLine = result.err.split(separator: "\n").first { $0.hasPrefix("sms-retry: lock_timeout = ") || $0.hasPrefix("sms-retry: statement_timeout = ") }
        let accepted = await twilio.acceptedPerNumber()
        let acceptedRows = try await t.query("SELECT phone_number, success FROM sms_usage_logs").all
        let acceptedUnrecorded = acceptedRows.filter { accepted[$0.string("phone_number")!] != nil && $0.bool("success") != true }.count
        let leftLeased = try await t.count("NOT success AND sms_retry ? 'lease'")
        let pieces = result.err.components(separatedBy: "recording it in smaller pieces").count - 1
        #expect(held.count == 3, "the router held rows the run had claimed: \(held)")
        #expect(result.code == 3, "\(result.code) \(result.out) \(result.err.suffix(1500))")
        #expect(summary.hasPrefix("claimed=") && summaryValue(summary, "unrecorded") == 3, "the usual summary line: \(summary)")
        #expect(settingLine?.contains("(the role's setting) cancelled the record of 1 row; give sms-retry's role more: ALTER ROLE tiny_") == true,
                "\(result.err.suffix(1500))")
        #expect(acceptedUnrecorded == 3, "only the router's three rows stayed unrecorded")
        #expect(try await t.halfUpdated() == 0, "every row is recorded as sent or still pending")
        figure("timeouts", "tiny (statement_timeout 50ms, lock_timeout 20ms, idle_in_transaction_session_timeout 50ms on the role), 20000 due rows, --batch-size 1000, the router holding 3 claimed rows for 15 s: exit \(result.code); summary: \(summary); \(settingLine ?? "no setting line"); records split into pieces \(pieces) times; rows left unrecorded \(acceptedUnrecorded) (accepted by Twilio, still under the run's lease), rows under a lease \(leftLeased), rows still due \(try await t.count("NOT success AND NOT coalesce(sms_retry ? 'lease', false)"))")

        // Later: the lease runs out (moved here rather than waited for), and the next run, as
        // the same role, finds the three at Twilio instead of resending them, and sends the rest.
        try await t.expireLeases()
        let next = try await runCLI(["run", "--database-url", url, "--batch-size", "100", "--concurrency", "32"],
                                    environment: twilio.environment)
        let perNumber = await twilio.acceptedPerNumber()
        let duplicates = perNumber.values.reduce(0) { $0 + max(0, $1 - 1) }
        #expect(next.code == 0, "\(next.code) \(next.out) \(next.err.suffix(800))")
        #expect(summaryValue(next.out, "reconciled") == 3, "the accepted-but-unrecorded rows were found, not resent: \(next.out)")
        #expect(Set(perNumber.keys) == Set(numbers), "no row lost")
        #expect(duplicates == 0, "no message sent twice")
        #expect(try await t.count("success AND next_retry_at IS NULL AND NOT sms_retry ? 'lease'") == 20_000, "every row recorded")
        #expect(try await t.halfUpdated() == 0)
        figure("timeouts", "afterwards (leases ended, next run as the same role): exit \(next.code), \(next.out.trimmingCharacters(in: .whitespacesAndNewlines)); create requests \(await twilio.server.requestsTotal) for 20000 rows; sent twice \(duplicates); lost \(numbers.count - perNumber.count); rows Twilio accepted recorded \(try await t.count("success"))/20000")
    }

    @Test("a status callback whose row the router holds past lock_timeout is answered 503 (Twilio sends it again), then applied")
    func callbackUnderALockTimeout() async throws {
        let t = try await TestDatabase.make()
        let url = try await timeoutRole(t, "callbacks", [("lock_timeout", "20ms")])
        let id = try await t.insert(phone: "+14157120001")
        #expect(try await t.store().recordSent(logID: id, messageSID: "SM" + String(repeating: "a", count: 32)) == .recorded)
        let store = RetryStore(database: try await Database.connect(url), logger: quietLogger)
        let publicURL = "https://example.com/twilio/status"
        let handler = StatusCallbackHandler(store: store, authToken: StandIn.token, publicURL: publicURL)
        let params = [("MessageSid", "SM" + String(repeating: "a", count: 32)), ("MessageStatus", "delivered")]
        let body = Array(params.map { "\($0.0)=\($0.1)" }.joined(separator: "&").utf8)
        let signature = TwilioSignature(authToken: StandIn.token).sign(url: publicURL, params: params)
        func post() async -> StatusCallbackHandler.Reply {
            await handler.handle(query: nil, contentType: "application/x-www-form-urlencoded", signatureHeader: signature, body: body)
        }
        let router = try await Database.connect(t.conninfo)
        try await router.query("BEGIN")
        try await router.query("SELECT id FROM sms_usage_logs WHERE id = $1 FOR UPDATE", [String(id)])
        let held = await post()
        try await router.query("COMMIT")
        let again = await post()
        #expect(held.status == 503 && held.body.contains("lock_timeout"), "\(held)")
        #expect(again.status == 200, "\(again)")
        #expect(try await t.query("SELECT final_status FROM sms_usage_logs WHERE id = $1", [String(id)])[0].string("final_status") == "delivered")
        figure("timeouts", "callback while the router holds the row (lock_timeout 20ms on the role): \(held.status) \"\(held.body)\", Twilio's retry after the router committed: \(again.status) \"\(again.body)\"")
    }

    @Test("idle_in_transaction_session_timeout ends a session: named as that setting, and the next statement reconnects")
    func idleInTransactionEndsTheSession() async throws {
        let t = try await TestDatabase.make()
        let url = try await timeoutRole(t, "idle", [("idle_in_transaction_session_timeout", "50ms")])
        let db = try await Database.connect(url)
        try await db.query("BEGIN")
        try await Task.sleep(for: .milliseconds(300))
        var ended: DatabaseError? = nil
        do { try await db.query("SELECT 1") } catch let error as DatabaseError { ended = error }
        #expect(ended?.timeoutSetting == "idle_in_transaction_session_timeout", "\(ended.map { "\($0)" } ?? "no error")")
        var limit: ServerLimit? = nil
        if let ended { limit = await ServerLimit.read(for: ended, on: db) }
        #expect(limit?.value == "50ms" && limit?.source == "user", "read on a new session: \(String(describing: limit))")
        #expect(try await db.query("SELECT 1 AS one")[0].int("one") == 1, "the session came back")
        figure("timeouts", "idle_in_transaction_session_timeout: \(ended.map { "\($0)".split(separator: "\n").joined(separator: " / ") } ?? "-") → \(limit?.line("a transaction") ?? "-")")
    }
}
