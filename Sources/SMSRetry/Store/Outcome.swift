/// What happened to one row, as `Queries.outcomesRecord` writes it. Every write path (the
/// router's reports, a run's batch) goes through this one shape and that one statement.
struct Outcome: Sendable {
    enum Kind: String, Sendable { case sent, retry, failed, release }

    var id: Int
    var kind: Kind
    var counted = false
    var delay: Double? = nil
    var sid: String? = nil
    var errorCode: Int? = nil
    var errorMessage: String? = nil
    var httpStatus: Int? = nil
    var durationMS: Int? = nil
    var reason: String? = nil
    var strategy: String? = nil
    var maxRetries: Int? = nil
    var leaseUntil: String? = nil
    /// The history entry's label; nil writes no history entry.
    var outcome: String? = nil
    /// An operator's note (`cancel --reason`), kept in `retry.note` and the history entry.
    var note: String? = nil

    /// The outcome of a failure under `decision`.
    static func failure(id: Int, decision: Decision, failure: Failure, message: String?,
                        countedAttempt: Bool) -> Outcome {
        var o = Outcome(id: id, kind: .failed)
        if case .twilio(let code) = failure { o.errorCode = code }
        o.errorMessage = message
        switch decision {
        case .retry(let after, let rule, let counted):
            o.kind = .retry
            o.delay = after
            o.counted = countedAttempt && counted
            o.strategy = rule.strategy.rawValue
            if counted { o.maxRetries = rule.maxRetries }
        case .giveUp(let reason):
            o.kind = .failed
            o.counted = countedAttempt
            o.reason = reason.rawValue

        }
        return o
    }

    /// A row closed without sending (bad input, inbound): nothing counted.
    static func closed(id: Int, reason: String, leaseUntil: String?) -> Outcome {
        Outcome(id: id, kind: .failed, errorMessage: nil, reason: reason, leaseUntil: leaseUntil, outcome: "not_sent")
    }

    /// A claimed row handed back unsent: due again after `delay`, nothing counted.
    static func release(id: Int, delay: Double, leaseUntil: String?) -> Outcome {
        Outcome(id: id, kind: .release, delay: delay, leaseUntil: leaseUntil)
    }
}
