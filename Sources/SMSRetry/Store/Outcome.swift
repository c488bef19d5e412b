import Foundation

/// What happened to one row, as `Queries.outcomesRecord` writes it. Every write path (the
/// router's reports, a run's batch) goes through this one shape and that one statement.
struct Outcome: Sendable {
    enum Kind: String, Sendable { case sent, retry, failed, release, delivered, progress }

    var id: Int
    var kind: Kind
    var counted = false
    var delay: Double? = nil
    var sid: String? = nil
    var errorCode: Int? = nil
    var errorMessage: String? = nil
    var httpStatus: Int? = nil
    var durationMS: Int? = nil
    var reason: CloseReason? = nil
    var strategy: String? = nil
    var maxRetries: Int? = nil
    var leaseUntil: String? = nil
    /// The history entry's label; nil writes no history entry.
    var outcome: HistoryLabel? = nil
    /// An operator's note (`cancel --reason`), kept in `retry.note` and the history entry.
    var note: String? = nil
    /// Overrides the kind's `final_status` (e.g. `undelivered`).
    var finalStatus: FinalStatus? = nil
    /// Merged into `retry.delivery`: the message's last known Twilio status.
    var delivery: [String: String]? = nil
    /// `retry.uncertain`: nil keeps it, `.clear` removes it, `.since` sets it.
    var uncertain: Uncertainty? = nil
    /// The sender the attempt went out from (numbers masked), kept in its history entry.
    var sender: String? = nil
    /// What became of the last uncertain attempt, which `retry_count` already counts: its history
    /// entry is completed instead of a new one added (`counted` is then false).
    var amend = false

    enum Uncertainty: Sendable {
        /// The send's fate is known (not accepted, or accepted with a SID).
        case clear
        /// A request that may or may not have created a message, started at this time;
        /// `counted`: whether this outcome counts it in `retry_count`; `router`: the router's own
        /// send (a failure it reported or left with no Twilio code), which is no resend.
        case since(Date, counted: Bool, router: Bool = false)
    }

    /// Not written: the run found this resend at Twilio instead of sending it (`reconciled`).
    var reconciled = false
    /// Not written: the attempt failed for a reason that is not the message's (5xx, timeout,
    /// connection error), what the outage breaker counts.
    var providerFailure = false
    /// Not written: the request never reached Twilio (refused, DNS, TLS): handed back uncounted.
    var unreachable = false
    /// Not written: handed back because Twilio said its sender cannot send.
    var senderBlocked = false
    /// Not written: the spend guard closed or held the row (`country_not_allowed=N`,
    /// `budget_held=N`, … in the summary).
    var spendReason: SpendReason? = nil
    /// Not written: the range a pumping answer (30450) came for, when the run should count it.
    var pumpingRange: String? = nil
    /// Not written: the router confirmed the row (`success`) or deleted it after the claim, seen
    /// right before its send: not sent.
    var routerWord: RouterWord? = nil

    /// The record statement's columns, one per line: its name in the statement (`o.name`), its
    /// SQL type, and its value for an outcome (text; nil is NULL). The statement's `unnest` and
    /// its parameters are both made from this list, so names and positions cannot drift apart.
    static let recordColumns: [(name: String, type: String, value: @Sendable (Outcome) -> String?)] = [
        ("id", "bigint", { $0.id.pgText }),
        ("kind", "text", { $0.kind.rawValue.pgText }),
        ("counted", "bool", { $0.counted.pgText }),
        ("delay", "float8", { $0.delay.pgText }),
        ("sid", "text", { $0.sid.pgText }),
        ("error_code", "int", { $0.errorCode.pgText }),
        ("error_message", "text", { $0.errorMessage.pgText }),
        ("http_status", "int", { $0.httpStatus.pgText }),
        ("duration_ms", "int", { $0.durationMS.pgText }),
        ("reason", "text", { $0.reason?.rawValue.pgText }),
        ("strategy", "text", { $0.strategy.pgText }),
        ("max_retries", "int", { $0.maxRetries.pgText }),
        ("lease_until", "timestamptz", { $0.leaseUntil.pgText }),
        ("outcome", "text", { $0.outcome?.rawValue.pgText }),
        ("note", "text", { $0.note.pgText }),
        ("final_status", "text", { $0.finalStatus?.rawValue.pgText }),
        ("delivery", "text", { $0.deliveryParameter.pgText }),
        ("uncertain", "text", { $0.uncertainParameter.pgText }),
        ("amend", "bool", { $0.amend.pgText }),
        ("sender", "text", { $0.sender.pgText }),
    ]

