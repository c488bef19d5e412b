import Foundation
import Logging

/// The sweep's reads and writes (`reconcile`): candidates found down the primary key, Twilio's
/// answers applied a batch at a time, each exactly as `recordDeliveryStatus` applies a callback.
extension RetryStore {
    /// A row the sweep asks Twilio about.
    public struct SweepCandidate: Sendable, Equatable {
        public var id: Int
        public var sid: String
        public var retryCount: Int
        /// When the router created the row (its `created_at` in the configured zone).
        public var created: Date
    }

    /// One chunk of the walk down the primary key (`SweepChunkRead`).
    public struct SweepChunk: Sendable {
        public var lowestID: Int?
        public var rows: Int
        public var rowsInWindow: Int
        public var candidates: [SweepCandidate]
    }

    func sweepChunk(below cursor: Int?, size: Int, settle: Double, window: Double, sidKeyPath: [String]) async throws -> SweepChunk {
        let rows = try await database.run(SweepChunkRead(cursor: cursor, size: size, settle: settle, window: window,
                                                         now: clock.statementNow, sidKeyPath: sidKeyPath))
        let first = rows.first
        return SweepChunk(lowestID: first?.lowestID, rows: first?.scanned ?? 0, rowsInWindow: first?.inWindow ?? 0,
                          candidates: rows.compactMap(\.candidate))
    }

    /// Twilio's status for one swept message.
    public struct SweptStatus: Sendable {
        public var candidate: SweepCandidate
        public var status: DeliveryStatus
        public var errorCode: Int?
    }

    /// Applies `answers` in one transaction (rows locked by id, one record statement), each as
    /// `recordDeliveryStatus` applies a callback: a status no later than what the row knows
    /// changes nothing; `undelivered`/`failed` classified by the policy (scheduled or closed);
    /// `delivered`/`read` confirmed; a status on the way recorded on a router's row (it becomes
    /// `sent`), not written on a row already `sent`.
    /// A row whose final word another writer recorded since the sweep read it is left. Returns what each row came to, by id.
    func applySweptStatuses(_ answers: [SweptStatus]) async throws -> [Int: DeliveryOutcome] {
        guard !answers.isEmpty else { return [:] }
        let policy = self.policy
        return try await database.transaction { conn -> [Int: DeliveryOutcome] in
            let rows = try conn.run(StatusRowsLock(ids: answers.map(\.candidate.id)))
            let byID = Dictionary(rows.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            var outcomes: [Outcome] = []
            var results: [Int: DeliveryOutcome] = [:]
            for answer in answers {
                let id = answer.candidate.id, sid = answer.candidate.sid, status = answer.status
                guard let row = byID[id] else { results[id] = .unknownMessage; continue }
                guard Self.isOutbound(row.direction) else { results[id] = .notOutbound(logID: id); continue }
                let known = row.deliverySID == sid ? row.deliveryStatus.flatMap(DeliveryStatus.init) : nil
                if let known, known.rank >= status.rank { results[id] = .unchanged(logID: id, current: known.rawValue); continue }
                // A final word another writer (a callback, the router) recorded since the sweep read the row.
                if let final = row.finalStatus, !["unknown", "sent"].contains(final) {
                    results[id] = .unchanged(logID: id, current: final); continue
                }
                // A resend Twilio has not finished with: nothing to write (its settle time counts
                // from sms-retry's last write, so the next reconcile asks again).
                if status.isProgress && row.finalStatus == "sent" {
                    results[id] = .unchanged(logID: id, current: status.rawValue); continue
                }
                let made = row.retryCount ?? 0
                var outcome = Outcome.status(id: id, sid: sid, status: status, errorCode: answer.errorCode,
                                             attemptsMade: made, counted: false, policy: policy, now: self.clock.wallNow())
                if status.isProgress && row.success == true && row.finalStatus == "unknown" {
                    outcome.finalStatus = .sent
                }
                results[id] = switch outcome.kind {
                case .progress: .progress(logID: id, status: status.rawValue)
                case .delivered: .delivered(logID: id)
                case .retry: .scheduled(logID: id, attempt: made + 1, at: self.clock.wallNow())
                default: .closed(logID: id, reason: outcome.reason?.rawValue ?? status.rawValue)
                }
                outcomes.append(outcome)
            }
            _ = try Self.record(outcomes, now: self.clock.statementNow, on: conn)
            return results
        }
    }
}
