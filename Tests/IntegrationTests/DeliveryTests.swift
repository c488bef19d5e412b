import Foundation
import Testing
@testable import SMSRetry
import TwilioStandIn

/// Status callbacks applied through the library: every order, duplicates, unknown input.
@Suite struct DeliveryTests {
    static func sid(_ n: Int) -> String { "SM" + String(format: "%032x", n) }

    /// A message the router sent and reported (`recordSent`), as a callback would find it.
    func sentRow(_ t: TestDatabase, sid: String) async throws -> Int {
        let id = try await t.insert(success: true, error: nil)
        #expect(try await t.store().recordSent(logID: id, messageSID: sid) == .recorded)
        return id
    }

    func permutations<T>(_ items: [T]) -> [[T]] {
        guard items.count > 1 else { return [items] }
        return items.indices.flatMap { i -> [[T]] in
            var rest = items
            let head = rest.remove(at: i)
            return permutations(rest).map { [head] + $0 }
        }
    }

    @Test("sending, sent, delivered in every order, each twice: delivered, once")
    func deliveredInEveryOrder() async throws {
        let t = try await TestDatabase.make()
        let store = t.store()
        for (n, order) in permutations(["sending", "sent", "delivered"]).enumerated() {
            let sid = Self.sid(n)
            let id = try await sentRow(t, sid: sid)
            for status in order { _ = try await store.recordDeliveryStatus(messageSID: sid, status: status) }
            let before = try await t.row(id).string("state")
            for status in order {
                let again = try await store.recordDeliveryStatus(messageSID: sid, status: status)
                #expect(again == .unchanged(logID: id, current: "delivered"), "\(order): a duplicate \(status) changes nothing")
            }
            #expect(try await t.row(id).string("state") == before, "\(order): duplicates write nothing")
            let row = try await t.query("""
                SELECT success, final_status, delivery_confirmed_at IS NOT NULL AS confirmed, next_retry_at IS NULL AS idle,
                       sms_retry -> 'delivery' ->> 'status' AS status, sms_metadata ->> 'campaign' AS campaign
                FROM sms_usage_logs WHERE id = $1
                """, [String(id)])[0]
            #expect(row.bool("success") == true && row.string("final_status") == "delivered", "\(order)")
            #expect(row.bool("confirmed") == true && row.bool("idle") == true, "\(order)")
            #expect(row.string("status") == "delivered" && row.string("campaign") == "otp", "\(order)")
        }
    }

    @Test("sent and undelivered 30003 in either order, each twice: one retry scheduled, the attempt counted once")
    func undeliveredInEveryOrder() async throws {
        let t = try await TestDatabase.make()
        let store = t.store()
        for (n, order) in permutations([("sent", nil), ("undelivered", 30003)] as [(String, Int?)]).enumerated() {
            let sid = Self.sid(100 + n)
            let id = try await sentRow(t, sid: sid)
            var outcomes: [RetryStore.DeliveryOutcome] = []
            for (status, code) in order + order {
                outcomes.append(try await store.recordDeliveryStatus(messageSID: sid, status: status, errorCode: code))
            }
            let scheduled = outcomes.filter { if case .scheduled = $0 { true } else { false } }
            #expect(scheduled.count == 1, "\(order.map(\.0)): \(outcomes)")
            if case .scheduled(_, let attempt, let at) = scheduled.first {
                #expect(attempt == 1 && at > Date())
            }
            let row = try await t.row(id)
            #expect(row.bool("success") == false && row.bool("pending") == true)
            #expect(row.string("final_status") == "undelivered" && row.int("retry_count") == 0)
            #expect(row.string("last_outcome") == "undelivered")
            #expect(row.string("metadata")?.contains(#""campaign": "otp""#) == true)
        }
    }

    @Test("the first final word stands: delivered then undelivered, undelivered then delivered")
    func finalStatusesDoNotReplaceEachOther() async throws {
        let t = try await TestDatabase.make()
        let store = t.store()
        let a = try await sentRow(t, sid: Self.sid(200))
        _ = try await store.recordDeliveryStatus(messageSID: Self.sid(200), status: "delivered")
        #expect(try await store.recordDeliveryStatus(messageSID: Self.sid(200), status: "undelivered", errorCode: 30003)
                == .unchanged(logID: a, current: "delivered"))
        #expect(try await t.row(a).string("final_status") == "delivered")
        // `read` (WhatsApp/RCS) comes after delivered.
        #expect(try await store.recordDeliveryStatus(messageSID: Self.sid(200), status: "read") == .delivered(logID: a))

