import Logging

/// Recording one batch: its outcomes in one statement (in pieces when a DBA's time limit
/// cancels it), why the rows not written were not (the router's word, or a lease lost to
/// another run), and the batch counted into the run's summary.
struct BatchRecorder: Sendable {
    let store: RetryStore
    let logger: Logger
    /// The run's stop: after a database failure, a lost connection is waited for less.
    let line: StopLine

    /// What a batch's record wrote: the ids written, and for the others what the router did
    /// (confirmed or deleted the row); an id in neither lost its lease to another run.
    struct Recorded: Sendable {
        var written: Set<Int>
        var routerWords: [Int: RouterWord] = [:]
        /// Outcomes the database would not take, even in pieces (their rows keep the lease).
        var unrecorded: Set<Int> = []
        var failure: DatabaseError? = nil
        var failedPiece = 0
    }

    /// Records a batch's outcomes; returns the ids written (a row whose lease passed to another
    /// run, or that the router confirmed or deleted meanwhile, is not) and why the others were not.
    func record(_ outcomes: [Outcome]) async throws -> Recorded {
        // Reconnecting when the server went away: these rows were sent, and an outcome lost here
        // would have them resent once their lease ends. Rerunning the statement is safe: a row
        // whose outcome did commit no longer carries this lease and is not written twice. A
        // record a DBA's time limit cancelled is made again in pieces (`recordInPieces`). Once the
        // run has met a database failure, a lost connection is waited for 2 s, not 15.
        let budget: Duration = line.databaseFailure == nil ? .seconds(15) : .seconds(2)
        let pieces = await store.recordInPieces(outcomes, budget: budget, logger: logger)
        var recorded = Recorded(written: Set(pieces.written.map(\.id)), unrecorded: Set(pieces.unrecorded.map(\.id)),
                                failure: pieces.failure, failedPiece: pieces.failedPiece)
        let unwritten = outcomes.map(\.id).filter { !recorded.written.contains($0) && !recorded.unrecorded.contains($0) }
        if !unwritten.isEmpty { recorded.routerWords = (try? await store.routerWord(ids: unwritten)) ?? [:] }
        return recorded
    }

    /// Counts a recorded batch into the run's summary.
    func tally(_ outcomes: [Outcome], _ recorded: Recorded, into summary: inout RunSummary) {
        var lost = 0
        for outcome in outcomes {
            if recorded.unrecorded.contains(outcome.id) {
                summary.unrecorded += 1
                continue
            }
            guard recorded.written.contains(outcome.id) else {
                switch recorded.routerWords[outcome.id] ?? outcome.routerWord {
                case .deleted?:
                    summary.deleted += 1
                    logger.info("row deleted by the router while this run held it", metadata: ["sms.log_id": "\(outcome.id)"])
                case .confirmed?:
                    // mark-sent (or a callback) ended the lease: counted as the router's word.
                    summary.confirmed += 1
                    if outcome.kind == .sent {
                        logger.warning("the row was marked sent while this run's resend was out",
                                       metadata: ["sms.log_id": "\(outcome.id)", "sms.sid": "\(outcome.sid ?? "-")"])
                    }
                case nil: lost += 1
                }
                continue
            }
            switch outcome.kind {
            case _ where outcome.routerWord == .confirmed: summary.confirmed += 1
            case _ where outcome.reconciled: summary.reconciled += 1
            case _ where outcome.unreachable: summary.released += 1
            case _ where outcome.senderBlocked: summary.senderBlocked += 1
            case _ where outcome.outcome == .quietHours: summary.quiet += 1
            case _ where outcome.spendReason != nil:
                switch outcome.spendReason! {
                case .countryNotAllowed: summary.countryNotAllowed += 1
                case .budget: summary.budgetHeld += 1
                case .prefixVelocity: summary.prefixHeld += 1
                case .pumping: summary.pumpingHeld += 1
                }
            case .sent, .delivered, .progress: summary.sent += 1
            case .retry: summary.rescheduled += 1
            case .failed where outcome.outcome == .notSent: summary.skipped += 1
            case .failed where outcome.outcome == .expired: summary.expired += 1
            case .failed where outcome.outcome == .optedOut: summary.optedOut += 1
            case .failed: summary.failed += 1
            case .release: summary.released += 1
            }
        }
        if lost > 0 {
            summary.lost += lost
            logger.warning("outcomes not written: the lease had passed to another run", metadata: ["run.lost": "\(lost)"])
        }
        logger.info("batch recorded", metadata: ["run.rows": "\(outcomes.count)", "run.sent": "\(summary.sent)",
                                                 "run.claimed": "\(summary.claimed)"])
    }
}
