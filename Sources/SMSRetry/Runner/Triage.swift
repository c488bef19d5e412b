import Foundation

/// What may be done with a claimed row before anything is sent, as pure logic: by its kind's
/// age and hours (`MessageSafety`), its content, its direction, its number's opt-out.
enum Triage {
    enum Verdict {
        /// Too old, or its quiet hours end past its age: closed `expired`.
        case expired(Outcome, kind: String, why: String)
        /// Bad input or not outbound: closed unsent with the reason.
        case unsendable(Outcome)
        /// Its number opted out (`event`: the word, or 21610): closed `opted_out`.
        case optedOut(Outcome, event: String)
        /// Inside its recipient's quiet hours: handed back, uncounted, until they end.
        case held(Outcome, kind: String)
        /// The spend guard's: closed unsent (the recipient's country) or held uncounted (the
        /// daily budget, the range's hourly cap), with why.
        case spend(Outcome, SpendReason, why: String)
        /// Send it, with `secondsLeft` of its age (nil: age unknown).
        case send(secondsLeft: Double?)
    }

    /// The verdict for `row` at `now`; `maxAge` is the default kind's limit (`--max-age`),
    /// `sender` the configured one for rows that name none.
    static func verdict(_ row: RetryStore.ClaimedRow, policy: RetryPolicy, maxAge: Double, now: Date,
                        sender: TwilioConfig.Sender) -> Verdict {
        let (kindName, kind) = policy.kinds.kind(row.kind)
        let safety = MessageSafety.decide(kind: kind, maxAgeDefault: maxAge, age: row.ageSeconds, number: row.phoneNumber, now: now)
        if case .expired(let why) = safety {
            var expired = Outcome.closed(id: row.id, reason: .expired, leaseUntil: row.leaseUntil)
            expired.outcome = .expired
            expired.note = "\(kindName): \(why)"
            return .expired(expired, kind: kindName, why: why)
        }
        if let reason = unsendableReason(row, message: message(for: row, maxAge: maxAge, sender: sender)) {
            return .unsendable(.closed(id: row.id, reason: reason, leaseUntil: row.leaseUntil))
        }
        if let event = row.optOut { return .optedOut(optedOut(row, event: event), event: event) }
        if case .close(let reason, let why)? = SpendGuard.countryVerdict(row.phoneNumber, policy: policy.spend) {
            return .spend(spendOutcome(row, .close(reason, why: why), now: now), reason, why: why)
        }
        switch safety {
        case .hold(let until, let zone):
            var held = Outcome.release(id: row.id, delay: max(1, until.timeIntervalSince(now)), leaseUntil: row.leaseUntil)
            held.outcome = .quietHours
            held.reason = .quietHours
            held.note = "\(kindName): quiet hours in \(zone); held until \(MessageSafety.describe(until, zone: zone))"
            return .held(held, kind: kindName)
        case .send(let left):
            // The claim's spend decision (the fleet's budget, the range's cap), when it made one.
            if let verdict = row.spend {
                switch verdict {
                case .hold(let reason, _, let why), .close(let reason, let why):
                    return .spend(spendOutcome(row, verdict, now: now), reason, why: why)
                case .send: break
                }
            }
            return .send(secondsLeft: row.ageSeconds == nil ? nil : left)
        case .expired:
            preconditionFailure("handled above")
        }
    }

    /// The resend of `row`: the original message (its sender and content from `sms_metadata`),
    /// with Twilio's `Attempt` (the router's send was 1) and `ValidityPeriod` (what is left of
    /// its kind's maximum age, set once triage let it go; else of `maxAge`).
    static func message(for row: RetryStore.ClaimedRow, maxAge: Double, sender: TwilioConfig.Sender) -> OutboundMessage {
        var m = OutboundMessage.original(to: row.phoneNumber, body: row.content, metadata: row.original, configured: sender)
        m.attempt = row.retryCount + 2
        if let left = row.secondsLeft {
            m.validityPeriod = min(36_000, Int(left))
        } else if case .seconds(let left) = OutboundMessage.validity(ageSeconds: row.ageSeconds, maxAge: maxAge) {
            m.validityPeriod = left
        }
        return m
    }

    static func unsendableReason(_ row: RetryStore.ClaimedRow, message: OutboundMessage) -> CloseReason? {
        if !RetryStore.isOutbound(row.direction) { return .notOutbound }
        // Nothing to send: no body, no content template, no media.
        if !message.hasContent { return .emptyBody }
        // Twilio refuses longer bodies (21617); no request is spent learning that.
        if let body = row.content, body.unicodeScalars.count > 1600 { return .bodyTooLong }
        if !PhoneNumber.isE164(row.phoneNumber) { return .invalidPhoneNumber }
        return nil
    }

    /// A row the spend guard closed (`country_not_allowed`) or held until the verdict's time
    /// (uncounted, as quiet hours hold), its reason and history entry saying why.
    static func spendOutcome(_ row: RetryStore.ClaimedRow, _ verdict: SpendGuard.Verdict, now: Date) -> Outcome {
        var outcome: Outcome
        switch verdict {
        case .close(let reason, let why):
            outcome = .closed(id: row.id, reason: CloseReason(reason), leaseUntil: row.leaseUntil)
            outcome.outcome = HistoryLabel(reason)
            outcome.note = why
        case .hold(let reason, let until, let why):
            outcome = .release(id: row.id, delay: max(1, until.timeIntervalSince(now)), leaseUntil: row.leaseUntil)
            outcome.outcome = HistoryLabel(reason)
            outcome.reason = CloseReason(reason)
            outcome.note = "\(why); held until \(JSONText.timestamp(until))"
        case .send:
            preconditionFailure("a send is no outcome")
        }
        outcome.spendReason = SpendGuard.reason(of: verdict)
        return outcome
    }

    /// A row whose number opted out (`event`: the opt-out word or "21610"): closed unsent.
    static func optedOut(_ row: RetryStore.ClaimedRow, event: String) -> Outcome {
        var outcome = Outcome.closed(id: row.id, reason: .optedOut, leaseUntil: row.leaseUntil)
        outcome.outcome = .optedOut
        outcome.note = event == "21610" ? "Twilio answered 21610 (unsubscribed) for this number"
                                        : "the number sent \(event) and has not opted in again (START, UNSTOP, YES) since"
        return outcome
    }
}
