import Foundation
import Testing
@testable import SMSRetry

/// A hot standby of the test server, as analysts and dashboards read one: `stats`, `health`,
/// `check` and every view work there and match the primary; every command that writes refuses
/// before doing anything. A read-only session on the primary (a reader endpoint, a role with
/// default_transaction_read_only) is refused the same way.
@Suite(.serialized) struct StandbyTests {
    @Test func readsMatchThePrimaryAndWritesAreRefused() async throws {
        let started = ContinuousClock.now
        let standby = try Standby.start()
        defer { standby.stop() }
        let basebackup = ContinuousClock.now - started

        // The data set the views are hand-counted on (AnalyticsTests), written on the primary
        // after the base backup: it reaches the standby by replication only, as do the database's
        // settings: a critical delay of 9 minutes turns the 10-minute-old due row critical.
        let data = try await AnalyticsTests.build()
        let t = data.t
        try await t.query("ALTER DATABASE \(t.name) SET sms_retry.health_crit_delay = '9 minutes'")
        let lsn = try #require(try await t.query("SELECT pg_current_wal_lsn()::text AS lsn")[0].string("lsn"))
        let replay = try await standby.waitForReplay(of: lsn)

        let primaryURL = "host=\(Standby.primaryHost) port=\(Standby.primaryPort) dbname=\(t.name)"
        let standbyURL = standby.conninfo(t.name)
        let inRecovery = try await Database.connect(standbyURL).query("SELECT pg_is_in_recovery() AS r")[0].bool("r")
        #expect(inRecovery == true)

        // stats, stats --json, a period set on the standby's session, health: the same exit code
        // and the same output on both (run at the same moment: the oldest due row's age moves;
        // sms_retry_health.checked_at, the moment of the read, is left out).
        let stats = try await onBoth(["stats"], primaryURL, standbyURL)
        #expect(stats.standby.code == 0 && stats.primary.code == 0, "\(stats.standby.err)")
        #expect(Self.lessCheckedAt(stats.standby.out) == Self.lessCheckedAt(stats.primary.out))
        for view in Queries.views { #expect(stats.standby.out.contains("== \(view)\n")) }
        let json = try await onBoth(["stats", "--json"], primaryURL, standbyURL)
        #expect(json.standby.code == 0 && Self.lessCheckedAt(json.standby.out) == Self.lessCheckedAt(json.primary.out), "\(json.standby.err)")
        let keys = try #require(try JSONSerialization.jsonObject(with: Data(json.standby.out.utf8)) as? [String: Any]).keys
        #expect(Set(keys) == Set(Queries.views.map { String($0.dropFirst("sms_retry_".count)) }))
        let weekly = try await onBoth(["stats", "--period", "7d", "--days", "3"], primaryURL, standbyURL)
        #expect(weekly.standby.code == 0 && Self.lessCheckedAt(weekly.standby.out) == Self.lessCheckedAt(weekly.primary.out), "\(weekly.standby.err) STANDBY<<\(weekly.standby.out)>> PRIMARY<<\(weekly.primary.out)>>")
        let health = try await onBoth(["health"], primaryURL, standbyURL)
        #expect(health.standby.code == 2 && health.primary.code == 2, "\(health.standby.out)")
        #expect(health.standby.out == health.primary.out)
        #expect(health.standby.out.hasPrefix("CRITICAL: retry success rate 66.7% over 3 finished retries, 1 due now"))
        #expect(health.standby.out.contains("(more than 00:09:00)"))

        // Every view the migrations create, as a psql user reads it there (a setting SET first).
        let views = try #require(try await t.query("""
            SELECT string_agg(viewname, ',' ORDER BY viewname) AS v FROM pg_views WHERE viewname LIKE 'sms\\_retry\\_%'
            """)[0].string("v")).split(separator: ",").map(String.init)
        #expect(Set(Queries.views).isSubset(of: Set(views)))
        let reads = ["SET sms_retry.period = '2 days'"] + views.map { "SELECT '\($0)', to_jsonb(v) - 'checked_at' FROM \($0) v" }
        var psql = (primary: (Int32(-1), ""), standby: (Int32(-1), ""))
        for _ in 0..<5 {
            psql = (try psqlCommands(reads, primaryURL), try psqlCommands(reads, standbyURL))
            if psql.primary == psql.standby { break }
        }
        #expect(psql.standby.0 == 0, "\(psql.standby.1)")
        #expect(psql.standby == psql.primary)

        // check: a clear line, the rest of the checks done.
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let check = try await runCLI(["check", "--database-url", standbyURL], environment: twilio.environment)
        let checkLine = check.out.split(separator: "\n").first { $0.contains("read-only standby") }.map(String.init) ?? ""
        #expect(checkLine.hasPrefix("warning  database: a read-only standby (pg_is_in_recovery() is true): stats, health and the views work here"),
                "\(check.out)")
        #expect(check.code == 1 && check.out.contains("ok       migrations: all "), "\(check.out)")
        let primaryCheck = try await runCLI(["check", "--database-url", primaryURL])
        #expect(!primaryCheck.out.contains("read-only"))
        let status = try await runCLI(["migrate", "--status", "--database-url", standbyURL])
        #expect(status.code == 0 && !status.out.contains("pending"), "\(status.err)")

        // Every command that writes: exit 2, one line, before anything (no request to Twilio, no row changed).
        let requestsBefore = await twilio.server.received.count + twilio.server.listRequestsTotal + twilio.server.sidRequestsTotal
        let snapshot = "SELECT md5(string_agg(s::text, '|' ORDER BY id)) AS rows FROM sms_usage_logs s"
        let rowsBefore = try await Database.connect(standbyURL).query(snapshot)[0].string("rows")
        let primaryRowsBefore = try await t.query(snapshot)[0].string("rows")
        #expect(rowsBefore == primaryRowsBefore)
        let id = String(data.ids["H"]!), sid = "SM" + String(repeating: "0123456789abcdef", count: 2)
        let writes: [[String]] = [
            ["run"], ["run", "--dry-run"], ["reconcile"],
            ["schedule", "--log-id", id, "--error-code", "30001"], ["mark-sent", "--log-id", id, "--sid", sid],
            ["delivery-status", "--sid", sid, "--status", "delivered"],
            ["cancel", "--log-id", id], ["retry-now", "--log-id", id], ["expire"],
            ["migrate"], ["migrate", "--down"], ["migrate", "--grant-runtime", "postgres"],
            ["serve-callbacks", "--listen", "127.0.0.1:0", "--public-url", "https://example.com/twilio/status"],
        ]
        var twilioEnvironment = twilio.environment
        twilioEnvironment["DATABASE_URL"] = standbyURL
        let environment = twilioEnvironment
        // All at once, each under a time limit: serve-callbacks that did not refuse would serve
        // until stopped.
        let results = try await withThrowingTaskGroup(of: (Int, (code: Int32, out: String, err: String)).self) { group in
            for (i, command) in writes.enumerated() {
                group.addTask { (i, try await runCLIWithin(30, command, environment: environment)) }
            }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        var refusals: [String] = []
        for (i, command) in writes.enumerated() {
            let r = try #require(results[i])
            let line = "sms-retry: the database is a read-only standby (pg_is_in_recovery() is true), and \(command[0]) writes to it"
            #expect(r.code == 2, "\(command): \(r.code) \(r.err)")
            #expect(r.err.hasPrefix(line) && r.err.contains("at the primary"), "\(command): \(r.err)")
            #expect(r.err.split(separator: "\n").count == 1 && r.out.isEmpty, "\(command): \(r.out) \(r.err)")
            refusals.append(r.err.trimmingCharacters(in: .newlines))
        }
        let requests = await twilio.server.received.count + twilio.server.listRequestsTotal + twilio.server.sidRequestsTotal - requestsBefore
        #expect(requests == 0)
        let rowsAfter = try await Database.connect(standbyURL).query(snapshot)[0].string("rows")
        let primaryRowsAfter = try await t.query(snapshot)[0].string("rows")
        #expect(rowsAfter == rowsBefore && primaryRowsAfter == rowsBefore)

        let lines = stats.standby.out.split(separator: "\n", omittingEmptySubsequences: false).count
        print(String(format: "FIGURE standby: pg_basebackup + start %.1f s; the seed (10 rows, 2 runs) replayed %.2f s after it was written",
                     basebackup.seconds, replay.seconds))
        print("FIGURE standby: stats exit \(stats.standby.code) (primary \(stats.primary.code)), \(lines) lines, identical; "
              + "stats --json exit \(json.standby.code), \(json.standby.out.count) bytes, identical; stats --period 7d identical; "
              + "\(views.count) views by psql identical")
        print("FIGURE standby: health exit \(health.standby.code) (primary \(health.primary.code)), identical: "
              + "\(health.standby.out.split(separator: "\n").joined(separator: " / "))")
        print("FIGURE standby: check exit \(check.code): \(checkLine)")
        print("FIGURE standby: \(writes.count) writing commands (\(Set(writes.map { $0[0] }).sorted().joined(separator: ", "))) "
              + "each exit 2, one line, \(requests) Twilio requests, rows unchanged: \(refusals.first ?? "")")
    }

    /// A session that starts read-only on the primary (what a cloud reader endpoint or a role
    /// with default_transaction_read_only gives) is refused as a standby is; reads work.
    @Test func aReadOnlySessionIsRefusedToo() async throws {
        let t = try await TestDatabase.make()
        let id = try await t.insert()
        let readOnly = "dbname=\(t.name) options='-c default_transaction_read_only=on'"
        let r = try await runCLI(["schedule", "--log-id", String(id), "--error-code", "30001", "--database-url", readOnly])
        #expect(r.code == 2, "\(r.err)")
        #expect(r.err.hasPrefix("sms-retry: the database is read-only for this session (transaction_read_only is on"), "\(r.err)")
        #expect(r.err.contains("and schedule writes to it") && r.err.split(separator: "\n").count == 1)
        let row = try await t.row(id)
        #expect(row.int("retry_count") == 0 && row.bool("pending") == false && row.string("state") == nil)
        let stats = try await runCLI(["stats", "--database-url", readOnly])
        #expect(stats.code == 0, "\(stats.err)")
        let check = try await runCLI(["check", "--database-url", readOnly])
        #expect(check.out.contains("warning  database: read-only for this session (transaction_read_only is on"), "\(check.out)")
        // The same database, read-write: schedule goes through.
        let ok = try await runCLI(["schedule", "--log-id", String(id), "--error-code", "30001", "--database-url", t.conninfo])
        #expect(ok.code == 0, "\(ok.err)")
        print("FIGURE standby: a read-only session on the primary: schedule exit \(r.code): \(r.err.trimmingCharacters(in: .newlines))")
    }

    /// The same command against the primary and the standby at the same moment; again (up to 5
    /// times) while they differ, since a second may pass between the two (the oldest due row's
    /// age in seconds).
    func onBoth(_ arguments: [String], _ primary: String, _ standby: String) async throws
        -> (primary: (code: Int32, out: String, err: String), standby: (code: Int32, out: String, err: String)) {
        for attempt in 1...5 {
            async let p = runCLI(arguments + ["--database-url", primary])
            async let s = runCLI(arguments + ["--database-url", standby])
            let both = try await (primary: p, standby: s)
            if (both.primary.code == both.standby.code && Self.lessCheckedAt(both.primary.out) == Self.lessCheckedAt(both.standby.out))
                || attempt == 5 { return both }
        }
        fatalError("unreachable")
    }

    /// `stats` output without sms_retry_health's checked_at (now() of the read): the health
    /// table's trailing timestamp, or the JSON field.
    static func lessCheckedAt(_ output: String) -> String {
        var text = output.replacingOccurrences(of: #""checked_at" ?: ?"[^"]*""#, with: #""checked_at":"…""#, options: .regularExpression)
        if let health = text.range(of: "== sms_retry_health\n", options: .regularExpression) {
            let masked = text[health.upperBound...].replacingOccurrences(
                of: #"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?[+-]\d\d"#, with: "…", options: [.regularExpression])
            text = String(text[..<health.upperBound]) + masked
        }
        return text
    }
}

/// The built binary under coreutils' `timeout`: a command that should end at once but does not
/// fails the test with 124 instead of hanging it. Output goes through files (no pipe to drain).
func runCLIWithin(_ seconds: Int, _ arguments: [String], environment: [String: String]) async throws -> (code: Int32, out: String, err: String) {
    let process = cliProcess(arguments, environment: environment)
    process.arguments = ["-k", "2", String(seconds), Paths.binaries + "/sms-retry"] + arguments
    process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("smsr-cli-" + UUID().uuidString)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let outURL = dir.appendingPathComponent("out"), errURL = dir.appendingPathComponent("err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
    process.standardOutput = out
    process.standardError = err
    let code: Int32 = try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
        // Process.run() blocks until the child has started: not on the cooperative pool.
        Thread {
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }.start()
    }
    try out.close()
    try err.close()
    return (code, try String(contentsOf: outURL, encoding: .utf8), try String(contentsOf: errURL, encoding: .utf8))
}

/// A hot standby of the server `make test` started (.ci/with-postgres): `pg_basebackup -R` from
/// it (initdb's pg_hba allows replication from 127.0.0.1; wal_level replica and max_wal_senders
/// are PostgreSQL's defaults), started on a free port with the primary's options, as the
/// `postgres` user when root. `stop()` stops it and deletes its folder.
struct Standby {
    let folder: String
    let port: Int
    let bin: String

    static var primaryHost: String { ProcessInfo.processInfo.environment["PGHOST"] ?? "127.0.0.1" }
    static var primaryPort: String { ProcessInfo.processInfo.environment["PGPORT"] ?? "5432" }
    var data: String { folder + "/data" }
    func conninfo(_ database: String) -> String { "host=127.0.0.1 port=\(port) dbname=\(database)" }

    static func start() throws -> Standby {
        let env = ProcessInfo.processInfo.environment
        guard let bin = env["SMS_RETRY_PGBIN"], let options = env["SMS_RETRY_PGOPTS"], let primaryPort = env["PGPORT"] else {
            throw TestSetupError(description: "SMS_RETRY_PGBIN / SMS_RETRY_PGOPTS / PGPORT not set: run `make test`, which starts the server")
        }
        var template = Array("/tmp/smsr-standby.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestSetupError(description: "mkdtemp failed") }
        let standby = Standby(folder: String(cString: made), port: try freePort(), bin: bin)
        do {
            if getuid() == 0, let pw = getpwnam("postgres") { chown(standby.folder, pw.pointee.pw_uid, pw.pointee.pw_gid) }
            try standby.tool("pg_basebackup", ["-h", primaryHost, "-p", primaryPort, "-U", env["PGUSER"] ?? "postgres",
                                               "-D", standby.data, "-R", "--checkpoint=fast", "-X", "stream"])
            let own = options.replacingOccurrences(of: "-p \(primaryPort) ", with: "-p \(standby.port) ")
            guard own != options else { throw TestSetupError(description: "no -p \(primaryPort) in SMS_RETRY_PGOPTS: \(options)") }
            try standby.tool("pg_ctl", ["-D", standby.data, "-w", "-t", "60", "-l", standby.folder + "/server.log", "-o", own, "start"])
        } catch {
            standby.stop()
            throw error
        }
        return standby
    }

    /// Waits until the standby has replayed the primary's WAL up to `lsn`; how long it took.
    func waitForReplay(of lsn: String) async throws -> Duration {
        let start = ContinuousClock.now
        let db = try await Database.connect(conninfo("postgres"))
        while ContinuousClock.now - start < .seconds(60) {
            if try await db.query("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done", [lsn])[0].bool("done") == true {
                return ContinuousClock.now - start
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestSetupError(description: "the standby did not replay up to \(lsn) within 60 s (log: \(folder)/server.log)")
    }

    func stop() {
        try? tool("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Runs a PostgreSQL program from the server's bin folder (as `postgres` when root), with
    /// every descriptor above stderr closed first (a server pg_ctl starts would inherit them and
    /// keep Foundation from seeing the child exit); its stderr goes to a file, quoted on failure.
    func tool(_ name: String, _ arguments: [String]) throws {
        var command = [bin + "/" + name] + arguments
        if getuid() == 0 { command = ["/usr/sbin/runuser", "-u", "postgres", "--"] + command }
        let log = folder + "/\(name).err"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", #"for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done 2>/dev/null; log=$1; shift; exec "$@" 2>>"$log""#,
                             name, log] + command
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw TestSetupError(description: "\(name) failed (\(process.terminationStatus)): \(text.suffix(600))")
        }
    }
}
