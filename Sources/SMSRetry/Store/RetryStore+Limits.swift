import Foundation
import Logging

/// Batch statements sized to a DBA's time limits (`statement_timeout`, `lock_timeout` on the
/// role, the database or the server): a claim or a record that a limit cancelled did nothing, so
/// it is made again smaller (`StatementSizing`), and what still cannot be done is reported, not
/// thrown away.
extension RetryStore {
    /// What `recordInPieces` wrote, and what it could not.
    struct PiecewiseRecord: Sendable {
        var written: [WrittenRow] = []
        /// Outcomes no try could write: their rows keep this run's lease, and come back when it
        /// ends as a dead run's do (looked up at Twilio before any resend).
        var unrecorded: [Outcome] = []
        /// Why (the last error), and the size of the piece it cancelled.
        var failure: DatabaseError? = nil
        var failedPiece = 0
        /// How many times a limit cancelled a piece (the batch was split or a row tried again).
        var timeouts = 0
    }

    /// Records `outcomes` in one statement, or, when a DBA's limit cancels it, in halves, down
    /// to single rows tried again for `StatementSizing.patience` (a row a router's transaction
    /// holds is written once it ends). A lost connection is survived for `budget`, as before.
    /// Never throws: what stays unwritten is returned with the error.
    func recordInPieces(_ outcomes: [Outcome], budget: Duration = .seconds(15), logger: Logger) async -> PiecewiseRecord {
        var result = PiecewiseRecord()
        var pending: [(piece: ArraySlice<Outcome>, tries: Int)] = [(outcomes[...], 0)]
        var firstTimeout: SMSRetryClock.Instant? = nil
        while let (piece, tries) = pending.popLast() {
            guard !piece.isEmpty else { continue }
            do {
                result.written += try await surviving(budget: budget, logger: logger, "record outcomes") {
                    try await self.record(Array(piece))
                }
            } catch let error as DatabaseError where error.isTimeout {
                result.timeouts += 1
                let since = firstTimeout ?? clock.now
                firstTimeout = since
                switch StatementSizing.afterTimeout(count: piece.count, tries: tries, elapsed: clock.now - since) {
                case .split(let first):
                    logger.warning("the database's time limit cancelled a record; recording it in smaller pieces",
                                   metadata: ["db.limit": "\(error.timeoutSetting ?? "-")", "run.rows": "\(piece.count)"])
                    pending.append((piece.dropFirst(first), 0))
                    pending.append((piece.prefix(first), 0))
                case .retry(let pause):
                    try? await clock.sleep(for: pause)
                    pending.append((piece, tries + 1))
                case .giveUp:
                    result.unrecorded += piece
                    result.failure = error
                    result.failedPiece = piece.count
                }
            } catch {
                // The connection stayed away past the budget, or the statement was refused: the
                // other pieces would meet the same.
                result.unrecorded += piece + pending.flatMap(\.piece)
                pending.removeAll()
                result.failure = error as? DatabaseError ?? DatabaseError(kind: .query, message: "\(error)")
                result.failedPiece = piece.count
            }
        }
        if !result.unrecorded.isEmpty {
            logger.error("outcomes not recorded: these rows keep this run's lease and come back when it ends, looked up at Twilio before any resend",
                         metadata: ["run.unrecorded": "\(result.unrecorded.count)",
                                    "run.unrecorded_ids": "\(result.unrecorded.map { String($0.id) }.joined(separator: ","))",
                                    "run.unrecorded_sent": "\(result.unrecorded.filter { $0.sid != nil }.count)",
                                    "db.error": "\(result.failure.map { "\($0)" } ?? "-")"])
        }
        return result
    }

    /// Claims up to `limit` rows (`claim`), and when a DBA's limit cancels the claim (which then
    /// took nothing), half as many, down to one row. Returns the rows and the size that fitted,
    /// where the next claims should start; throws what cancelled a claim of one row.
    func claimBounded(limit: Int, lease: Double, runID: String, uncertainOnly: Bool = false, spend: SpendClaim? = nil,
                      budget: Duration = .seconds(15), logger: Logger) async throws -> (rows: [ClaimedRow], size: Int) {
        var size = limit
        while true {
            do {
                let rows = try await surviving(budget: budget, logger: logger, "claim due rows") {
                    if let spend, !uncertainOnly {
                        return try await self.claimWithinSpend(limit: size, lease: lease, runID: runID, spend: spend)
                    }
                    return try await self.claim(limit: size, lease: lease, runID: runID, uncertainOnly: uncertainOnly)
                }
                return (rows, size)
            } catch let error as DatabaseError where error.isTimeout {
                guard let smaller = StatementSizing.smaller(size) else { throw error }
                logger.warning("the database's time limit cancelled a claim; claiming fewer rows",
                               metadata: ["db.limit": "\(error.timeoutSetting ?? "-")", "run.rows": "\(size)", "run.next_rows": "\(smaller)"])
                if error.isLockTimeout { try? await clock.sleep(for: .milliseconds(250)) }
                size = smaller
            }
        }
    }
}
