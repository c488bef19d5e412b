import Foundation
import Testing
@testable import SMSRetry

/// The server versions sms-retry supports: PostgreSQL 14 or later. `make test-pg` runs this suite
/// on 13 too, where both `check` and `migrate` must refuse before anything is created.
@Suite struct ServerVersionTests {
    @Test("check and migrate accept PostgreSQL 14 or later; on an older server both refuse (exit 2) naming its version and 14, and nothing is created")
    func olderServersAreRefused() async throws {
        let t = try await TestDatabase.make(migrated: false)
        let server = try await t.query("SELECT current_setting('server_version_num')::int AS num, current_setting('server_version') AS version")[0]
        let major = (server.int("num") ?? 0) / 10000, version = server.string("version") ?? "?"
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let env = twilio.environment.merging(["DATABASE_URL": t.conninfo]) { $1 }

        let check = try await runCLI(["check"], environment: env)
        let line = check.out.split(separator: "\n").first { $0.contains(" database: ") }.map(String.init) ?? ""
        let migrate = try await runCLI(["migrate", "--create-table"], environment: env)
        let objects = try await t.query("""
            SELECT (SELECT count(*) FROM pg_class WHERE relname LIKE 'sms_usage_logs%' OR relname LIKE 'sms_retry_%')
                 + (SELECT count(*) FROM pg_proc WHERE proname LIKE 'sms_retry_%') AS n
            """)[0].int("n") ?? -1
        if major >= InstallationCheck.oldestPostgres {
            #expect(line.hasPrefix("ok ") && line.contains("PostgreSQL \(version)"), "\(check)")
            #expect(migrate.code == 0 && migrate.out.contains("009_router_safe_state: applied"), "\(migrate)")
            #expect(objects > 10, "the table, its indexes, the views and the functions")
            let down = try await runCLI(["migrate", "--down", "--to", "1"], environment: env)
            #expect(down.code == 0, "\(down)")
            figure("server version \(version)", "check: \(line.trimmingCharacters(in: .whitespaces)); migrate: exit \(migrate.code), down: exit \(down.code)")
        } else {
            #expect(check.code == 2 && line.hasPrefix("problem ") && line.contains("PostgreSQL \(version)")
                    && line.contains("older than PostgreSQL 14"), "\(check)")
            let refusal = migrate.err.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(migrate.code == 2 && !refusal.contains("\n") && refusal.contains("PostgreSQL \(version) is not supported")
                    && refusal.contains("needs PostgreSQL 14 or later"), "\(migrate)")
            #expect(objects == 0, "nothing created")
            let down = try await runCLI(["migrate", "--down", "--to", "1"], environment: env)
            #expect(down.code == 2 && down.err.contains("is not supported"), "\(down)")
            figure("server version \(version)", "check: exit \(check.code), \(line.trimmingCharacters(in: .whitespaces)); migrate: exit \(migrate.code), \(refusal)")
        }
    }
}
