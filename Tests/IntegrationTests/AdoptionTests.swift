import Foundation
import Testing
@testable import SMSRetry
import TwilioStandIn

/// `run --adopt-failures` on rows written the way the seed's Python router writes them:
/// `success = false` and `str(TwilioRestException)` in `error_message`, no call to the library.
@Suite struct AdoptionTests {
    @Test("unreported failures are classified by their code; old, inbound, reported and fresh rows are left as they should be")
    func adoptsWhatTheRouterWrote() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        func routerRow(_ phone: String, _ error: String?, direction: String = "outbound", success: Bool = false,
                       metadata: String? = #"{"source": "router"}"#, age: String = "2 minutes") async throws -> Int {
            let id = try await t.insert(phone: phone, direction: direction, success: success, error: error, metadata: metadata)
            try await t.query("UPDATE sms_usage_logs SET created_at = localtimestamp - $2::interval WHERE id = $1", [String(id), age])
            return id
        }
        let transient = try await routerRow("+14155550171", "HTTP 400 error: Unable to create record: Twilio 30003")
        let invalid = try await routerRow("+14155550172", "HTTP 400 error: Unable to create record: The 'To' number +14155550172 is not a valid phone number.\nMore information: https://www.twilio.com/docs/errors/21211")
        let timeout = try await routerRow("+14155550173", "HTTPSConnectionPool(host='api.twilio.com', port=443): Read timed out. (read timeout=30000 ms)", metadata: nil)
        let fromMetadata = try await routerRow("+14155550174", "failed", metadata: #"{"error_code": 30007}"#)
        let old = try await routerRow("+14155550175", "HTTP 400 error: Unable to create record: Twilio 30003", age: "2 days")
        let inbound = try await routerRow("+14155550176", "parse error", direction: "inbound")
        let sent = try await routerRow("+14155550177", nil, success: true)
        let fresh = try await routerRow("+14155550178", "HTTP 400 error: Unable to create record: Twilio 30003", age: "1 second")
        let reported = try await routerRow("+14155550179", "Twilio 30001")
        _ = try await t.store().recordFailure(logID: reported, errorCode: 30001, errorMessage: "Twilio 30001")
        let untouched = [inbound, sent, fresh, reported]
        var before: [Int: String?] = [:]
        for id in untouched { before[id] = try await t.row(id).string("state") }

        #expect(try await runOnce(t, twilio).adopted == 0, "off by default")
        let summary = try await runOnce(t, twilio) { $0.adopt = true }
        #expect(summary.adopted == 5 && summary.claimed == 0, "\(summary)")
        #expect(summary.adoption == AdoptionSplit(scheduled: 2, expired: 1, notRetryable: 2), "\(summary)")

        let a = try await t.row(transient)
        #expect(a.bool("pending") == true && a.int("retry_count") == 0 && a.string("state")?.contains(#""error_code": 30003"#) == true)
        #expect(a.string("metadata")?.contains(#""source": "router""#) == true, "the router's keys survive")
        #expect(try await t.row(invalid).string("reason") == "not_retryable")
        #expect(try await t.row(timeout).bool("pending") == true, "a timeout is transient; 30000 ms is not a code")
        #expect(try await t.row(fromMetadata).string("reason") == "not_retryable", "30007 from sms_metadata")
        let expired = try await t.row(old)
        #expect(expired.string("reason") == "expired" && expired.bool("pending") == false)
        for id in untouched { #expect(try await t.row(id).string("state") == before[id]!, "row \(id) untouched") }
        #expect(try await runOnce(t, twilio) { $0.adopt = true }.adopted == 0, "adopted once")

        try await t.query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), next_retry_at = now() - interval '1 second' WHERE id = ANY($1::bigint[])",
                          ["{\(transient),\(timeout)}"])
        #expect(try await runOnce(t, twilio).sent == 2)
        #expect(Set(await twilio.server.received.map(\.to)) == ["+14155550171", "+14155550173"])
    }

    @Test("the adoption query reads the partial index, whatever the size of the table")
    func adoptionUsesItsIndex() async throws {
        let t = try await TestDatabase.make()
        try await t.query("""
            INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content, success,
                                        error_message, created_at)
            SELECT 1, '+1415555' || lpad((g % 10000)::text, 4, '0'), 'outbound', 5, 'hello', g % 40 <> 0,
                   CASE WHEN g % 40 = 0 THEN 'HTTP 400 error: Twilio 30003' END, localtimestamp - interval '1 hour'
            FROM generate_series(1, 40000) g
            """)
        // All but the newest few have been classified already.
        try await t.query("UPDATE sms_usage_logs SET sms_retry = '{}' WHERE success = false AND id < 39000")
        try await t.query("ANALYZE sms_usage_logs")
        let sql = Queries.unadoptedLock.replacingOccurrences(of: "$1", with: "500").replacingOccurrences(of: "$2::float8", with: "30")
            .replacingOccurrences(of: "$3::timestamptz", with: "NULL::timestamptz")
        let plan = try await t.query("EXPLAIN " + sql).all.compactMap { $0.string("QUERY PLAN") }.joined(separator: "\n")
        #expect(plan.contains("sms_usage_logs_retry_work_idx"), "\(plan)")
        #expect(!plan.contains("Seq Scan"), "\(plan)")
    }
}
