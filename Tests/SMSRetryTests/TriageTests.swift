import Foundation
import Testing
@testable import SMSRetry

/// What a run does with a claimed row before sending, without a database.
@Suite struct TriageTests {
    static let evening = ISO8601DateFormatter().date(from: "2027-07-15T04:05:00Z")!   // 21:05 in San Francisco
    let sender = TwilioConfig.Sender.from("+15005550006")

    func row(_ phone: String = "+14155550100", direction: String = "outbound", content: String? = "hi",
             kind: String? = nil, age: Double? = 60, optOut: String? = nil) -> RetryStore.ClaimedRow {
        var metadata = [String?](repeating: nil, count: MessageKeys.names.count)
        metadata[MessageKeys.kindIndex] = kind.map { "\"\($0)\"" }
        return RetryStore.ClaimedRow(id: 1, phoneNumber: phone, direction: direction, content: content, retryCount: 0, maxRetries: 3,
                                     leaseUntil: "l", previousLease: nil, doubt: nil, sid: nil, ageSeconds: age, optOut: optOut,
                                     original: metadata)
    }

    func verdict(_ r: RetryStore.ClaimedRow) -> Triage.Verdict {
        Triage.verdict(r, policy: .default, maxAge: 86_400, now: Self.evening, sender: sender)
    }

    @Test func eachVerdict() {
        if case .expired(let o, let kind, _) = verdict(row(kind: "otp", age: 601)) {
            #expect(kind == "otp" && o.reason?.rawValue == "expired" && o.kind == .failed && !o.counted)
        } else { Issue.record("an otp past 10 minutes is expired") }
        if case .unsendable(let o) = verdict(row(direction: "inbound")) { #expect(o.reason?.rawValue == "not_outbound") } else { Issue.record("inbound") }
        if case .unsendable(let o) = verdict(row(content: "  ")) { #expect(o.reason?.rawValue == "empty_body") } else { Issue.record("empty") }
        if case .unsendable(let o) = verdict(row("4155550100")) { #expect(o.reason?.rawValue == "invalid_phone_number") } else { Issue.record("not E.164") }
        if case .optedOut(let o, let event) = verdict(row(optOut: "REVOKE")) {
            #expect(event == "REVOKE" && o.reason?.rawValue == "opted_out" && o.note?.contains("REVOKE") == true)
        } else { Issue.record("opted out") }
        if case .held(let o, let kind) = verdict(row(kind: "marketing")) {
            #expect(kind == "marketing" && o.kind == .release && !o.counted && o.delay == 10 * 3600 + 55 * 60 && o.reason == .quietHours)
        } else { Issue.record("marketing at 21:05 is held") }
        if case .send(let left) = verdict(row(kind: "transactional")) { #expect(left == 86_340) } else { Issue.record("transactional goes") }
        if case .send(let left) = verdict(row(age: nil)) { #expect(left == nil) } else { Issue.record("unknown age goes") }
    }

    @Test("an opt-out outranks quiet hours; a bad row is closed before it would be held")
    func order() {
        if case .optedOut = verdict(row(kind: "marketing", optOut: "STOP")) {} else { Issue.record("opt-out first") }
        if case .unsendable = verdict(row(content: nil, kind: "marketing")) {} else { Issue.record("bad input first") }
    }

    @Test func theResendCarriesAttemptAndValidity() {
        var r = row()
        r.secondsLeft = 50_000
        let m = Triage.message(for: r, maxAge: 86_400, sender: sender)
        #expect(m.attempt == 2 && m.validityPeriod == 36_000 && m.from == "+15005550006")
    }
}
