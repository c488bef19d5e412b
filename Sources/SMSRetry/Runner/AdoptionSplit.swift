import Foundation

/// What adoption did with the failed outbound rows the router never reported (or, for
/// `run --dry-run --adopt-failures`, would do): scheduled for a resend, or closed and why.
/// The summary's `adopted=N adopted_scheduled=… adopted_expired=… adopted_not_retryable=…`.
public struct AdoptionSplit: Sendable, Equatable {
    /// Given a resend by their Twilio code (or, with no code, after Twilio is asked).
    public var scheduled = 0
    /// Closed unsent: older than `--max-age` (mostly failures from before sms-retry was installed).
    public var expired = 0
    /// Closed: their Twilio code is never retried (an invalid number, a blocked recipient, …).
    public var notRetryable = 0
    /// Closed: their code's rule allows no resend at all (`max_retries` 0 in the policy).
    public var exhausted = 0

    public init(scheduled: Int = 0, expired: Int = 0, notRetryable: Int = 0, exhausted: Int = 0) {
        self.scheduled = scheduled
        self.expired = expired
        self.notRetryable = notRetryable
        self.exhausted = exhausted
    }

    /// Every row adopted.
    public var total: Int { scheduled + expired + notRetryable + exhausted }

    /// Counts one adoption's outcome (`RetryStore.adopted`).
    mutating func count(_ outcome: Outcome) {
        switch (outcome.kind, outcome.reason) {
        case (.retry, _): scheduled += 1
        case (_, .expired?): expired += 1
        case (_, .exhausted?): exhausted += 1
        default: notRetryable += 1
        }
    }

    static func += (a: inout AdoptionSplit, b: AdoptionSplit) {
        a.scheduled += b.scheduled
        a.expired += b.expired
        a.notRetryable += b.notRetryable
        a.exhausted += b.exhausted
    }

    /// The summary's fields: `adopted=N` and its split, the three usual parts always (so a
    /// first run reads the same way every time), `adopted_exhausted` only when not 0.
    public var fields: String {
        var line = "adopted=\(total) adopted_scheduled=\(scheduled) adopted_expired=\(expired) adopted_not_retryable=\(notRetryable)"
        if exhausted > 0 { line += " adopted_exhausted=\(exhausted)" }
        return line
    }

    /// At most this many unreported failures are counted for the hint of a run without
    /// `--adopt-failures`: the count reads the work index (its adoption arm) and stops there, so it costs a run
    /// a few milliseconds however large the backlog.
    public static let hintCap = 10_000

    /// The one stderr line of a run without `--adopt-failures` that found `count` unreported
    /// failures (counted up to `cap`); nil when there are none.
    public static func hint(unreported count: Int, cap: Int = hintCap) -> String? {
        guard count > 0 else { return nil }
        let how = count >= cap ? "\(cap) or more" : "\(count)"
        let rows = count == 1 ? "failed outbound row the router never reported is" : "failed outbound rows the router never reported are"
        return "\(how) \(rows) not retried: `sms-retry run --adopt-failures` adopts them (`run --dry-run --adopt-failures` shows what it would do)"
    }
}
