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
    /// canceled) is reopened with one more attempt. Decided in SQL (`sms_retry_retry_now_at`,
    /// migration 015, at this store's clock): one implementation with `sms_retry_retry_now`.
    public func retryNow(logID: Int) async throws -> RetryNowOutcome {
        let answer = try await report(ReportRetryNow(logID: logID, now: clock.statementNow))
        switch answer.result {
        case "scheduled": return .scheduled(attempt: answer.attempt ?? 1)
        case "not_found": return .rowNotFound
        case "not_outbound": return .notOutbound
        case "already_sent": return .alreadySent
        case "in_flight": return .inFlight
        case "refused": return .refused(reason: answer.reason ?? "")
        default: throw answer.unexpected(ReportRetryNow.name)
        }
    }

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
    /// `note` kept in the metadata). The row itself stays. Decided in SQL (`sms_retry_cancel_at`,
    /// migration 015, at this store's clock): one implementation with `sms_retry_cancel`.
    public func cancel(logID: Int, note: String? = nil) async throws -> CancelOutcome {
        let answer = try await report(ReportCancel(logID: logID, note: note, now: clock.statementNow))
        switch answer.result {
        case "closed": return .canceled
        case "not_found": return .rowNotFound
        case "not_outbound": return .notOutbound
        case "already_sent": return .alreadySent
        case "not_pending": return .notPending
        case "in_flight": return .inFlight
        default: throw answer.unexpected(ReportCancel.name)
        }
    }

    /// A pending retry `expire` closes, or would close.
    public struct StaleRow: Sendable, Equatable {
        public var id: Int
        /// `created_at` as the router wrote it.
        public var createdAt: String
        public var retryCount: Int
        public var maxRetries: Int
    }

    /// Closes every pending retry whose message is older than `maxAge` seconds (reason
    /// `expired`) instead of sending it late: a stale one-time code helps nobody. Rows in flight
    /// are left to their run, which applies the same limit. Returns how many were closed.
    public func expire(olderThan maxAge: Double, batch: Int = 500) async throws -> Int {
        try await expireRows(olderThan: maxAge, batch: batch).count
    }

    /// `expire`, returning the rows it closed. `batch` rows per transaction; a batch a DBA's time
    /// limit cancelled is made again with half as many rows (`StatementSizing`).
    public func expireRows(olderThan maxAge: Double, batch: Int = 500) async throws -> [StaleRow] {
        var closed: [StaleRow] = []
        var batch = batch
        while true {
            let size = batch
            let (found, written): (Int, [StaleRow])
            do {
                (found, written) = try await database.transaction { conn -> (Int, [StaleRow]) in
                    let rows = try conn.run(StaleLock(maxAge: maxAge, now: self.clock.statementNow, batch: size))
                    let outcomes = rows.map { Outcome(id: $0.id, kind: .failed, reason: .expired, outcome: .expired) }
                    let ids = outcomes.isEmpty ? [] : Set(try Self.record(outcomes, now: self.clock.statementNow, on: conn).map(\.id))
                    return (rows.count, rows.filter { ids.contains($0.id) })
                }
            } catch let error as DatabaseError where error.isTimeout {
                guard let smaller = StatementSizing.smaller(batch) else { throw error }
                logger.warning("the database's time limit cancelled an expire batch; closing fewer rows at a time",
                               metadata: ["db.limit": "\(error.timeoutSetting ?? "-")", "run.rows": "\(batch)"])
                batch = smaller
                continue
            }
            closed += written
            if found < size { return closed.sorted { $0.id < $1.id } }
        }
    }

    /// The rows `expire(olderThan:)` would close now, by id; nothing is changed (`expire --dry-run`).
    public func expireCandidates(olderThan maxAge: Double, batch: Int = 1000) async throws -> [StaleRow] {
        var rows: [StaleRow] = []
        while true {
            let page = try await database.run(StaleList(maxAge: maxAge, now: clock.statementNow, after: rows.last?.id ?? 0, limit: batch))
            rows += page
            if page.count < batch { return rows }
        }
    }

    /// Rows due now.
    public func dueCount() async throws -> Int {
        try await database.run(DueCount(now: clock.statementNow)).first?.due ?? 0
    }
}
