import Foundation
import Testing
@testable import SMSRetry
import TwilioStandIn

/// Overlapping runs, a run killed mid-batch, PostgreSQL going away mid-run.
extension FaultDrills {
    @Test("4 sms-retry run processes at once over 5,000 due rows: every row sent exactly once")
    func fourRunsAtOnce() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let numbers = try await t.seedDue(5_000, prefix: "+1415600")
        let clock = ContinuousClock()
        let started = clock.now
        let results = try await withThrowingTaskGroup(of: (code: Int32, out: String, err: String).self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await runCLI(["run", "--database-url", t.conninfo, "--batch-size", "50", "--concurrency", "8"],
                                     environment: twilio.environment)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let elapsed = clock.now - started
        #expect(results.allSatisfy { $0.code == 0 }, "\(results.map { ($0.code, $0.err.suffix(300)) })")
        let sentByRun = results.map { summaryValue($0.out, "sent") }
        let perNumber = await twilio.acceptedPerNumber()
        let duplicates = perNumber.values.reduce(0) { $0 + max(0, $1 - 1) }
        #expect(Set(perNumber.keys) == Set(numbers), "every row was sent")
        #expect(duplicates == 0, "no row sent twice")
        #expect(sentByRun.reduce(0, +) == 5_000, "\(sentByRun)")
        #expect(sentByRun.filter { $0 > 0 }.count >= 2, "the runs overlapped: \(sentByRun)")
        #expect(await twilio.server.requestsTotal == 5_000)
        #expect(try await t.count("success AND retry_count = 1 AND twilio_message_sid IS NOT NULL") == 5_000)
        #expect(try await t.halfUpdated() == 0)
        figure("fourRunsAtOnce", "5000 due rows, 4 runs at once sent \(sentByRun.map(String.init).joined(separator: " + ")) = \(sentByRun.reduce(0, +)); create requests \(await twilio.server.requestsTotal); numbers sent twice \(duplicates); wall time \(elapsed.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1))))")
    }