    /// This outcome once the outage breaker has opened: a provider failure goes back due now,
    /// uncounted, keeping its error, its history entry and its uncertainty marker.
    var outageForgiven: Outcome {
        guard providerFailure, kind != .release else { return self }
        var o = Outcome(id: id, kind: .release, delay: 0, errorCode: errorCode, errorMessage: errorMessage,
                        httpStatus: httpStatus, durationMS: durationMS, leaseUntil: leaseUntil)
        o.outcome = .providerOutage
        // Forgiven: the attempt no longer counts, so a message found for it later will.
        if case .since(let date, _, let router) = uncertain { o.uncertain = .since(date, counted: false, router: router) }
        else { o.uncertain = uncertain }
        o.providerFailure = true
        return o
    }

    /// `uncertain` as the statement's text: NULL keep, '' clear, a JSON object set.
    var uncertainParameter: String? {
        switch uncertain {
        case nil: nil
        case .clear: ""
        case .since(let date, let counted, let router):
            #"{"since": "\#(JSONText.timestamp(date))", "counted": \#(counted)\#(router ? #", "router": true"# : "")}"#
        }
    }

    /// `delivery` as JSON text.
    var deliveryParameter: String? {
        delivery.map(JSONText.object)
    }

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
            o.reason = CloseReason(reason)

        }
        return o
    }

    /// A row closed without sending (bad input, inbound): nothing counted.
    static func closed(id: Int, reason: CloseReason, leaseUntil: String?) -> Outcome {
        Outcome(id: id, kind: .failed, errorMessage: nil, reason: reason, leaseUntil: leaseUntil, outcome: .notSent)
    }

    /// A claimed row handed back unsent: due again after `delay`, nothing counted.
    static func release(id: Int, delay: Double, leaseUntil: String?) -> Outcome {
        Outcome(id: id, kind: .release, delay: delay, leaseUntil: leaseUntil)
    }
}

/// What the router said of a claimed row after the claim, seen right before its send.
enum RouterWord: Sendable, Equatable {
    /// `success` is true: the router's own word, `mark-sent`, or a delivered callback.
    case confirmed
    /// The row is gone (a retention job, a dropped partition).
    case deleted
}

/// What is known of a row whose last send's fate is unknown (`sms_retry.uncertain`): Twilio must
/// be asked before it is sent again.
struct Doubt: Sendable, Equatable {
    /// The earliest send that may have created a message: the lookup window starts here.
    var since: Date
    /// Whether the last uncertain send that was recorded (a timeout, a reset, a 5xx) is counted
    /// in `retry_count`.
    var counted: Bool
    /// When a run that then died without recording anything last claimed the row: a send it may
    /// have made is counted nowhere.
    var leaseAt: Date?
    /// The uncertain send is the router's own (a timed-out first send): a message found for it
    /// is the router's attempt, no resend, and is never counted in `retry_count`.
    var router = false

    /// What a message Twilio created at `created` is, for the row: the attempt whose history
    /// entry is completed (`amend`: the recorded counted resend, or the router's own send) or a
    /// dead run's send, counted now (`counted`).
    func attribution(created: Date?, slack: TimeInterval = 2) -> (counted: Bool, amend: Bool) {
        if isCountedAttempt(created: created, slack: slack) { return (false, true) }
        // A dead run's send is one made after its claim; before it, only the router's could be.
        let deadRuns = leaseAt.map { lease in created.map { $0 >= lease.addingTimeInterval(-slack) } ?? true } ?? false
        if router && !deadRuns { return (false, true) }
        return (true, false)
    }

    /// Whether a message Twilio created at `created` (for this row, since `since`) is the
    /// recorded, counted attempt rather than a dead run's uncounted one. A message created after
    /// the dead run's claim (less `slack` for clocks and Twilio's whole-second dates), or of
    /// unknown date while a dead run is in the picture, is the dead run's.
    func isCountedAttempt(created: Date?, slack: TimeInterval = 2) -> Bool {
        guard counted else { return false }
        guard let leaseAt else { return true }
        guard let created else { return false }
        return created < leaseAt.addingTimeInterval(-slack)
    }
}
