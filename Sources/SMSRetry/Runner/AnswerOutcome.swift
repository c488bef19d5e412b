import Foundation

/// What Twilio's answer to a create means, as pure logic: the row's outcome, and what it tells
/// the run (the breaker's signal, a sender to stop, a number that unsubscribed, credentials
/// refused). `RetryRunner` applies the signals; nothing here does I/O or reads a clock.
enum AnswerOutcome {
    struct Signals: Equatable {
        /// Twilio answered for the message's own reasons (nil: no answer to judge by).
        var providerUp: Bool? = nil
        /// Why the answer counts against the outage breaker (5xx, timeout, connection).
        var providerFailure: String? = nil
        /// The request never reached Twilio (`unreachable=N`).
        var unreachable: String? = nil
        /// Twilio refused the credentials: the run stops.
        var configurationError: String? = nil
        /// Twilio says the sender cannot send: stop it for the run, for this reason.
        var blockSender: String? = nil
        /// Twilio answered 21610: the number's other rows are not sent this run.
        var unsubscribed = false
        /// Twilio accepted the request (the 429 backoff starts from 1 s again).
        var accepted = false
        /// Twilio's SMS pumping protection blocked the send (30450): counted per range by the run.
        var pumping = false
    }

    /// The outcome of `result` for `row`, resent as `message` (attempt `retryCount + 1`),
    /// sent at `started`; `handBack` seconds before a row handed back is due again; `now` dates
    /// the delivery status.
    static func map(_ result: SendResult, row: RetryStore.ClaimedRow, message: OutboundMessage, policy: RetryPolicy,
                    started: Date, now: Date, handBack: Double) -> (Outcome, Signals) {
        let attemptsMade = row.retryCount + 1
        var signals = Signals()
        var outcome: Outcome
        switch result {
        case .accepted(let sid, let twilioStatus, let status, let seconds):
            signals.accepted = true
            signals.providerUp = true
            outcome = Outcome(id: row.id, kind: .sent, counted: true, sid: sid, httpStatus: status,
                              durationMS: Int(seconds * 1000), outcome: .sent)
            outcome.delivery = ["sid": sid, "status": twilioStatus, "at": JSONText.timestamp(now)]
        case .rejected(let code, let text, let status, let seconds) where policy.spend.pumpingCodes.contains(code):
            // SMS pumping protection: not resent while Twilio's block lasts (15–30 min), and not
            // counted: the block is Twilio's judgement of the range, not this message's failure.
            signals.providerUp = true
            signals.pumping = true
            let rule = policy.rule(for: .twilio(code: code)).rule
            let hold = SpendGuard.pumpingHold(policy: policy.spend, ruleDelay: policy.baseDelay(rule, attemptsMade: attemptsMade))
            outcome = Outcome.pumpingHeld(row, hold: hold, why: "Twilio \(code) (SMS pumping protection)", code: code)
            outcome.errorMessage = "Twilio error \(code): \(text)"
            outcome.httpStatus = status
            outcome.durationMS = Int(seconds * 1000)
            outcome.uncertain = .clear
        case .rejected(let code, _, _, _) where policy.rule(for: .twilio(code: code)).rule.senderFault:
            // The sender cannot send: not this message's fault.
            signals.providerUp = true
            let why = "Twilio \(code) (\(policy.rule(for: .twilio(code: code)).rule.meaning))"
            signals.blockSender = why
            outcome = Outcome.senderBlocked(row, message: message, why: why, code: code)
        case .rejected(let code, let text, let status, let seconds):
            signals.providerUp = true
            signals.unsubscribed = code == 21610
            let decision = policy.decide(.twilio(code: code), attemptsMade: attemptsMade)
            outcome = .failure(id: row.id, decision: decision, failure: .twilio(code: code),
                               message: "Twilio error \(code): \(text)", countedAttempt: true)
            outcome.httpStatus = status
            outcome.durationMS = Int(seconds * 1000)
            outcome.outcome = .rejected
            outcome.uncertain = .clear
        case .throttled(let retryAfter, _, _):
            // Handed back when the 429 pause outlasts the row's time (the runner waits otherwise).
            outcome = .release(id: row.id, delay: max(retryAfter ?? 1, 1), leaseUntil: row.leaseUntil)
            outcome.errorCode = RetryPolicy.throttledCode
            outcome.outcome = .throttled
        case .unauthorized(let code, let text, let status):
            signals.configurationError = "Twilio refused the credentials (HTTP \(status), code \(code.map(String.init) ?? "none"): \(text)); check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN or the API key"
            outcome = .release(id: row.id, delay: 0, leaseUntil: row.leaseUntil)
        case .unexpected(let status, let code, let text, let seconds):
            let decision = policy.decide(.transport, attemptsMade: attemptsMade)
            outcome = .failure(id: row.id, decision: decision, failure: .transport,
                               message: "HTTP \(status)\(code.map { " (code \($0))" } ?? ""): \(text)", countedAttempt: true)
            outcome.errorCode = code
            outcome.httpStatus = status
            outcome.durationMS = Int(seconds * 1000)
            outcome.outcome = .httpError
            // A 5xx may come after Twilio created the message: ask before resending.
            outcome.uncertain = .since(started, counted: outcome.counted)
            if status >= 500 {
                outcome.providerFailure = true
                signals.providerFailure = "HTTP \(status)"
            } else {
                signals.providerUp = true
            }
        case .transport(let error, let seconds) where !error.requestMayHaveArrived:
            // Refused, DNS, TLS, or no byte of the form sent: Twilio cannot have seen it. Not an
            // attempt: back to the table uncounted (any earlier doubt kept), later.
            outcome = .release(id: row.id, delay: handBack, leaseUntil: row.leaseUntil)
            outcome.errorMessage = error.description
            outcome.durationMS = Int(seconds * 1000)
            outcome.outcome = .notSent
            outcome.unreachable = true
            outcome.providerFailure = true
            signals.unreachable = error.description
            signals.providerFailure = error.description
        case .transport(let error, let seconds):
            // Timed out waiting, reset or closed after the request left: Twilio may have taken it.
            let decision = policy.decide(.transport, attemptsMade: attemptsMade)
            outcome = .failure(id: row.id, decision: decision, failure: .transport, message: error.description,
                               countedAttempt: true)
            outcome.durationMS = Int(seconds * 1000)
            outcome.outcome = .transportError
            outcome.uncertain = .since(started, counted: outcome.counted)
            outcome.providerFailure = true
            signals.providerFailure = error.description
        }
        outcome.leaseUntil = row.leaseUntil
        outcome.sender = message.senderForHistory
        return (outcome, signals)
    }
}

extension Outcome {
    /// A row held for Twilio's pumping protection, or because the run stopped its range: back to
    /// the table after `hold` seconds (at least 30 minutes), uncounted.
    static func pumpingHeld(_ row: RetryStore.ClaimedRow, hold: Double, why: String, code: Int?) -> Outcome {
        var outcome = Outcome.release(id: row.id, delay: hold, leaseUntil: row.leaseUntil)
        outcome.outcome = .pumpingHeld
        outcome.reason = .pumpingHeld
        outcome.errorCode = code
        outcome.note = "\(why); held \(Int(hold / 60)) min"
        outcome.spendReason = .pumping
        return outcome
    }

    /// A row of a sender Twilio said cannot send: back to the table in 10 minutes, uncounted.
    static func senderBlocked(_ row: RetryStore.ClaimedRow, message: OutboundMessage, why: String, code: Int?) -> Outcome {
        var outcome = Outcome.release(id: row.id, delay: 600, leaseUntil: row.leaseUntil)
        outcome.outcome = .senderBlocked
        outcome.errorCode = code
        outcome.note = "sender \(message.senderForHistory ?? "-") stopped for the run: \(why)"
        outcome.sender = message.senderForHistory
        outcome.senderBlocked = true
        return outcome
    }
}
