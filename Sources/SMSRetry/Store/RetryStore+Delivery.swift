import Foundation
import Logging

/// Twilio's delivery statuses (status callbacks, `GET …/Messages/{Sid}.json`), in lifecycle order.
public enum DeliveryStatus: String, Sendable, CaseIterable {
    case queued, accepted, scheduled, sending, sent, delivered, undelivered, failed, canceled, read

    /// Later statuses win; equal ranks do not replace each other (a duplicate, or a second
    /// final word), so callbacks can arrive in any order and more than once.
    var rank: Int {
        switch self {
        case .queued, .accepted, .scheduled: 1
        case .sending: 2
        case .sent: 3
        case .delivered, .undelivered, .failed, .canceled: 4
        case .read: 5
        }
    }

    /// Still on its way: Twilio will say more.
    public var isProgress: Bool { rank < 4 }
}

extension RetryStore {
    /// What `recordDeliveryStatus` did with a status.
    public enum DeliveryOutcome: Sendable, Equatable {
        /// Delivered (or read): `final_status = 'delivered'`, `delivery_confirmed_at` set, nothing pending.
        case delivered(logID: Int)
        /// A status on the way (`queued`…`sent`): recorded, nothing else changes.
        case progress(logID: Int, status: String)
        /// `undelivered`/`failed` with a retryable code: resend number `attempt` due at `at`.
        case scheduled(logID: Int, attempt: Int, at: Date)
        /// `undelivered`/`failed`/`canceled` and no resend: not retryable, or no attempts left.
        case closed(logID: Int, reason: String)
        /// Nothing changed: the same status again, or one older than what the row already knows.
        case unchanged(logID: Int, current: String)
        /// No row carries this SID (not ours, or not recorded yet).
        case unknownMessage
        /// Not a status Twilio sends for outbound messages; nothing was written.
        case unknownStatus(String)
        /// The row with this SID is not an outbound message.
        case notOutbound(logID: Int)
    }

    /// Applies a Twilio status for message `messageSID` (a status callback's `MessageSid`,
    /// `MessageStatus` and `ErrorCode`) to its row, in one statement with the row locked.
    /// Never throws for a status or SID it cannot use: the outcome says so. Decided in SQL
    /// (`sms_retry_report_status_at`, migration 015, by this store's policy at its clock): one
    /// implementation with `sms_retry_report_status`.
    public func recordDeliveryStatus(messageSID: String, status: String, errorCode: Int? = nil) async throws -> DeliveryOutcome {
        let normalized = status.trimmingCharacters(in: .whitespaces).lowercased()
        guard let status = DeliveryStatus(rawValue: normalized) else {
            logger.warning("unknown delivery status; nothing recorded",
                           metadata: ["sms.sid": "\(messageSID)", "sms.status": "\(normalized.prefix(40))"])
            return .unknownStatus(normalized)
        }
        let answer = try await report(ReportStatus(messageSID: messageSID, status: status.rawValue, errorCode: errorCode,
                                                       now: clock.statementNow, policy: policySQL.forCode(errorCode)))
        let id = answer.logID ?? 0
        let result: DeliveryOutcome = switch answer.result {
        case "delivered": .delivered(logID: id)
        case "progress": .progress(logID: id, status: answer.status ?? status.rawValue)
        case "scheduled": .scheduled(logID: id, attempt: answer.attempt ?? 1, at: answer.nextRetryAt ?? clock.wallNow())
        case "closed": .closed(logID: id, reason: answer.reason ?? status.rawValue)
        case "unchanged": .unchanged(logID: id, current: answer.current ?? "")
        case "not_found": .unknownMessage
        case "not_outbound": .notOutbound(logID: id)
        default: throw answer.unexpected(ReportStatus.name)
        }
        var metadata: Logger.Metadata = ["sms.sid": "\(messageSID)", "sms.status": "\(status.rawValue)"]
        if let errorCode { metadata["sms.error_code"] = "\(errorCode)" }
        switch result {
        case .unknownMessage:
            logger.warning("delivery status for a SID no row carries; nothing recorded", metadata: metadata)
        case .notOutbound:
            logger.warning("delivery status for a row that is not outbound; ignored", metadata: metadata)
        case .unchanged(let id, let current):
            logger.debug("delivery status already known or older; unchanged",
                         metadata: metadata.merging(["sms.log_id": "\(id)", "sms.current": "\(current)"]) { $1 })
        case .scheduled(let id, let attempt, _):
            logger.info("delivery failed; retry scheduled",
                        metadata: metadata.merging(["sms.log_id": "\(id)", "sms.attempt": "\(attempt)"]) { $1 })
        case .delivered(let id), .progress(let id, _), .closed(let id, _):
            logger.info("delivery status recorded", metadata: metadata.merging(["sms.log_id": "\(id)"]) { $1 })
        case .unknownStatus:
            break
        }
        return result
    }
}

