import Foundation
import Testing
@testable import SMSRetry

@Suite struct CLITests {
    @Test func aMissingSettingIsOneLineNamingIt() async throws {
        let t = try await TestDatabase.make()
        var env = ["DATABASE_URL": t.conninfo, "TWILIO_AUTH_TOKEN": StandIn.token, "TWILIO_FROM_NUMBER": StandIn.from]
        var r = try await runCLI(["run"], environment: env)
        #expect(r.code == 2)
        #expect(r.err == "sms-retry: TWILIO_ACCOUNT_SID is not set (the Account SID, AC followed by 32 hex digits)\n")
        env["TWILIO_ACCOUNT_SID"] = StandIn.account
        env["TWILIO_FROM_NUMBER"] = nil
        r = try await runCLI(["run"], environment: env)
        #expect(r.code == 2 && r.err.contains("TWILIO_FROM_NUMBER is not set"))
        #expect(!r.err.contains(StandIn.token) && !r.out.contains(StandIn.token))
    }

    /// SMS_RETRY_POOL_MODE states what the connection keeps, where the probe cannot tell: on a
    /// direct connection stated as transaction mode, `run --rate` refuses as through PgBouncer.
    @Test func thePoolModeCanBeStated() async throws {
        let t = try await TestDatabase.make()
        let stated = ["SMS_RETRY_POOL_MODE": "transaction", "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
                      "TWILIO_AUTH_TOKEN": "x", "TWILIO_FROM_NUMBER": "+15005550006", "TWILIO_API_BASE_URL": "http://127.0.0.1:9"]
        let refused = try await runCLI(["run", "--database-url", t.conninfo, "--rate", "5/s"], environment: stated)
        #expect(refused.code == 2 && refused.err.contains("transaction mode"), "\(refused)")
        let check = try await runCLI(["check", "--database-url", t.conninfo], environment: stated)
        #expect(check.out.contains("connection: through a pooler in transaction mode"), "\(check.out)")
        let direct = try await runCLI(["check", "--database-url", t.conninfo], environment: ["SMS_RETRY_POOL_MODE": "direct"])
        #expect(direct.out.contains("connection: straight to PostgreSQL"), "\(direct.out)")
        let bogus = try await runCLI(["stats", "--database-url", t.conninfo], environment: ["SMS_RETRY_POOL_MODE": "bouncy"])
        #expect(bogus.code == 2 && bogus.err == "sms-retry: SMS_RETRY_POOL_MODE=bouncy: must be direct, session or transaction\n", "\(bogus)")
    }

    @Test func usageErrorsExitTwo() async throws {
        var r = try await runCLI(["run", "--concurrency", "0"])
        #expect(r.code == 2 && r.err == "sms-retry: --concurrency 0 is out of range: 1 to 1024\n")
        r = try await runCLI(["run", "--no-such-flag"])
        #expect(r.code == 2)
        r = try await runCLI(["schedule", "--log-id", "1", "--error-code", "abc"])
        #expect(r.code == 2 && r.err.contains("--error-code must be"))
        for (flag, value, message) in [("--rate", "fast", "--rate"), ("--rate", "0/s", "--rate"), ("--rate", "10/d", "--rate"),
                                       ("--breaker-failures", "30", "--breaker-failures 30 is out of range: 1 to --breaker-window (20)"),
                                       ("--timeout", "0", "--timeout 0 is out of range: 1s to 2m")] {
            r = try await runCLI(["run", flag, value])
            #expect(r.code == 2 && r.err.contains(message), "\(flag) \(value): \(r.err)")
        }
        r = try await runCLI(["--help"])
        #expect(r.code == 0 && r.out.contains("Exit codes"))
    }

    /// A database sms-retry was never migrated on is a configuration error (2, a failed unit
    /// under systemd), not "some rows need a look" (1), and the message says what to do.
    @Test func anUnmigratedDatabaseExitsTwoAndSaysSo() async throws {
        let t = try await TestDatabase.make(migrated: false)
        try await t.query("CREATE TABLE sms_usage_logs (id serial PRIMARY KEY, user_id int, phone_number varchar(20), message_direction varchar(10), message_length int, message_content text, success boolean, processing_time_ms int, error_message text, sms_metadata jsonb, created_at timestamp DEFAULT now())")
        let r = try await runCLI(["run"], environment: ["DATABASE_URL": t.conninfo, "TWILIO_ACCOUNT_SID": StandIn.account,
                                                        "TWILIO_AUTH_TOKEN": StandIn.token, "TWILIO_FROM_NUMBER": StandIn.from])
        #expect(r.code == 2, "\(r.err)")
        #expect(r.err.contains("are the migrations applied? sms-retry check tells, sms-retry migrate applies them"), "\(r.err)")
    }

    @Test func anUnreachableDatabaseExitsThreeWithoutThePassword() async throws {
        let r = try await runCLI(["run"], environment: [
            "DATABASE_URL": "postgresql://someone:hunter2secret@127.0.0.1:1/nowhere",
            "TWILIO_ACCOUNT_SID": StandIn.account, "TWILIO_AUTH_TOKEN": StandIn.token, "TWILIO_FROM_NUMBER": StandIn.from])
        #expect(r.code == 3)
        #expect(r.err.hasPrefix("sms-retry: cannot reach the database"))
        #expect(!r.err.contains("hunter2secret"))
    }

    @Test func runSendsAndPrintsOneSummaryLine() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let id = try await t.insert(phone: "+14155550321", content: "Secret body 777")
        var env = twilio.environment
        env["DATABASE_URL"] = t.conninfo
        var r = try await runCLI(["schedule", "--log-id", String(id), "--error-code", "30001", "--error-message", "queue overflow"], environment: env)
        #expect(r.code == 0 && r.out.hasPrefix("scheduled log_id=\(id) attempt=1 at="))
        try await t.makeDue()

