import Foundation
import Testing
@testable import SMSRetry

/// The commands around the SQL report functions: migrate installs the policy and grants the
/// router's role; policy apply changes the policy the functions read; check says when they and
/// run would disagree, and whether the router's role may report.
@Suite struct SQLReportCLITests {
    @Test("migrate --grant-router lets the router's role report, and check says so; policy apply and check agree on the policy")
    func grantAndPolicy() async throws {
        let t = try await TestDatabase.make(migrated: false)
        let router = "router_" + t.name.suffix(10)
        try await t.query("CREATE ROLE \(router) LOGIN")
        var r = try await runCLI(["migrate", "--create-table", "--grant-router", router], environment: ["DATABASE_URL": t.conninfo])
        #expect(r.code == 0 && r.out.contains("installed for the SQL report functions")
                && r.out.contains("GRANT EXECUTE ON FUNCTION public.sms_retry_report_failure(bigint, integer, text)"), "\(r)")
        r = try await runCLI(["check", "--router-role", router, "--database-url", t.conninfo])
        #expect(r.out.contains("router grants") && r.out.contains("role \(router) may call the SQL report functions"), "\(r.out)")
        #expect(r.out.contains("the SQL report functions read the policy run loads"), "\(r.out)")

        // As the router's role, in its own transaction: the row and its report commit together.
        try await t.query("GRANT USAGE ON SEQUENCE sms_usage_logs_id_seq TO \(router)")
        try await t.query("GRANT SELECT, INSERT ON sms_usage_logs TO \(router)")
        let asRouter = try await Database.connect("dbname=\(t.name) user=\(router)")
        let result = try await asRouter.transaction { conn in
            let id = try conn.execute("""
                INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content, success, error_message)
                VALUES (1, '+14155550100', 'outbound', 5, 'hello', false, 'Twilio 30003') RETURNING id
                """)[0].int("id")!
            return try conn.execute("SELECT sms_retry_report_failure($1, 30003, 'unreachable') ->> 'result' AS r", [String(id)])[0].string("r")
        }
        #expect(result == "scheduled")

        let stranger = "nogrant_" + t.name.suffix(10)
        try await t.query("CREATE ROLE \(stranger) LOGIN")
        r = try await runCLI(["check", "--router-role", stranger, "--database-url", t.conninfo])
        #expect(r.code != 0 && r.out.contains("lacks") && r.out.contains("migrate --grant-router \(stranger)"), "\(r.out)")

        // Another policy file: run would load it, the functions would not, until policy apply.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("policy-\(UUID().uuidString).json")
        try #"{"codes": {"30003": {"max_retries": 5}}}"#.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        r = try await runCLI(["check", "--database-url", t.conninfo], environment: ["SMS_RETRY_POLICY": file.path])
        #expect(r.code != 0 && r.out.contains("read another policy than run loads") && r.out.contains("policy apply"), "\(r.out)")
        r = try await runCLI(["policy", "apply", file.path, "--database-url", t.conninfo])
        #expect(r.code == 0, "\(r)")
        r = try await runCLI(["check", "--database-url", t.conninfo], environment: ["SMS_RETRY_POLICY": file.path])
        #expect(r.out.contains("the SQL report functions read the policy run loads"), "\(r.out)")
        let max = try await t.query("SELECT (sms_retry_policy() -> 'codes' -> '30003' ->> 'max_retries')::int AS m")[0].int("m")
        #expect(max == 5)
        r = try await runCLI(["policy", "apply", "/nonexistent.json", "--database-url", t.conninfo])
        #expect(r.code == 2, "\(r)")
        try await t.query("DROP OWNED BY \(router)")
        try await t.query("DROP OWNED BY \(stranger)")
    }
}
