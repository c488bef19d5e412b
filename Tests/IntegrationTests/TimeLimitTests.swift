import Foundation
import Testing
@testable import SMSRetry

/// Statements sized to a DBA's time limits, on a real PostgreSQL (the drills with 20,000 rows are
/// `FaultDrills.ordinaryTimeouts` and `tinyTimeouts`).
@Suite struct TimeLimitTests {
    @Test("a record the router's lock holds past lock_timeout is made in pieces: every row written once the lock goes")
    func aRecordWaitsOutARoutersLockInPieces() async throws {
        let t = try await TestDatabase.make()
        let role = "limits_" + t.name.suffix(8)
        try await t.query("CREATE ROLE \(role) LOGIN")
        _ = try await Migrator(directory: Paths.migrations, logger: quietLogger).grantRuntime(t.db, to: role)
        try await t.query("ALTER ROLE \(role) SET lock_timeout = '20ms'")
        for i in 0..<10 { _ = try await t.insert(phone: "+1415713000\(i)") }
        let reporter = RetryStore(database: try await Database.connect("dbname=\(t.name) user=\(role)"), policy: noJitter, logger: quietLogger)
        for id in try await t.query("SELECT id FROM sms_usage_logs").all.compactMap({ $0.int("id") }) {
            _ = try await reporter.recordFailure(logID: id, errorCode: 30003, errorMessage: nil)
        }
        // The run's store, a second after the rows fall due; its pauses between pieces are real ones.
        let store = RetryStore(database: reporter.database, policy: noJitter, logger: quietLogger, clock: try await t.wallClockAtDue())
        let claimed = try await store.claim(limit: 10, lease: 300, runID: "test")
        #expect(claimed.count == 10)
        let outcomes = claimed.enumerated().map { i, row in
            Outcome(id: row.id, kind: .sent, counted: true, sid: "SM" + String(format: "%032d", i), leaseUntil: row.leaseUntil, outcome: .sent)
        }
        // The router holds one of them for 0.6 s: longer than lock_timeout, shorter than the patience.
        let router = try await Database.connect(t.conninfo)
        try await router.query("BEGIN")
        try await router.query("SELECT id FROM sms_usage_logs WHERE id = $1 FOR UPDATE", [String(claimed[4].id)])
        let release = Task {
            try await Task.sleep(for: .milliseconds(600))
            try await router.query("COMMIT")
        }
        let recorded = await store.recordInPieces(outcomes, logger: quietLogger)
        try await release.value
        #expect(recorded.failure == nil && recorded.unrecorded.isEmpty, "\(String(describing: recorded.failure))")
        #expect(Set(recorded.written.map(\.id)) == Set(claimed.map(\.id)))
        #expect(recorded.timeouts >= 2, "the batch, then its pieces holding the row, were cancelled: \(recorded.timeouts)")
        #expect(try await t.count("success AND retry_count = 1 AND NOT sms_retry ? 'lease'") == 10, "each written once")
    }

    @Test("expire closes the stale backlog batch after batch and leaves rows in flight to their run")
    func expireGoesBatchByBatch() async throws {
        let t = try await TestDatabase.make()
        let store = t.store()
        for i in 0..<7 {
            let id = try await t.insert(phone: "+1415714000\(i)")
            _ = try await store.recordFailure(logID: id, errorCode: 30003, errorMessage: nil)
        }
        try await t.query("UPDATE sms_usage_logs SET created_at = created_at - interval '2 days'")
        let inFlight = try await t.store(clock: t.clockAtDue()).claim(limit: 1, lease: 300, runID: "test")
        #expect(try await store.expire(olderThan: 86_400, batch: 2) == 6)
        #expect(try await t.count("sms_retry ->> 'reason' = 'expired' AND next_retry_at IS NULL") == 6)
        #expect(try await t.count("id = \(inFlight[0].id) AND sms_retry ? 'lease'") == 1, "the row in flight is its run's")
    }
}