        r = try await runCLI(["run", "--dry-run"], environment: env)
        #expect(r.code == 0 && r.out.contains("would send log_id=\(id) to=+14*******21 kind=default attempt=1/3"))

        r = try await runCLI(["run"], environment: env)
        #expect(r.code == 0, "\(r.err)")
        let lines = r.out.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.hasPrefix("claimed=1 sent=1 rescheduled=0 failed=0 skipped=0 seconds=") == true)
        // Logs at info: no token, no body, no full number.
        for secret in [StandIn.token, "Secret body 777", "+14155550321", "4155550321"] {
            #expect(!r.err.contains(secret) && !r.out.contains(secret), "\(secret) leaked")
        }
        #expect(try await t.row(id).string("final_status") == "sent")
    }

    @Test func exitCodesForPartialWorkAndBadCredentials() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        var env = twilio.environment
        env["DATABASE_URL"] = t.conninfo
        let bad = try await t.insert(phone: "not-a-number")
        _ = try await t.store().recordFailure(logID: bad, errorCode: 30001, errorMessage: nil)
        try await t.makeDue()
        var r = try await runCLI(["run"], environment: env)
        #expect(r.code == 1 && r.out.contains("skipped=1"))

        let good = try await t.insert(phone: "+14155550999")
        _ = try await t.store().recordFailure(logID: good, errorCode: 30001, errorMessage: nil)
        try await t.makeDue()
        env["TWILIO_AUTH_TOKEN"] = "the-wrong-token-42"
        r = try await runCLI(["run"], environment: env)
        #expect(r.code == 2 && r.err.contains("Twilio refused the credentials"))
        #expect(!r.err.contains("the-wrong-token-42") && !r.out.contains("the-wrong-token-42"))
        #expect(try await t.row(good).int("retry_count") == 0)
    }

    @Test func scheduleAndMarkSentReportMissingRows() async throws {
        let t = try await TestDatabase.make()
        var r = try await runCLI(["schedule", "--log-id", "123456", "--error-code", "30003"], environment: ["DATABASE_URL": t.conninfo])
        #expect(r.code == 1 && r.err.hasSuffix("sms-retry: no sms_usage_logs row with id 123456\n"))
        let id = try await t.insert()
        r = try await runCLI(["schedule", "--log-id", String(id), "--error-code", "21610"], environment: ["DATABASE_URL": t.conninfo])
        #expect(r.code == 0 && r.out.contains("reason=not_retryable code=21610"))
        let sid = "SM" + String(repeating: "0f", count: 16)
        r = try await runCLI(["mark-sent", "--log-id", String(id), "--sid", sid], environment: ["DATABASE_URL": t.conninfo])
        #expect(r.code == 0 && r.out == "sent log_id=\(id) sid=\(sid)\n")
        r = try await runCLI(["mark-sent", "--log-id", String(id), "--sid", "nope"], environment: ["DATABASE_URL": t.conninfo])
        #expect(r.code == 2)
    }

    @Test func aBadPolicyFileIsRejectedByName() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("policy-\(UUID().uuidString).json")
        try Data(#"{"codes": {"30003": {"max_retries": 11}}}"#.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        var r = try await runCLI(["policy", "--policy", file.path])
        #expect(r.code == 2 && r.err == "sms-retry: policy \(file.path): codes.30003.max_retries: 11 is out of range 0–10\n")
        r = try await runCLI(["policy"], environment: ["SMS_RETRY_POLICY": file.path])
        #expect(r.code == 2)
        r = try await runCLI(["policy"])
        #expect(r.code == 0 && r.out.contains("30003  linear 2×300 s") && r.out.contains("21610  never"))
    }

    @Test func migrateReportsWhatItDid() async throws {
        let t = try await TestDatabase.make(migrated: false)
        // No router table: refused, nothing created.
        var r = try await runCLI(["migrate"], environment: ["DATABASE_URL": t.conninfo])
        #expect(r.code == 2 && r.err.contains("no table sms_usage_logs in search_path") && r.err.contains("--create-table"), "\(r)")
        #expect(try await t.query("SELECT count(*) AS n FROM pg_class WHERE relname LIKE 'sms_%'")[0].int("n") == 0)
        r = try await runCLI(["migrate", "--create-table"], environment: ["DATABASE_URL": t.conninfo])
        #expect(r.code == 0)
        let names = try Migrator(directory: Paths.migrations).migrations.map(\.name)
        let lines = r.out.split(separator: "\n")
        #expect(lines.first == #"table: sms_usage_logs not found in search_path "$user", public"#, "\(r.out)")
        #expect(lines.dropFirst().dropLast().map { String($0.split(separator: ":")[0]) } == names)
        #expect(lines.last == "policy: the built-in policy installed for the SQL report functions", "\(r.out)")
        #expect(r.out.contains("003_retry_indexes: applied ("))
        r = try await runCLI(["migrate", "--status"], environment: ["DATABASE_URL": t.conninfo])
        #expect(r.out == "table: public.sms_usage_logs\n" + names.map { "\($0): applied\n" }.joined())
        r = try await runCLI(["migrate", "--down"], environment: ["DATABASE_URL": t.conninfo])
        #expect(r.code == 0 && r.out.hasPrefix("table: public.sms_usage_logs\n\(names.last!): reverted"))
        r = try await runCLI(["migrate", "--dir", "/nonexistent"], environment: ["DATABASE_URL": t.conninfo])
        #expect(r.code == 2 && r.err.contains("cannot read the migrations folder /nonexistent"))
    }
}
