import Foundation
import Testing
@testable import SMSRetry
import TwilioStandIn

/// A send whose answer never reached the table: Twilio is asked before anything is resent.
@Suite struct ReconcileTests {
    /// Starts `sms-retry run` for one due row whose send the stand-in accepts but never answers,
    /// and `kill -9`s it once the message exists at Twilio: killed between claim and record. The
    /// row is left leased, as the dead run left it.
    func killRunAfterTwilioAccepted(_ t: TestDatabase, _ twilio: StandIn, phone: String) async throws -> Int {
        let id = try await t.insert(phone: phone)
        _ = try await t.store().recordFailure(logID: id, errorCode: 30001, errorMessage: nil)
        try await t.makeDue()
        await twilio.server.script(phone, [.acceptThenHang(.seconds(60))])
        let (process, _) = try await spawnCLI(["run", "--database-url", t.conninfo], environment: twilio.environment,
                                              firstLine: false)
        var waited = 0
        while await twilio.server.acceptedTotal == 0 && waited < 200 {
            try await Task.sleep(for: .milliseconds(50))
            waited += 1
        }
        #expect(await twilio.server.acceptedTotal == 1, "the stand-in accepted the message")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let row = try await t.row(id)
        #expect(row.bool("success") == false && row.int("retry_count") == 0 && row.string("twilio_message_sid") == nil,
                "the run died before recording anything")
        #expect(row.string("state")?.contains(#""lease""#) == true)
        return id
    }

    @Test("kill -9 between claim and record, then the next run: found at Twilio, recorded, not sent twice")
    func killedRunThenRun() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let phone = "+14155550161"
        let id = try await killRunAfterTwilioAccepted(t, twilio, phone: phone)
        // The lease runs out: the next run a second after its end.
        let summary = try await runOnce(t, twilio, clock: t.clockAtDue())
        #expect(summary.reconciled == 1 && summary.sent == 0, "\(summary)")
        let sent = await twilio.server.received.filter { $0.to == phone }
        #expect(sent.count == 1, "one create request in all: no duplicate")
        let row = try await t.row(id)
        #expect(row.bool("success") == true && row.int("retry_count") == 1 && row.bool("pending") == false)
        #expect(row.string("twilio_message_sid") == sent.first?.sid)
        #expect(row.string("state")?.contains("not resent") == true && row.string("state")?.contains("uncertain") == false)
        #expect(try await runOnce(t, twilio).claimed == 0)
    }

    @Test("kill -9 between claim and record, then sms-retry reconcile: recorded without a run")
    func killedRunThenReconcileCommand() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let phone = "+14155550162"
        let id = try await killRunAfterTwilioAccepted(t, twilio, phone: phone)
        // The lease runs out (as if its 300 s had passed): the command reads the system clock.
        try await t.makeDue()
        let result = try await runCLI(["reconcile", "--database-url", t.conninfo], environment: twilio.environment)
        #expect(result.code == 0 && result.out.hasPrefix("found=1 not_found=0"), "\(result)")
        let row = try await t.row(id)
        #expect(row.bool("success") == true && row.int("retry_count") == 1)
        #expect(await twilio.server.received.filter { $0.to == phone }.count == 1)
    }

    @Test("a timed-out send is looked up first: found ones are recorded, missing ones are sent once")
    func timeoutsAreLookedUpBeforeResending() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let (client, http) = twilio.client(timeout: .milliseconds(1500))
        defer { http.shutdown() }
        func run() async throws -> RunSummary {
            try await RetryRunner(store: t.store(), twilio: client, logger: quietLogger).run()
        }
        let accepted = "+14155550163", lost = "+14155550164"
        let a = try await t.insert(phone: accepted)
        let b = try await t.insert(phone: lost)
        for id in [a, b] { _ = try await t.store().recordFailure(logID: id, errorCode: 30001, errorMessage: nil) }
        try await t.makeDue()
        // The first number's message is created but the answer comes too late; the second's
        // request times out before anything is created.
        await twilio.server.script(accepted, [.acceptThenHang(.seconds(5))])
        await twilio.server.script(lost, [.delay(.seconds(5), then: .serverError())])
        let first = try await run()
        #expect(first.rescheduled == 2, "\(first)")
        // Both requests reached the stand-in (on a loaded machine, possibly after the client gave up).
        for _ in 0..<100 where await twilio.server.received.count < 2 { try await Task.sleep(for: .milliseconds(100)) }
        #expect(try await t.row(a).string("state")?.contains("uncertain") == true)

        try await t.makeDue()
        let second = try await run()
        #expect(second.reconciled == 1 && second.sent == 1, "\(second)")
        let toAccepted = await twilio.server.received.filter { $0.to == accepted }
        #expect(toAccepted.count == 1, "never sent twice")
        #expect(try await t.row(a).string("twilio_message_sid") == toAccepted.first?.sid)
        #expect(await twilio.server.received.filter { $0.to == lost && $0.sid != nil }.count == 1)
        #expect(try await t.row(b).bool("success") == true)
    }

    @Test("reconcile asks about resends without a final status and applies the answer")
    func unconfirmedResendsAreFetched() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let phone = "+14155550165", quiet = "+14155550166"
        let lostCallback = try await t.insert(phone: phone)
        let stillSent = try await t.insert(phone: quiet)
        for id in [lostCallback, stillSent] { _ = try await t.store().recordFailure(logID: id, errorCode: 30001, errorMessage: nil) }
        // Twilio will say undelivered 30003 for the first (its callback never arrives: none is
        // configured) and nothing final for the second.
        await twilio.server.deliver(phone, [.init("sent"), .init("undelivered", errorCode: 30003)])
        let clock = try await t.clockAtDue()
        #expect(try await runOnce(t, twilio, clock: clock).sent == 2)
        let reconciler = Reconciler(store: t.store(clock: clock), twilio: twilio.client(), logger: quietLogger)
        #expect(try await reconciler.run().swept == 0, "not asked before 15 minutes without a final status")
        // 20 minutes pass without a callback.
        clock.advance(by: .seconds(20 * 60))
        let summary = try await reconciler.run()
        #expect(summary.swept == 2 && summary.updated == 1 && summary.undelivered == 1 && summary.pending == 1
                && summary.errors == 0, "\(summary)")
        let row = try await t.row(lostCallback)
        #expect(row.string("final_status") == "undelivered" && row.bool("pending") == true && row.int("retry_count") == 1)
        #expect(try await t.row(stillSent).string("final_status") == "sent")
        let again = try await reconciler.run()
        #expect(again.swept == 1 && again.pending == 1, "still sent: asked again on the next reconcile, never resent: \(again)")
        #expect(try await t.row(stillSent).int("retry_count") == 1)
    }
}
