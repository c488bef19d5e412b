import Foundation
import Testing
@testable import SMSRetry

/// Twilio's answer → the row's outcome and what it tells the run, without a database or a server.
@Suite struct AnswerOutcomeTests {
    let row = RetryStore.ClaimedRow(id: 7, phoneNumber: "+14155550100", direction: "outbound", content: "hi", retryCount: 0,
                                    maxRetries: 3, leaseUntil: "2027-01-01 00:05:00+00", previousLease: nil, doubt: nil, sid: nil,
                                    ageSeconds: 60)
    let message = OutboundMessage(to: "+14155550100", body: "hi", from: "+15005550100")
    let started = Date(timeIntervalSince1970: 1_800_000_000)
    var policy: RetryPolicy { var p = RetryPolicy.default; p.jitter = 0; return p }

    func map(_ result: SendResult) -> (Outcome, AnswerOutcome.Signals) {
        AnswerOutcome.map(result, row: row, message: message, policy: policy, started: started,
                          now: started.addingTimeInterval(0.2), handBack: 30)
    }

    @Test func acceptedIsSentAndCounted() {
        let (o, s) = map(.accepted(sid: "SM1", status: "queued", httpStatus: 201, seconds: 0.12))
        #expect(o.kind == .sent && o.counted && o.sid == "SM1" && o.outcome?.rawValue == "sent" && o.durationMS == 120)
        #expect(o.delivery == ["sid": "SM1", "status": "queued", "at": "2027-01-15T08:00:00.200Z"])
        #expect(o.leaseUntil == row.leaseUntil && o.sender == "+15*******00")
        #expect(s == AnswerOutcome.Signals(providerUp: true, accepted: true))
    }

    @Test func aRetryableRefusalIsARetryCounted() {
        let (o, s) = map(.rejected(code: 30003, message: "Unreachable", httpStatus: 400, seconds: 0.1))
        #expect(o.kind == .retry && o.counted && o.outcome?.rawValue == "rejected" && o.errorCode == 30003 && o.delay == 600)
        #expect(o.errorMessage == "Twilio error 30003: Unreachable")
        if case .clear = o.uncertain {} else { Issue.record("a refusal clears any doubt") }
        #expect(s.providerUp == true && !s.unsubscribed && s.providerFailure == nil)
    }

    @Test func anUnsubscribedNumberIsClosedAndNoted() {
        let (o, s) = map(.rejected(code: 21610, message: "unsubscribed", httpStatus: 400, seconds: 0.1))
        #expect(o.kind == .failed && o.counted && s.unsubscribed)
    }

    @Test func aSenderFaultStopsTheSenderNotTheMessage() {
        let (o, s) = map(.rejected(code: 30034, message: "unregistered", httpStatus: 400, seconds: 0.1))
        #expect(o.kind == .release && !o.counted && o.senderBlocked && o.delay == 600 && o.outcome?.rawValue == "sender_blocked")
        #expect(s.blockSender?.hasPrefix("Twilio 30034") == true)
    }

    @Test func refusedCredentialsStopTheRunAndCountNothing() {
        let (o, s) = map(.unauthorized(code: 20003, message: "Authenticate", httpStatus: 401))
        #expect(o.kind == .release && !o.counted && o.delay == 0)
        #expect(s.configurationError?.contains("HTTP 401, code 20003") == true)
    }

    @Test func aServerErrorMayHaveCreatedTheMessage() {
        let (o, s) = map(.unexpected(httpStatus: 503, code: nil, message: "down", seconds: 0.1))
        #expect(o.kind == .retry && o.counted && o.outcome?.rawValue == "http_error" && o.providerFailure && s.providerFailure == "HTTP 503")
        if case .since(let at, let counted, _) = o.uncertain { #expect(at == started && counted) } else { Issue.record("no doubt kept") }
        let (four, fourSignals) = map(.unexpected(httpStatus: 404, code: nil, message: "?", seconds: 0.1))
        #expect(!four.providerFailure && fourSignals.providerUp == true, "a 4xx is an answer, not an outage")
    }

    @Test func aRequestThatNeverLeftIsNotAnAttempt() {
        let refused = HTTPError(code: 7, message: "Couldn't connect")
        let (o, s) = map(.transport(refused, seconds: 0.01))
        #expect(o.kind == .release && !o.counted && o.delay == 30 && o.outcome?.rawValue == "not_sent" && o.unreachable)
        #expect(s.unreachable != nil && s.providerFailure != nil)
    }

    @Test func aTimeoutAfterSendingIsCountedAndDoubted() {
        let timeout = HTTPError(code: 28, message: "Timeout", bodySent: true, hasBody: true)
        let (o, s) = map(.transport(timeout, seconds: 20))
        #expect(o.kind == .retry && o.counted && o.outcome?.rawValue == "transport_error" && s.providerFailure != nil && s.unreachable == nil)
        if case .since(let at, _, _) = o.uncertain { #expect(at == started) } else { Issue.record("no doubt kept") }
    }
}
