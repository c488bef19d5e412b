import Foundation
import Testing
@testable import SMSRetry

@Suite struct ConcurrencyTests {
    @Test func twoRunsOverOneBacklogSendEachRowExactlyOnce() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start(latency: .milliseconds(2))
        defer { Task { await twilio.stop() } }
        let rows = 400
        try await t.query("""
            INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content,
                                        success, next_retry_at, max_retries)
            SELECT g, '+1415600' || lpad(g::text, 4, '0'), 'outbound', 5, 'hello', false, now() - interval '1 second', 3
            FROM generate_series(1, \(rows)) g
            """)
        // Two runs, each with its own connection, as two cron hosts would have.
        let second = try await Database.connect(t.conninfo)
        func run(_ db: Database) async throws -> RunSummary {
            var options = RunOptions()
            options.batchSize = 20
            options.concurrency = 8
            return try await RetryRunner(store: RetryStore(database: db, policy: noJitter, logger: quietLogger),
                                         twilio: twilio.client(), options: options, logger: quietLogger).run()
        }
        async let a = run(t.db)
        async let b = run(second)
        let (ra, rb) = try await (a, b)
        #expect(ra.claimed > 0 && rb.claimed > 0, "both runs took a share: \(ra.claimed) + \(rb.claimed)")
        #expect(ra.claimed + rb.claimed == rows)
        #expect(ra.sent + rb.sent == rows)
        let received = await twilio.server.received
        #expect(received.count == rows, "no message sent twice")
        #expect(Set(received.map(\.to)).count == rows)
        #expect(try await t.query("SELECT count(*) AS n FROM sms_usage_logs WHERE final_status = 'sent' AND retry_count = 1")[0].int("n") == rows)
    }
}
