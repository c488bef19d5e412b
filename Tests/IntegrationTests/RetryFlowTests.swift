import Foundation
import Testing
@testable import SMSRetry

@Suite struct RetryFlowTests {
    @Test func scheduleThenRunSends() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let id = try await t.insert(phone: "+14155550101", content: "Your code is 482913")

        let before = Date()
        let outcome = try await t.store().recordFailure(logID: id, errorCode: 30003, errorMessage: "unreachable handset")
        guard case .scheduled(1, let at) = outcome else { Issue.record("scheduled, got \(outcome)"); return }
        #expect(abs(at.timeIntervalSince(before) - 300) < 5, "30003: linear, first delay 300 s")
        var row = try await t.row(id)
        #expect(row.int("retry_count") == 0 && row.int("max_retries") == 2 && row.bool("pending") == true)
        #expect(try await runOnce(t, twilio).claimed == 0, "not due yet")

        // Five minutes later, on the run's clock; the row is not rewritten.
        let summary = try await runOnce(t, twilio, clock: t.clockAtDue())
        #expect(summary.claimed == 1 && summary.sent == 1 && summary.exitCode == 0)
        let received = await twilio.server.received
        #expect(received.count == 1)
        #expect(received.first?.to == "+14155550101" && received.first?.from == StandIn.from && received.first?.body == "Your code is 482913")
        row = try await t.row(id)
        #expect(row.bool("success") == true && row.string("final_status") == "sent" && row.bool("pending") == false)
        #expect(row.int("retry_count") == 1)
        #expect(row.string("twilio_message_sid") == received.first?.sid)
        #expect(row.string("metadata")?.contains(#""campaign": "otp""#) == true, "foreign keys survive")
        #expect(row.int("history_length") == 2 && row.string("last_outcome") == "sent")
        #expect(row.string("state")?.contains("lease") == false, "the lease is gone once recorded")
    }

    @Test func retriesUntilExhausted() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        await twilio.server.setDefault(.fail(code: 30003))   // every resend: unreachable handset
        let id = try await t.insert()
        _ = try await t.store().recordFailure(logID: id, errorCode: 30003, errorMessage: "unreachable")

        var clock = try await t.clockAtDue()
        var summary = try await runOnce(t, twilio, clock: clock)
        #expect(summary.rescheduled == 1)
        var row = try await t.row(id, at: clock)
        #expect(row.int("retry_count") == 1 && row.bool("pending") == true)
        #expect(abs((row.double("due_in") ?? 0) - 600) < 5, "linear: base·(n+1) = 600 s after the first resend")
        #expect(row.string("retry_error")?.hasPrefix("Twilio error 30003") == true)

        clock = try await t.clockAtDue()
        summary = try await runOnce(t, twilio, clock: clock)
        #expect(summary.failed == 1)
        row = try await t.row(id)
        #expect(row.int("retry_count") == 2 && row.string("final_status") == "failed" && row.bool("pending") == false)
        #expect(row.string("reason") == "exhausted")
        #expect(row.int("history_length") == 3)

        try await t.query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), next_retry_at = now() - interval '1 second' WHERE id = $1", [String(id)])
        #expect(try await runOnce(t, twilio).claimed == 0, "retry_count = max_retries is never claimed")
        #expect(await twilio.server.received.count == 2)
    }

    @Test func notRetryableCodesCloseTheRow() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        // At schedule time: closed at once.
        let a = try await t.insert()
        let outcome = try await t.store().recordFailure(logID: a, errorCode: 21211, errorMessage: "invalid To")
        #expect(outcome == .notRetryable(code: 21211, meaning: "invalid 'To' phone number"))
        var row = try await t.row(a)
        #expect(row.string("final_status") == "failed" && row.bool("pending") == false && row.string("reason") == "not_retryable")

        // On a resend: 21610 (unsubscribed) closes it after one attempt.
        let b = try await t.insert(phone: "+14155550199")
        await twilio.server.script("+14155550199", [.fail(code: 21610)])
        _ = try await t.store().recordFailure(logID: b, errorCode: 30001, errorMessage: "queue overflow")
        let summary = try await runOnce(t, twilio, clock: t.clockAtDue())
        #expect(summary.failed == 1 && summary.sent == 0)
        row = try await t.row(b)
        #expect(row.int("retry_count") == 1 && row.string("final_status") == "failed" && row.string("reason") == "not_retryable")
    }

    @Test func rowsThatMustNotBeSentAreClosedUnsent() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let inbound = try await t.insert(direction: "inbound", content: "STOP")
        #expect(try await t.store().recordFailure(logID: inbound, errorCode: 30003, errorMessage: nil) == .notOutbound)
        #expect(try await t.store().recordFailure(logID: 999_999, errorCode: 30003, errorMessage: nil) == .rowNotFound)
        let empty = try await t.insert(content: nil)
        let blank = try await t.insert(content: "   ")
        let badNumber = try await t.insert(phone: "4155550100")
        for id in [empty, blank, badNumber] { _ = try await t.store().recordFailure(logID: id, errorCode: 30001, errorMessage: nil) }
        // A writer that set a retry on an inbound row by hand: still never sent.
        try await t.query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), success = false, next_retry_at = now() WHERE id = $1", [String(inbound)])

        let summary = try await runOnce(t, twilio, clock: t.clockAtDue())
        #expect(summary.skipped == 4 && summary.sent == 0 && summary.exitCode == 1)
        #expect(await twilio.server.received.isEmpty)
        #expect(try await t.row(inbound).string("reason") == "not_outbound")
        #expect(try await t.row(empty).string("reason") == "empty_body")
        #expect(try await t.row(blank).string("reason") == "empty_body")
        #expect(try await t.row(badNumber).string("reason") == "invalid_phone_number")
        for id in [inbound, empty, blank, badNumber] {
            let row = try await t.row(id)
            #expect(row.string("final_status") == "failed" && row.bool("pending") == false && row.int("retry_count") == 0)
        }
    }

    @Test func theRoutersMetadataIsNeverWritten() async throws {
        let t = try await TestDatabase.make()
        let plain = try await t.insert(metadata: nil)
        let array = try await t.insert(metadata: "[1, 2]")
        let foreignRetry = try await t.insert(metadata: #"{"retry": "router's own", "x": 1}"#)
        for id in [plain, array, foreignRetry] { _ = try await t.store().recordFailure(logID: id, errorCode: 30001, errorMessage: "m") }
        // sms-retry's state is in its own column; the router's sms_metadata is not written at all.
        let rows = try await t.query("SELECT sms_metadata::text AS m, sms_retry ->> 'error_code' AS c FROM sms_usage_logs ORDER BY id").all
        #expect(rows.map { $0.string("c") } == ["30001", "30001", "30001"])
        #expect(rows.map { $0.string("m") } == [nil, "[1, 2]", #"{"x": 1, "retry": "router's own"}"#])
    }

    @Test func historyIsBounded() async throws {
        let t = try await TestDatabase.make()
        let id = try await t.insert()
        for _ in 0..<(RetryStore.historyLimit + 5) { _ = try await t.store().recordFailure(logID: id, errorCode: 30001, errorMessage: "x") }
        #expect(try await t.row(id).int("history_length") == RetryStore.historyLimit)
    }

    @Test func throttlingAndServerErrors() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        await twilio.server.script("+14155550111", [.throttle(retryAfter: 120)])
        await twilio.server.script("+14155550112", [.serverError(status: 503)])
        let throttled = try await t.insert(phone: "+14155550111")
        let failing = try await t.insert(phone: "+14155550112")
        for id in [throttled, failing] { _ = try await t.store().recordFailure(logID: id, errorCode: 30001, errorMessage: nil) }
        let clock = try await t.clockAtDue()
        let summary = try await runOnce(t, twilio, clock: clock)
        #expect(summary.released == 1 && summary.rescheduled == 1)
        var row = try await t.row(throttled, at: clock)
        #expect(row.int("retry_count") == 0, "a 429 uses no attempt")
        #expect(abs((row.double("due_in") ?? 0) - 120) < 5, "Retry-After honoured")
        #expect(row.string("last_outcome") == "throttled")
        row = try await t.row(failing, at: clock)
        #expect(row.int("retry_count") == 1 && row.int("max_retries") == 3 && row.string("last_outcome") == "http_error")
        #expect(abs((row.double("due_in") ?? 0) - 120) < 5, "transport rule: 60·2^1")
    }

    @Test("a 429 pause that outlasts --max-runtime: the run stops claiming instead of handing the backlog back batch after batch")
    func noChurnAtTheDeadline() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        await twilio.server.setDefault(.throttle(retryAfter: 30))
        try await t.query("""
            INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content,
                                        success, retry_count, next_retry_at)
            SELECT g, '+1415580' || lpad(g::text, 4, '0'), 'outbound', 5, 'hello', false, 0, now() - interval '1 second'
            FROM generate_series(1, 1000) AS g
            """)
        let summary = try await runOnce(t, twilio) {
            $0.batchSize = 50
            $0.concurrency = 4
            $0.maxRuntime = .seconds(3)
        }
        #expect(summary.throttled >= 1 && summary.sent == 0)
        #expect(summary.claimed <= 50, "one batch claimed, not the backlog: \(summary)")
        #expect(summary.released == summary.claimed)
        #expect(try await t.count("retry_count > 0") == 0)
    }

    @Test func badCredentialsStopTheRunAndCountNothing() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        var ids: [Int] = []
        for i in 0..<5 { ids.append(try await t.insert(phone: "+1415555020\(i)")) }
        for id in ids { _ = try await t.store().recordFailure(logID: id, errorCode: 30001, errorMessage: nil) }
        let clock = try await t.clockAtDue()
        let summary = try await runOnce(t, twilio, token: "wrong-token", clock: clock) { $0.concurrency = 1 }
        #expect(summary.configurationError && summary.exitCode == 2 && summary.sent == 0)
        #expect(summary.stoppedBecause?.contains("credentials") == true)
        #expect(summary.stoppedBecause?.contains("wrong-token") == false)
        for id in ids {
            let row = try await t.row(id, at: clock)
            #expect(row.int("retry_count") == 0 && (row.double("due_in") ?? 1) <= 0.5, "released, due again, no attempt used")
        }
    }

    @Test func sentReportsAndDryRun() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let id = try await t.insert(success: true, error: nil)
        let sid = "SM" + String(repeating: "ab", count: 16)
        #expect(try await t.store().recordSent(logID: id, messageSID: sid) == .recorded)
        #expect(try await t.row(id).string("twilio_message_sid") == sid)
        #expect(try await t.store().recordSent(logID: 424_242, messageSID: sid) == .rowNotFound)

        let due = try await t.insert(phone: "+14155550177")
        _ = try await t.store().recordFailure(logID: due, errorCode: 30001, errorMessage: nil)
        let clock = try await t.clockAtDue()
        let runner = RetryRunner(store: t.store(clock: clock), twilio: twilio.client(), logger: quietLogger)
        let listed = try await runner.dryRun()
        #expect(listed.map(\.logID) == [due] && listed.first?.maskedPhone == "+14*******77")
        let untouched = try await t.row(due, at: clock)
        #expect(untouched.int("retry_count") == 0 && (untouched.double("due_in") ?? 1) < 0, "a dry run changes nothing")
        #expect(await twilio.server.received.isEmpty)
    }

    @Test func aDeadRunsRowsComeBackAfterTheLeaseAndItsLateOutcomeIsRefused() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let id = try await t.insert(phone: "+14155550188")
        _ = try await t.store().recordFailure(logID: id, errorCode: 30001, errorMessage: nil)
        let clock = try await t.clockAtDue()
        // A run claims the row, then dies before sending or recording.
        let claimed = try await t.store(clock: clock).claim(limit: 10, lease: 300, runID: "dead-run")
        #expect(claimed.map(\.id) == [id])
        #expect(try await runOnce(t, twilio, clock: clock).claimed == 0, "leased rows are not due")
        // The lease runs out: a run a second after its end.
        let summary = try await runOnce(t, twilio, clock: t.clockAtDue())
        #expect(summary.sent == 1)
        // The dead run wakes up and tries to record: refused, the newer outcome stands.
        let late = try await t.store().record([Outcome(id: id, kind: .failed, reason: .canceled, leaseUntil: claimed[0].leaseUntil, outcome: .canceled)])
        #expect(late.isEmpty)
        #expect(try await t.row(id).string("final_status") == "sent")
    }
}
