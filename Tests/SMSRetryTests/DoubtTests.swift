import Foundation
import Testing
@testable import SMSRetry

/// What a message found at Twilio for an unknown-fate row counts as.
@Suite struct DoubtTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("a timeout, reset or 5xx already counted: the message found is that attempt, not a new one")
    func aRecordedAttemptIsNotCountedTwice() {
        let doubt = Doubt(since: t0, counted: true)
        #expect(doubt.isCountedAttempt(created: t0.addingTimeInterval(1)))
        #expect(doubt.isCountedAttempt(created: nil))
    }

    @Test("a dead run's send was counted nowhere: the message found counts once")
    func aDeadRunsSendCountsOnce() {
        #expect(!Doubt(since: t0, counted: false, leaseAt: t0).isCountedAttempt(created: t0.addingTimeInterval(1)))
        // The attempt was forgiven by an open breaker (uncounted): counted when found.
        #expect(!Doubt(since: t0, counted: false).isCountedAttempt(created: t0))
    }

    @Test("a counted timeout, then a dead run: the message's date says whose it is")
    func theDateTellsTheAttemptFromTheDeadRun() {
        let leaseAt = t0.addingTimeInterval(600)
        let doubt = Doubt(since: t0, counted: true, leaseAt: leaseAt)
        #expect(doubt.isCountedAttempt(created: t0.addingTimeInterval(1)), "created before the dead run claimed: the timeout's")
        #expect(!doubt.isCountedAttempt(created: leaseAt.addingTimeInterval(1)), "created after: the dead run's")
        #expect(!doubt.isCountedAttempt(created: leaseAt.addingTimeInterval(-1)), "within the slack of Twilio's whole seconds: the dead run's")
        #expect(!doubt.isCountedAttempt(created: nil), "undated while a dead run is involved: taken as the dead run's")
    }

    @Test("the outage breaker forgives an uncertain attempt: it stops counting, so a message found later counts")
    func aForgivenAttemptIsNoLongerCounted() {
        var outcome = Outcome(id: 1, kind: .retry, counted: true)
        outcome.providerFailure = true
        outcome.uncertain = .since(t0, counted: true)
        let forgiven = outcome.outageForgiven
        #expect(forgiven.kind == .release && !forgiven.counted)
        guard case .since(let date, let counted, _) = forgiven.uncertain else { Issue.record("doubt dropped"); return }
        #expect(date == t0 && !counted)
        #expect(forgiven.uncertainParameter?.contains(#""counted": false"#) == true)
    }

    @Test("the router's own timed-out send: a message found for it is the router's attempt, completed, never counted as a resend")
    func theRoutersSendIsNotAResend() {
        let doubt = Doubt(since: t0, counted: false, router: true)
        #expect(doubt.attribution(created: t0.addingTimeInterval(5)) == (counted: false, amend: true))
        #expect(doubt.attribution(created: nil) == (counted: false, amend: true))
        // A run then died holding the row: what was created after its claim is the dead run's.
        let leaseAt = t0.addingTimeInterval(600)
        let both = Doubt(since: t0, counted: false, leaseAt: leaseAt, router: true)
        #expect(both.attribution(created: t0.addingTimeInterval(5)) == (counted: false, amend: true), "before the claim: the router's")
        #expect(both.attribution(created: leaseAt.addingTimeInterval(3)) == (counted: true, amend: false), "after: the dead run's, counted once")
        #expect(both.attribution(created: nil) == (counted: true, amend: false), "undated beside a dead run: the dead run's")
        // sms-retry's own recorded timeout stays as it was.
        #expect(Doubt(since: t0, counted: true).attribution(created: t0) == (counted: false, amend: true))
        #expect(Doubt(since: t0, counted: false).attribution(created: t0) == (counted: true, amend: false))
    }

    @Test("a router's failure with no Twilio code is a doubt starting before its logged send; one with a code is none")
    func theRoutersFailureWithoutACode() {
        let sent = t0.timeIntervalSince1970
        guard case .since(let since, let counted, let router)? = RetryStore.routerDoubt(.transport, sentEpoch: sent) else {
            Issue.record("no doubt for a transport failure"); return
        }
        #expect(since == t0.addingTimeInterval(-RetryStore.routerSendSlack) && !counted && router)
        #expect(RetryStore.routerDoubt(.twilio(code: 30003), sentEpoch: sent) == nil)
        let adopted = RetryStore.adopted(id: 1, errorMessage: "Read timed out", metadata: nil, ageSeconds: 60, sentEpoch: sent,
                                         policy: .default, maxAge: 86_400)
        #expect(adopted.uncertainParameter?.contains(#""router": true"#) == true)
    }

    @Test("what never reached the server, and what may have")
    func reachedOrNot() {
        // curl 7: couldn't connect; 6: DNS; 35: TLS handshake.
        for code: Int32 in [6, 7, 35] {
            #expect(!HTTPError(code: code, message: "", bodySent: false, hasBody: true).requestMayHaveArrived)
        }
        // A timeout before a byte of the form left (a connect timeout) is not an attempt either.
        #expect(!HTTPError(code: 28, message: "", bodySent: false, hasBody: true).requestMayHaveArrived)
        // Once the body left, a timeout, a reset, a closed connection may follow Twilio's work.
        for code: Int32 in [28, 52, 55, 56, 65] {
            #expect(HTTPError(code: code, message: "", bodySent: true, hasBody: true).requestMayHaveArrived)
        }
        #expect(HTTPError(code: 65, message: "", bodySent: true, hasBody: true).description.contains("not resent"))
    }
}