extension Outcome {
    /// What Twilio's `status` for message `sid` means for row `id`. `attemptsMade` counts the
    /// resends made so far, this one included when `counted`. `found`: the message is one an
    /// uncertain send created (a run or reconcile found it at Twilio), so the row is sent even
    /// while Twilio still reports progress, and counted when the attempt was not already.
    static func status(id: Int, sid: String, status: DeliveryStatus, errorCode: Int?, attemptsMade: Int,
                       counted: Bool, found: Bool = false, policy: RetryPolicy, now: Date) -> Outcome {
        var outcome: Outcome
        switch status {
        case _ where status.isProgress:
            outcome = Outcome(id: id, kind: counted || found ? .sent : .progress, counted: counted, sid: sid)
        case .delivered, .read:
            outcome = Outcome(id: id, kind: .delivered, counted: counted, sid: sid, outcome: .delivered)
        case .canceled:
            outcome = Outcome(id: id, kind: .failed, counted: counted, sid: sid, reason: .canceled, outcome: .canceled)
            outcome.finalStatus = .failed
        default:   // undelivered, failed
            let failure: Failure = errorCode.map { .twilio(code: $0) } ?? .transport
            let rule = policy.rule(for: failure).rule
            let message = "Twilio: \(status.rawValue)\(errorCode.map { ", error \($0)" } ?? "") (\(rule.meaning))"
            if let code = errorCode, policy.spend.pumpingCodes.contains(code) {
                // SMS pumping protection, as at the create call (`AnswerOutcome`): held, not given
                // up and not stepped, for at least `pumping_hold_seconds`, whatever the code's rule.
                let hold = SpendGuard.pumpingHold(policy: policy.spend, ruleDelay: policy.baseDelay(rule, attemptsMade: attemptsMade))
                outcome = Outcome(id: id, kind: .retry, counted: counted, delay: hold, errorCode: code, errorMessage: message,
                                  reason: .pumpingHeld, outcome: .pumpingHeld)
                outcome.note = "Twilio \(code) (SMS pumping protection); held \(Int(hold / 60)) min"
                outcome.spendReason = .pumping
            } else {
                let decision = policy.decide(failure, attemptsMade: attemptsMade)
                outcome = .failure(id: id, decision: decision, failure: failure, message: message, countedAttempt: counted)
                outcome.outcome = HistoryLabel(status)
            }
            outcome.sid = sid
            outcome.finalStatus = status == .undelivered ? .undelivered : .failed
        }
        if (counted || found) && outcome.outcome == nil { outcome.outcome = .sent }
        outcome.delivery = ["sid": sid, "status": status.rawValue, "at": JSONText.timestamp(now)]
            .merging(errorCode.map { ["error_code": String($0)] } ?? [:]) { $1 }
        return outcome
    }
}

extension RetryStore.DeliveryOutcome: CustomStringConvertible {
    /// In plain words, as `delivery-status` prints it and `serve-callbacks` answers it:
    /// `scheduled log_id=102 attempt=1 at=2026-12-07T05:10:00Z`, `delivered log_id=102`.
    public var description: String {
        switch self {
        case .delivered(let id): "delivered log_id=\(id)"
        case .progress(let id, let status): "\(status) log_id=\(id)"
        case .scheduled(let id, let attempt, let at):
            "scheduled log_id=\(id) attempt=\(attempt) at=\(ISO8601DateFormatter().string(from: at))"
        case .closed(let id, let reason): "closed log_id=\(id) reason=\(reason)"
        case .unchanged(let id, let current): "unchanged log_id=\(id) current=\(current)"
        case .unknownMessage: "unknown message: no row has this SID"
        case .unknownStatus(let status): "unknown status \(status.prefix(40))"
        case .notOutbound(let id): "not outbound log_id=\(id)"
        }
    }
}
