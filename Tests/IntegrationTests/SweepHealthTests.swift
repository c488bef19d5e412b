import Foundation
import Testing
@testable import SMSRetry
import TwilioStandIn

/// sms_retry_health's warning on accepted messages left without a final status (migration 010),
/// and the sweep that clears it.
@Suite struct SweepHealthTests {
    func health(_ t: TestDatabase) async throws -> (status: String, reasons: String, unconfirmed: Int) {
        let r = try await t.query("SELECT status, array_to_json(reasons)::text AS reasons, unconfirmed FROM sms_retry_health")[0]
        return (r.string("status") ?? "", r.string("reasons") ?? "", r.int("unconfirmed") ?? -1)
    }

    @Test("150 accepted messages without a final word for 2 hours: a warning; one reconcile later: healthy")
    func lostCallbacksWarnUntilSwept() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        var sids: [String] = []
        for i in 0..<150 {
            sids.append(await twilio.server.preload(to: String(format: "+1415%07d", 8_000_000 + i), body: "hello",
                                                    created: Date().addingTimeInterval(-7200)))
        }
        // And 50 younger than an hour, which the warning does not count yet.
        for i in 0..<50 {
            sids.append(await twilio.server.preload(to: String(format: "+1415%07d", 8_100_000 + i), body: "hello",
                                                    created: Date().addingTimeInterval(-1800)))
        }
        try await t.query("""
            INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content, success,
                                        twilio_message_sid, created_at)
            SELECT 1, '+14155550100', 'outbound', 5, 'hello', true, sid,
                   sms_retry_router_time(now()) - CASE WHEN n <= 150 THEN interval '2 hours' ELSE interval '30 minutes' END
            FROM unnest($1::text[]) WITH ORDINALITY AS u(sid, n)
            """, [PGArray.literal(sids)])
        let before = try await health(t)
        #expect(before.status == "warning" && before.unconfirmed == 150
                && before.reasons.contains("150 accepted messages have had no final status for more than 01:00:00"), "\(before)")
        try await t.query("SET sms_retry.health_warn_unconfirmed = '200'")
        #expect(try await health(t).status == "healthy", "the threshold is a setting")
        try await t.query("RESET sms_retry.health_warn_unconfirmed")

        let summary = try await Reconciler(store: t.store(), twilio: twilio.client(), logger: quietLogger).run()
        #expect(summary.swept == 200 && summary.confirmed == 200 && summary.requests == 1, "\(summary)")
        let after = try await health(t)
        #expect(after.status == "healthy" && after.unconfirmed == 0, "\(after)")
    }
}