        let b = try await sentRow(t, sid: Self.sid(201))
        _ = try await store.recordDeliveryStatus(messageSID: Self.sid(201), status: "undelivered", errorCode: 30003)
        #expect(try await store.recordDeliveryStatus(messageSID: Self.sid(201), status: "delivered")
                == .unchanged(logID: b, current: "undelivered"))
    }

    @Test("not retryable, exhausted, failed without a code, canceled")
    func closingStatuses() async throws {
        let t = try await TestDatabase.make()
        let store = t.store()
        let blocked = try await sentRow(t, sid: Self.sid(300))
        #expect(try await store.recordDeliveryStatus(messageSID: Self.sid(300), status: "undelivered", errorCode: 30007)
                == .closed(logID: blocked, reason: "not_retryable"))
        let row = try await t.row(blocked)
        #expect(row.bool("pending") == false && row.string("final_status") == "undelivered" && row.string("reason") == "not_retryable")

        let spent = try await sentRow(t, sid: Self.sid(301))
        try await t.query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), retry_count = max_retries WHERE id = $1", [String(spent)])
        #expect(try await store.recordDeliveryStatus(messageSID: Self.sid(301), status: "undelivered", errorCode: 30003)
                == .closed(logID: spent, reason: "exhausted"))

        let noCode = try await sentRow(t, sid: Self.sid(302))
        if case .scheduled = try await store.recordDeliveryStatus(messageSID: Self.sid(302), status: "failed") {} else {
            Issue.record("failed without an ErrorCode is retried as a transient failure")
        }
        #expect(try await t.row(noCode).string("final_status") == "failed")

        let canceled = try await sentRow(t, sid: Self.sid(303))
        #expect(try await store.recordDeliveryStatus(messageSID: Self.sid(303), status: "canceled") == .closed(logID: canceled, reason: "canceled"))
    }

    @Test("unknown SIDs and unknown statuses are reported, never thrown, and write nothing")
    func unknownInput() async throws {
        let t = try await TestDatabase.make()
        let store = t.store()
        let id = try await sentRow(t, sid: Self.sid(400))
        let before = try await t.row(id).string("state")
        #expect(try await store.recordDeliveryStatus(messageSID: Self.sid(999), status: "delivered") == .unknownMessage)
        #expect(try await store.recordDeliveryStatus(messageSID: Self.sid(400), status: "teleported") == .unknownStatus("teleported"))
        #expect(try await store.recordDeliveryStatus(messageSID: "'; DROP TABLE sms_usage_logs; --", status: "sent") == .unknownMessage)
        #expect(try await t.row(id).string("state") == before)
        // Case and spaces in the status are Twilio's problem, not a lost callback.
        #expect(try await store.recordDeliveryStatus(messageSID: Self.sid(400), status: " Delivered ") == .delivered(logID: id))
    }

    @Test("a resend's undelivered callback uses the next attempt; its delivered callback ends the retries")
    func resendLifecycle() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let store = t.store()
        let id = try await sentRow(t, sid: Self.sid(500))
        _ = try await store.recordDeliveryStatus(messageSID: Self.sid(500), status: "undelivered", errorCode: 30003)
        // The run's clock moves to the retry's time; the row stays as the callback left it.
        #expect(try await runOnce(t, twilio, clock: t.clockAtDue()).sent == 1)
        let resent = try await t.row(id)
        let newSID = try #require(resent.string("twilio_message_sid"))
        #expect(newSID != Self.sid(500) && resent.int("retry_count") == 1 && resent.string("final_status") == "sent")
        // A late duplicate about the first message finds no row: that SID is history.
        #expect(try await store.recordDeliveryStatus(messageSID: Self.sid(500), status: "undelivered", errorCode: 30003) == .unknownMessage)
        if case .scheduled(_, let attempt, _) = try await store.recordDeliveryStatus(messageSID: newSID, status: "undelivered", errorCode: 30003) {
            #expect(attempt == 2)
        } else { Issue.record("the resend's undelivered schedules resend 2") }
        #expect(try await runOnce(t, twilio, clock: t.clockAtDue()).sent == 1)
        let third = try #require(try await t.row(id).string("twilio_message_sid"))
        #expect(try await store.recordDeliveryStatus(messageSID: third, status: "delivered") == .delivered(logID: id))
        let done = try await t.row(id)
        #expect(done.bool("success") == true && done.int("retry_count") == 2 && done.bool("pending") == false)
        #expect(await twilio.server.received.count == 2)
    }
}