    @Test("kill -9 of a run mid-batch, then a run after the lease: nothing lost, nothing stuck, nothing sent twice")
    func killedMidBatch() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start(latency: .milliseconds(5))
        defer { Task { await twilio.stop() } }
        let numbers = try await t.seedDue(2_000, prefix: "+1415601")
        let (process, _) = try await spawnCLI(["run", "--database-url", t.conninfo, "--batch-size", "100", "--concurrency", "8"],
                                              environment: twilio.environment, firstLine: false)
        try await twilio.waitForAccepted(500)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        // Requests that reached the stand-in before the kill are still being answered (its 5 ms).
        try await Task.sleep(for: .milliseconds(500))
        let acceptedBeforeKill = await twilio.server.acceptedTotal
        let recordedBeforeKill = try await t.count("success")
        let leased = try await t.count("sms_retry ? 'lease'")
        #expect(acceptedBeforeKill >= 500 && acceptedBeforeKill < 2_000, "killed mid-run: \(acceptedBeforeKill)")
        #expect(try await t.halfUpdated() == 0, "every row is either recorded as sent or still pending")
        // 300 s later the dead run's leases have run out.
        try await t.expireLeases()
        let result = try await runCLI(["run", "--database-url", t.conninfo], environment: twilio.environment)
        #expect(result.code == 0, "\(result)")
        let reconciled = summaryValue(result.out, "reconciled")
        let perNumber = await twilio.acceptedPerNumber()
        let duplicates = perNumber.values.reduce(0) { $0 + max(0, $1 - 1) }
        #expect(Set(perNumber.keys) == Set(numbers), "no row lost")
        #expect(duplicates == 0, "no message the stand-in had accepted was sent again")
        #expect(reconciled == acceptedBeforeKill - recordedBeforeKill,
                "every accepted-but-unrecorded send was found at Twilio: \(result.out)")
        #expect(try await t.count("NOT success OR next_retry_at IS NOT NULL OR sms_retry ? 'lease'") == 0, "none stuck")
        #expect(try await t.halfUpdated() == 0)
        figure("killedMidBatch", "2000 rows; killed after \(acceptedBeforeKill) accepted, \(recordedBeforeKill) recorded, \(leased) rows under the dead run's lease; next run: reconciled \(reconciled) (found at Twilio, not resent), sent \(summaryValue(result.out, "sent")); create requests \(await twilio.server.requestsTotal) for 2000 rows; duplicates \(duplicates); lost 0; stuck 0")
    }

    @Test("PostgreSQL restarted for 2 s during a run: the run reconnects and finishes; nothing sent twice")
    func databaseBlipMidRun() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start(latency: .milliseconds(10))
        defer { Task { await twilio.stop() } }
        let numbers = try await t.seedDue(1_500, prefix: "+1415608")
        async let run = runCLI(["run", "--database-url", t.conninfo, "--batch-size", "100", "--concurrency", "8"],
                               environment: twilio.environment)
        try await twilio.waitForAccepted(300)
        let clock = ContinuousClock()
        let stopped = clock.now
        try PostgresServer.stop()
        try await Task.sleep(for: .seconds(2))
        try PostgresServer.start()
        let down = clock.now - stopped
        let result = try await run
        let db = try await Database.connect(t.conninfo)
        let after = TestDatabase(name: t.name, db: db)
        let perNumber = await twilio.acceptedPerNumber()
        let duplicates = perNumber.values.reduce(0) { $0 + max(0, $1 - 1) }
        #expect(result.code == 0, "\(result.code) \(result.err.suffix(600))")
        #expect(Set(perNumber.keys) == Set(numbers) && duplicates == 0)
        #expect(try await after.count("success AND retry_count = 1") == 1_500)
        #expect(try await after.halfUpdated() == 0)
        figure("databaseBlipMidRun", "1500 rows; PostgreSQL down \(down.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1)))) mid-run: the same run reconnected and exited \(result.code): \(result.out.trimmingCharacters(in: .whitespacesAndNewlines)); duplicates \(duplicates)")
    }

    @Test("PostgreSQL stopped during a run: exit 3, no half-updated row; the next run finishes without duplicates")
    func databaseRestartedMidRun() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start(latency: .milliseconds(10))
        defer { Task { await twilio.stop() } }
        let numbers = try await t.seedDue(3_000, prefix: "+1415602")
        let clock = ContinuousClock()
        async let firstRun = runCLI(["run", "--database-url", t.conninfo, "--batch-size", "100", "--concurrency", "8"],
                                    environment: twilio.environment)
        try await twilio.waitForAccepted(300)
        try PostgresServer.stop()
        let stopped = clock.now
        let acceptedAtStop = await twilio.server.acceptedTotal
        let first = try await firstRun
        let exitedAfter = clock.now - stopped
        try PostgresServer.start()
        #expect(first.code == 3, "the database exit code: \(first)")
        #expect(first.err.contains("database"), "\(first.err.suffix(400))")
        let acceptedByFirst = await twilio.server.acceptedTotal
        let db = try await Database.connect(t.conninfo)
        let t2 = TestDatabase(name: t.name, db: db)
        let recorded = try await t2.count("success")
        #expect(try await t2.halfUpdated() == 0, "no row half-updated")
        try await t2.expireLeases()
        let second = try await runCLI(["run", "--database-url", t.conninfo], environment: twilio.environment)
        #expect(second.code == 0, "\(second)")
        let perNumber = await twilio.acceptedPerNumber()
        let duplicates = perNumber.values.reduce(0) { $0 + max(0, $1 - 1) }
        #expect(Set(perNumber.keys) == Set(numbers), "the next run finished the work")
        #expect(duplicates == 0)
        #expect(try await t2.count("success") == 3_000)
        #expect(try await t2.halfUpdated() == 0)
        figure("databaseRestartedMidRun", "3000 rows; PostgreSQL stopped after \(acceptedAtStop) accepted; the run exited \(first.code) \(exitedAfter.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1)))) later having sent \(acceptedByFirst), \(recorded) recorded; half-updated rows 0; next run: reconciled \(summaryValue(second.out, "reconciled")), sent \(summaryValue(second.out, "sent")); duplicates \(duplicates)")
    }
}
