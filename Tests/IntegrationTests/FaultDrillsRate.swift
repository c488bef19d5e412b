import Foundation
import Testing
@testable import SMSRetry
import TwilioStandIn

/// One rate for the fleet: runs share `--rate` (and `--sender-rate`) through PostgreSQL.
extension FaultDrills {
    /// Accepted creates per second from the first one, the last (partial) second left out.
    func perSecond(_ received: [TwilioStandIn.Received], from: String? = nil) -> [Int] {
        let times = received.filter { $0.sid != nil && (from == nil || $0.field("From") == from) }.map(\.at).sorted()
        guard let first = times.first, let last = times.last else { return [] }
        var buckets = [Int](repeating: 0, count: Int(last.timeIntervalSince(first)) + 1)
        for t in times { buckets[Int(t.timeIntervalSince(first))] += 1 }
        return Array(buckets.dropLast())
    }

    @Test("4 runs at --rate 20/s over 2,000 rows: together within 20/s ± 10%")
    func fourRunsShareTheRate() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        try await t.seedDue(2_000, prefix: "+1415620")
        let results = try await withThrowingTaskGroup(of: (code: Int32, out: String, err: String).self) { group in
            for i in 0..<4 {
                group.addTask {
                    try await Task.sleep(for: .milliseconds(300 * i))   // they do not start together
                    return try await runCLI(["run", "--database-url", t.conninfo, "--rate", "20/s", "--batch-size", "20",
                                             "--concurrency", "4", "--max-runtime", "150"], environment: twilio.environment)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0.code == 0 }, "\(results.map { ($0.code, $0.err.suffix(200)) })")
        let histogram = perSecond(await twilio.server.received)
        let sentByRun = results.map { summaryValue($0.out, "sent") }
        #expect(sentByRun.reduce(0, +) == 2_000 && sentByRun.filter { $0 > 0 }.count == 4, "\(sentByRun)")
        // 20/s ± 10% as a rate: every 3 seconds within 54–66 (a send a few ms late lands in the
        // next one-second bucket, so single seconds may read 18 then 22), from the first whole
        // second, while the runs join (each holds its first send until the others have counted it),
        // to the last seconds, as they run out of rows.
        let steady = Array(histogram.dropLast(3))
        let windows = steady.indices.dropLast(2).map { steady[$0] + steady[$0 + 1] + steady[$0 + 2] }
        let outside = windows.enumerated().filter { !(54...66).contains($0.element) }
        #expect(steady.count >= 90 && outside.isEmpty, "3-second windows outside 54–66: \(outside) of \(histogram)")
        #expect(histogram.prefix(2).allSatisfy { $0 <= 22 }, "the start, as runs join, is over the rate: \(histogram.prefix(2))")
        figure("fourRunsShareTheRate", "2000 rows, 4 runs at --rate 20/s (sent \(sentByRun.map(String.init).joined(separator: " + "))): per-second sends \(histogram.map(String.init).joined(separator: " ")); min \(histogram.min() ?? 0), max \(histogram.max() ?? 0), mean \(String(format: "%.2f", Double(histogram.reduce(0, +)) / Double(max(1, histogram.count))))")
    }

    @Test("--sender-rate: each sender at its own rate, two runs together")
    func theSenderRate() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        try await t.seedDue(120, prefix: "+1415621")
        try await t.query("UPDATE sms_usage_logs SET sms_metadata = sms_metadata || jsonb_build_object('from', CASE WHEN id % 2 = 0 THEN '+15005550400' ELSE '+15005550500' END)")
        async let a = runCLI(["run", "--database-url", t.conninfo, "--sender-rate", "5/s", "--batch-size", "10", "--concurrency", "4"], environment: twilio.environment)
        async let b = runCLI(["run", "--database-url", t.conninfo, "--sender-rate", "5/s", "--batch-size", "10", "--concurrency", "4"], environment: twilio.environment)
        let (ra, rb) = try await (a, b)
        #expect(ra.code == 0 && rb.code == 0 && summaryValue(ra.out, "sent") + summaryValue(rb.out, "sent") == 120, "\(ra) \(rb)")
        let received = await twilio.server.received
        let first = perSecond(received, from: "+15005550400"), second = perSecond(received, from: "+15005550500")
        #expect((first + second).allSatisfy { (4...6).contains($0) }, "per sender per second: \(first) / \(second)")
        figure("theSenderRate", "120 rows, 2 senders, 2 runs at --sender-rate 5/s: per-second sends of +15*******00 \(first.map(String.init).joined(separator: " ")), of the other \(second.map(String.init).joined(separator: " "))")
    }

    @Test("a run killed while holding its share of --rate: the others take it up within 2 s")
    func aKilledRunsShareIsTakenUp() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        try await t.seedDue(600, prefix: "+1415622")
        let args = ["run", "--database-url", t.conninfo, "--rate", "30/s", "--batch-size", "10", "--concurrency", "4"]
        let (victim, _) = try await spawnCLI(args, environment: twilio.environment, firstLine: false)
        async let a = runCLI(args, environment: twilio.environment)
        async let b = runCLI(args, environment: twilio.environment)
        try await Task.sleep(for: .seconds(4))
        let killedAt = Date()
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()
        let (ra, rb) = try await (a, b)
        #expect(ra.code == 0 && rb.code == 0, "\(ra) \(rb)")
        let times = await twilio.server.received.filter { $0.sid != nil }.map(\.at).sorted()
        func count(_ from: Double, _ to: Double) -> Int {
            times.filter { $0.timeIntervalSince(killedAt) >= from && $0.timeIntervalSince(killedAt) < to }.count
        }
        let before = (1...3).map { count(-Double($0) - 1, -Double($0)) }.reversed()
        let after = (0..<6).map { count(Double($0), Double($0) + 1) }
        let last = times.last.map { $0.timeIntervalSince(killedAt) } ?? 0
        let steady = after.dropFirst(2).prefix(max(0, Int(last) - 2))
        #expect(!steady.isEmpty && steady.allSatisfy { (27...33).contains($0) }, "from 2 s after the kill: \(Array(after))")
        figure("aKilledRunsShareIsTakenUp", "3 runs at --rate 30/s; sends per second before the kill \(before.map(String.init).joined(separator: " ")), after it \(after.map(String.init).joined(separator: " ")) (seconds 0, 1, 2, …)")
    }
}
