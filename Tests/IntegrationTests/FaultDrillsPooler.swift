import Foundation
import Testing
@testable import SMSRetry
import TwilioStandIn

/// A PgBouncer (Debian's package, `make test-faults` installs it) in front of the test server.
final class PgBouncer: Sendable {
    let port: Int
    let mode: String
    private let dir: String
    private let process: Process

    /// `mode`: `transaction` or `session`; `poolSize` server connections per database and user.
    init(mode: String, poolSize: Int) throws {
        let binary = "/usr/sbin/pgbouncer"
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw TestSetupError(description: "no PgBouncer at \(binary): apt-get install pgbouncer (make test-faults does)")
        }
        let env = ProcessInfo.processInfo.environment
        let user = env["PGUSER"] ?? NSUserName()
        self.mode = mode
        port = try freePort()
        dir = NSTemporaryDirectory() + "pgbouncer-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try """
            [databases]
            * = host=\(env["PGHOST"] ?? "127.0.0.1") port=\(env["PGPORT"] ?? "5432")
            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = \(port)
            unix_socket_dir =
            auth_type = trust
            auth_file = \(dir)/users.txt
            pool_mode = \(mode)
            default_pool_size = \(poolSize)
            max_client_conn = 500
            logfile = \(dir)/pgbouncer.log
            """.write(toFile: dir + "/pgbouncer.ini", atomically: true, encoding: .utf8)
        try "\"\(user)\" \"\"\n".write(toFile: dir + "/users.txt", atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        // PgBouncer refuses to run as root; `-u` drops to another user after start.
        if getuid() == 0 {
            for file in ["", "/pgbouncer.ini", "/users.txt"] {
                try FileManager.default.setAttributes([.ownerAccountName: "postgres"], ofItemAtPath: dir + file)
            }
            process.arguments = ["-u", "postgres", dir + "/pgbouncer.ini"]
        } else {
            process.arguments = [dir + "/pgbouncer.ini"]
        }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<100 {
            if (try? PGConnection(conninfo: "postgresql://\(user)@127.0.0.1:\(port)/postgres")) != nil { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.terminate()
        throw TestSetupError(description: "PgBouncer did not start: \((try? String(contentsOfFile: dir + "/pgbouncer.log", encoding: .utf8)) ?? "")")
    }

    /// `t`'s database through this pooler.
    func url(_ t: TestDatabase) -> String {
        "postgresql://\(ProcessInfo.processInfo.environment["PGUSER"] ?? NSUserName())@127.0.0.1:\(port)/\(t.name)"
    }

    func stop() {
        // SIGKILL: it holds nothing worth a clean shutdown, and SIGTERM is not always acted on.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// Through PgBouncer in both modes: every command works, never a duplicate, `--rate` holds one
/// rate for the fleet or the run refuses, and nothing sms-retry took stays on a server connection.
extension FaultDrills {
    /// Session advisory locks of sms-retry's run presence held anywhere on the server.
    func presenceLocks(_ t: TestDatabase) async throws -> Int {
        try await t.query("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int::oid",
                          [String(FleetRate.presenceClass)])[0].int("n") ?? -1
    }

    /// Numbers the stand-in created more than one message for.
    func sentTwice(_ received: [TwilioStandIn.Received]) -> Int {
        Dictionary(grouping: received.filter { $0.sid != nil }, by: \.to).values.filter { $0.count > 1 }.count
    }

    @Test("PgBouncer in transaction mode, its defaults: three runs at once, every command, nothing left on its server connections")
    func transactionPoolDefaults() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        // Two server connections for everything: the runs share them, statement by statement,
        // as an application fleet's clients do.
        let pool = try PgBouncer(mode: "transaction", poolSize: 2)
        defer { pool.stop() }
        let numbers = try await t.seedDue(600, prefix: "+1415630")
        let url = pool.url(t)
        // --created-at-time-zone is a setting every statement needs: made per transaction here.
        let results = try await withThrowingTaskGroup(of: (code: Int32, out: String, err: String).self) { group in
            for _ in 0..<3 {
                group.addTask {
                    try await runCLI(["run", "--database-url", url, "--batch-size", "20", "--concurrency", "4",
                                      "--created-at-time-zone", "UTC"], environment: twilio.environment)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0.code == 0 && !$0.err.contains("42P05") }, "\(results.map { ($0.code, $0.err.suffix(300)) })")
        let received = await twilio.server.received
        let sent = results.map { summaryValue($0.out, "sent") }
        #expect(sent.reduce(0, +) == 600 && sentTwice(received) == 0 && Set(received.map(\.to)) == Set(numbers),
                "sent \(sent), numbers sent twice \(sentTwice(received))")

        // The other commands, through the same pool.
        let row = try await t.insert(phone: "+14156309999", error: "Twilio 30003")
        let schedule = try await runCLI(["schedule", "--database-url", url, "--log-id", String(row), "--error-code", "30003"])
        let cancel = try await runCLI(["cancel", "--database-url", url, "--log-id", String(row)])
        let stats = try await runCLI(["stats", "--database-url", url, "--created-at-time-zone", "UTC"])
        let health = try await runCLI(["health", "--database-url", url])
        let check = try await runCLI(["check", "--database-url", url], environment: twilio.environment)
        let reconcile = try await runCLI(["reconcile", "--database-url", url], environment: twilio.environment)
        for (name, result) in [("schedule", schedule), ("cancel", cancel), ("stats", stats), ("reconcile", reconcile)] {
            #expect(result.code == 0 && !result.err.contains("42P05"), "\(name): \(result.code) \(result.err.suffix(300))")
        }
        #expect([0, 1].contains(health.code) && !health.err.contains("42P05"), "health: \(health)")
        #expect(check.out.contains("connection: through a pooler in transaction mode"), "\(check.out)")
        #expect(stats.out.contains("sms_retry_overview") || stats.out.contains("overview"), "\(stats.out)")

        // Nothing left behind: each of the pool's two server connections, held at once by a
        // transaction of its own, has no prepared statement and no sms_retry.* setting, and the
        // server holds no advisory lock of sms-retry's.
        var leftovers: [String] = []
        let clients = try await [Database.connect(url), Database.connect(url)]
        var pids: Set<Int> = []
        for client in clients {
            let row = try await client.withConnection { conn in
                try conn.executeScript("BEGIN")
                return try conn.execute("""
                    SELECT pg_backend_pid() AS pid, (SELECT count(*) FROM pg_prepared_statements) AS prepared,
                           (SELECT string_agg(name, ',') FROM pg_settings WHERE name LIKE 'sms_retry.%') AS settings
                    """)[0]
            }
            pids.insert(row.int("pid") ?? 0)
            if (row.int("prepared") ?? 0) > 0 { leftovers.append("\(row.int("prepared")!) prepared statements") }
            if let settings = row.string("settings") { leftovers.append("settings \(settings)") }
        }
        for client in clients { _ = try await client.withConnection { try $0.executeScript("COMMIT") } }
        let locks = try await presenceLocks(t)
        #expect(pids.count == 2 && leftovers.isEmpty && locks == 0, "server connections \(pids), left: \(leftovers), locks \(locks)")
        figure("transactionPoolDefaults", "PgBouncer transaction mode, pool of 2: 3 runs at once sent \(sent.map(String.init).joined(separator: " + ")) of 600, exits \(results.map { String($0.code) }.joined(separator: " ")), 42P05 seen \(results.filter { $0.err.contains("42P05") }.count), numbers sent twice \(sentTwice(received)); schedule/cancel/stats/health/reconcile exits \(schedule.code)/\(cancel.code)/\(stats.code)/\(health.code)/\(reconcile.code); left on the 2 server connections: \(leftovers.isEmpty ? "nothing" : leftovers.joined(separator: ", ")), presence locks \(locks)")
    }

    @Test("--rate 30/s through PgBouncer: one rate for three runs in session mode, refused in transaction mode; no lock left")
    func rateThroughPoolers() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        try await t.seedDue(450, prefix: "+1415631")

        let transaction = try PgBouncer(mode: "transaction", poolSize: 4)
        defer { transaction.stop() }
        let refused = try await runCLI(["run", "--database-url", transaction.url(t), "--rate", "30/s"], environment: twilio.environment)
        let refusedSenders = try await runCLI(["run", "--database-url", transaction.url(t), "--sender-rate", "5/s"], environment: twilio.environment)
        #expect(refused.code == 2 && refused.err.contains("transaction mode") && refused.err.split(separator: "\n").count == 1, "\(refused)")
        #expect(refusedSenders.code == 2 && refusedSenders.err.contains("transaction mode"), "\(refusedSenders)")
        #expect(await twilio.server.received.isEmpty)

        let session = try PgBouncer(mode: "session", poolSize: 20)
        defer { session.stop() }
        let results = try await withThrowingTaskGroup(of: (code: Int32, out: String, err: String).self) { group in
            for i in 0..<3 {
                group.addTask {
                    try await Task.sleep(for: .milliseconds(300 * i))
                    return try await runCLI(["run", "--database-url", session.url(t), "--rate", "30/s", "--batch-size", "15",
                                             "--concurrency", "4"], environment: twilio.environment)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0.code == 0 }, "\(results.map { ($0.code, $0.err.suffix(300)) })")
        let received = await twilio.server.received
        let histogram = perSecond(received)
        let sent = results.map { summaryValue($0.out, "sent") }
        #expect(sent.reduce(0, +) == 450 && sentTwice(received) == 0, "\(sent)")
        // 30/s ± 10% over every 3 seconds, from the first whole second to the last few.
        let steady = Array(histogram.dropLast(2))
        let windows = steady.indices.dropLast(2).map { steady[$0] + steady[$0 + 1] + steady[$0 + 2] }
        #expect(steady.count >= 10 && windows.allSatisfy { (81...99).contains($0) }, "3-second windows \(windows) of \(histogram)")
        var locks = try await presenceLocks(t)
        for _ in 0..<20 where locks > 0 { try await Task.sleep(for: .milliseconds(100)); locks = try await presenceLocks(t) }
        #expect(locks == 0, "presence locks left after the runs: \(locks)")
        figure("rateThroughPoolers", "--rate 30/s through PgBouncer transaction mode: exit \(refused.code), \"\(refused.err.trimmingCharacters(in: .whitespacesAndNewlines).prefix(140))…\", 0 sent; session mode, 3 runs over 450 rows (sent \(sent.map(String.init).joined(separator: " + "))): per-second sends \(histogram.map(String.init).joined(separator: " ")); presence locks held after the runs: \(locks)")
    }
}
