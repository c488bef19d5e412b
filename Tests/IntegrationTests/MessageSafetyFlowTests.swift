import Foundation
import Testing
@testable import SMSRetry
import TwilioStandIn

/// Quiet hours, the age limit per kind and the opt-out words, through a real run at a set time.
@Suite struct MessageSafetyFlowTests {
    static func utc(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }
    /// 21:05 in San Francisco (PDT), a year ahead so the views, which read the server's clock, see
    /// the held row as waiting.
    static let evening = utc("2027-07-15T04:05:00Z")

    /// A failed outbound row as of `at`: created `age` seconds before, due a minute before.
    func failed(_ t: TestDatabase, _ phone: String, kind: String?, age: Double, at: Date, content: String = "Hello") async throws -> Int {
        let metadata = kind.map { #"{"category": "\#($0)"}"# } ?? #"{"campaign": "x"}"#
        let id = try await t.insert(phone: phone, content: content, metadata: metadata)
        try await t.query("""
            UPDATE sms_usage_logs
            SET created_at = ($2::timestamptz - make_interval(secs => $3::float8)) AT TIME ZONE current_setting('TimeZone'),
                next_retry_at = $2::timestamptz - interval '1 minute', retry_count = 0, max_retries = 3,
                sms_retry = '{"error_code": "30003"}'
            WHERE id = $1
            """, [String(id), ISO8601DateFormatter().string(from: at), String(age)])
        return id
    }

    func inbound(_ t: TestDatabase, _ phone: String, _ text: String, minutesBefore: Double, at: Date) async throws {
        let id = try await t.insert(phone: phone, direction: "inbound", content: text, success: true, error: nil, metadata: nil)
        try await t.query("UPDATE sms_usage_logs SET created_at = ($2::timestamptz - make_interval(mins => $3::int)) AT TIME ZONE current_setting('TimeZone') WHERE id = $1",
                          [String(id), ISO8601DateFormatter().string(from: at), String(Int(minutesBefore))])
    }

    @Test("21:05 recipient-local: marketing held to 08:00 and sent then; an old otp closed; transactional sent; REVOKE and Opt Out block, a later YES re-allows")
    func aNightOfResends() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let at = Self.evening
        let marketing = try await failed(t, "+14155596001", kind: "marketing", age: 600, at: at, content: "20% off tonight")
        let otp = try await failed(t, "+14155596002", kind: "otp", age: 1_200, at: at, content: "Your code is 123456")
        let receipt = try await failed(t, "+14155596003", kind: "transactional", age: 600, at: at, content: "Your receipt")
        let revoked = try await failed(t, "+14155596004", kind: "transactional", age: 600, at: at)
        let optOut = try await failed(t, "+14155596005", kind: "transactional", age: 600, at: at)
        let backIn = try await failed(t, "+14155596006", kind: "transactional", age: 600, at: at)
        try await inbound(t, "+14155596004", "revoke", minutesBefore: 30, at: at)
        try await inbound(t, "+14155596005", " Opt Out ", minutesBefore: 30, at: at)
        try await inbound(t, "+14155596006", "STOP", minutesBefore: 30, at: at)
        try await inbound(t, "+14155596006", "Yes", minutesBefore: 20, at: at)

        // The dry run says what the run will do, in the recipient's time and in UTC.
        let runner = RetryRunner(store: t.store(clock: .at(at)), twilio: twilio.client(), options: RunOptions(), logger: quietLogger)
        let plan = Dictionary(uniqueKeysWithValues: try await runner.dryRun().map { ($0.logID, $0) })
        #expect(plan[marketing]?.kind == "marketing"
                && plan[marketing]?.action == "hold for quiet hours until 2027-07-15 08:00 PDT America/Los_Angeles (2027-07-15 15:00 UTC)",
                "\(String(describing: plan[marketing]))")
        #expect(plan[otp]?.action.hasPrefix("close as expired") == true && plan[receipt]?.action == "send")

        let night = try await runOnce(t, twilio, clock: .at(at))
        #expect(night.quiet == 1 && night.expired == 1 && night.optedOut == 2 && night.sent == 2, "\(night)")
        let sentTo = Set(await twilio.server.received.map(\.to))
        #expect(sentTo == ["+14155596003", "+14155596006"], "\(sentTo)")

        // The held row: not counted, due at 08:00 PDT, its reason and history say why.
        let held = try await t.query("""
            SELECT retry_count, next_retry_at = '2027-07-15T15:00:00Z'::timestamptz AS at_eight,
                   sms_retry ->> 'reason' AS reason, sms_retry -> 'history' -> -1 AS last
            FROM sms_usage_logs WHERE id = $1
            """, [String(marketing)])[0]
        #expect(held.int("retry_count") == 0 && held.bool("at_eight") == true && held.string("reason") == "quiet_hours")
        #expect(held.string("last")?.contains(#""outcome": "quiet_hours""#) == true
                && held.string("last")?.contains("08:00 PDT") == true, "\(held.string("last") ?? "")")
        let queue = try await t.query("SELECT held_quiet_hours FROM sms_retry_queue")[0]
        #expect(queue.int("held_quiet_hours") == 1)
        #expect(try await t.row(otp).string("reason") == "expired")
        #expect(try await t.row(revoked).string("reason") == "opted_out")
        #expect(try await t.row(optOut).string("reason") == "opted_out")
        #expect(try await t.row(backIn).bool("success") == true)

        // 08:00:30 PDT: the marketing row goes, with what is left of its 72 hours.
        let morning = Self.utc("2027-07-15T15:00:30Z")
        let next = try await runOnce(t, twilio, clock: .at(morning))
        #expect(next.sent == 1 && next.quiet == 0, "\(next)")
        let resend = await twilio.server.received.first { $0.to == "+14155596001" }
        #expect(resend?.body == "20% off tonight" && resend?.field("ValidityPeriod") == "36000")
        #expect(try await t.row(marketing).bool("success") == true)
    }
}
