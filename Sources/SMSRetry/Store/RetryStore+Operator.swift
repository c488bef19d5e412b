import Foundation

/// What operators do by hand: resend a message now, cancel a pending retry, close stale ones.
/// Each goes through the same outcome statement as a run, so metadata merges the same way and
/// the history records who did what.
extension RetryStore {
    public enum RetryNowOutcome: Sendable, Equatable {
        /// Due now; the next run sends it as resend number `attempt`.
        case scheduled(attempt: Int)
        case rowNotFound
        case notOutbound
        case alreadySent
        /// A run holds the row right now; try again when its lease ends.
        case inFlight
        /// Closed for a reason a resend cannot fix (not retryable, bad input, opted out).
        case refused(reason: String)
    }

    /// Makes row `logID` due now. A row closed because its attempts ran out (or expired, or was
    /// canceled) is reopened with one more attempt.
    public func retryNow(logID: Int) async throws -> RetryNowOutcome {
        try await database.transaction { conn -> RetryNowOutcome in
            guard let row = try conn.execute(Statement.rowLock, [String(logID), self.clock.sql]).first else { return .rowNotFound }
            guard Self.isOutbound(row.string("message_direction")) else { return .notOutbound }
            if row.bool("success") == true { return .alreadySent }
            if row.bool("in_flight") == true { return .inFlight }
            if let reason = row.string("reason"), !Self.reopenable.contains(reason) { return .refused(reason: reason) }
            let made = row.int("retry_count") ?? 0
            var outcome = Outcome(id: logID, kind: .retry, delay: 0, outcome: .retryNow)
            outcome.maxRetries = max(row.int("max_retries") ?? 0, made + 1)
            _ = try Self.record([outcome], now: self.clock.sql, on: conn)
            return .scheduled(attempt: made + 1)
        }
    }

    /// Closing reasons an operator may override with `retryNow`.
    static let reopenable: Set<String> = ["exhausted", "expired", "canceled"]

    public enum CancelOutcome: Sendable, Equatable {
        case canceled
        case rowNotFound
        case notOutbound
        case alreadySent
        /// No retry is pending on this row.
        case notPending
        case inFlight
    }

    /// Closes the pending retry of row `logID` (`final_status = 'failed'`, reason `canceled`,
    /// `note` kept in the metadata). The row itself stays.
    public func cancel(logID: Int, note: String? = nil) async throws -> CancelOutcome {
        try await database.transaction { conn -> CancelOutcome in
            guard let row = try conn.execute(Statement.rowLock, [String(logID), self.clock.sql]).first else { return .rowNotFound }
            guard Self.isOutbound(row.string("message_direction")) else { return .notOutbound }
            if row.bool("success") == true { return .alreadySent }
            if row.bool("in_flight") == true { return .inFlight }
            guard row.bool("pending") == true else { return .notPending }
            _ = try Self.record([Outcome(id: logID, kind: .failed, reason: .canceled, outcome: .canceled, note: note)], now: self.clock.sql, on: conn)
            return .canceled
        }
    }

    /// Closes every pending retry whose message is older than `maxAge` seconds (reason
    /// `expired`) instead of sending it late: a stale one-time code helps nobody. Rows in flight
    /// are left to their run, which applies the same limit. Returns how many were closed.
    /// `batch` rows per transaction; a batch a DBA's time limit cancelled is made again with half
    /// as many rows (`StatementSizing`).
    public func expire(olderThan maxAge: Double, batch: Int = 500) async throws -> Int {
        var closed = 0
        var batch = batch
        while true {
            let size = batch
            let (found, written): (Int, Int)
            do {
                (found, written) = try await database.transaction { conn -> (Int, Int) in
                    let ids = try conn.execute(Statement.staleLock, [String(maxAge), self.clock.sql, String(size)]).all.compactMap { $0.int("id") }
                    let outcomes = ids.map { Outcome(id: $0, kind: .failed, reason: .expired, outcome: .expired) }
                    return (ids.count, outcomes.isEmpty ? 0 : try Self.record(outcomes, now: self.clock.sql, on: conn).count)
                }
            } catch let error as DatabaseError where error.isTimeout {
                guard let smaller = StatementSizing.smaller(batch) else { throw error }
                logger.warning("the database's time limit cancelled an expire batch; closing fewer rows at a time",
                               metadata: ["db.limit": "\(error.timeoutSetting ?? "-")", "run.rows": "\(batch)"])
                batch = smaller
                continue
            }
            closed += written
            if found < size { return closed }
        }
    }

    /// Rows due now.
    public func dueCount() async throws -> Int {
        try await database.query(Statement.dueCount, [clock.sql]).first?.int("due") ?? 0
    }
}
