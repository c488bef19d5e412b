import Foundation
import Logging

/// `sms-retry reconcile`: asks Twilio what became of messages whose fate the table does not know,
/// and applies the answer through the same paths as callbacks and runs.
///
/// 1. Rows whose last send's fate is unknown (a run died between claim and record, a request
///    timed out, a 5xx): claimed like due rows, then looked up in Twilio's message list (same
///    number and body, created since that send). Found: recorded as sent with its SID and status,
///    never resent. Not found: handed back due now, marked known, for the next run to send.
/// 2. The sweep: outbound rows Twilio accepted with no final word after `confirmAfter` (the
///    settle time), created within `maxAge` (the window) — the router's first sends and
///    sms-retry's own resends alike — found down the primary key (`Sweep.TableWalk`), asked about
///    through the message list or GETs by SID, whichever asks less (`Sweep.choose`), and Twilio's
///    words applied as a callback applies them (`applySweptStatuses`), a batch at a time — so a
///    lost `undelivered` callback still gets its retry. Still on its way: asked again next time.
public final class Reconciler: Sendable {
    public struct Options: Sendable {
        /// The settle time: ask about an accepted message after this long without a final status
        /// (default 15 min; for a resend, since sms-retry recorded it); again on every reconcile
        /// until the message is older than `maxAge`, the sweep's window.
        public var confirmAfter: Double = 900
        public var maxAge: Double = 86_400
        /// Where the router keeps a message's SID in `sms_metadata` when not in
        /// `twilio_message_sid` (e.g. `["twilio", "sid"]`); empty: nowhere.
        public var sidKeyPath: [String] = []
        /// The list or GETs by SID; `auto` chooses whichever asks less.
        public var sweepBy: Sweep.Way = .auto
        /// Twilio's answers written per transaction (and per log line).
        public var writeBatch = 500
        public var batchSize = 50
        /// Requests to Twilio in flight at once.
        public var concurrency = 8
        /// How long a claim holds rows while Twilio is asked.
        public var lease: Double = 300
        public init() {}
    }

    public struct Summary: Sendable, CustomStringConvertible {
        /// Unknown-fate rows found at Twilio (recorded, not resent) / not found (due for a resend).
        public var found = 0
        public var notFound = 0
        /// The sweep: messages asked about, what Twilio said of them (the row scheduled or closed
        /// as the policy says for `undelivered`/`failed`), still on their way (asked again next
        /// time), not in the list walked, the requests made, and the way asked.
        public var swept = 0
        public var confirmed = 0
        public var undelivered = 0
        public var failed = 0
        public var pending = 0
        public var unseen = 0
        public var requests = 0
        public var way: Sweep.Way? = nil
        /// Rows the sweep's answers changed.
        public var updated = 0
        /// Questions Twilio did not answer (the rows are asked about again later).
        public var errors = 0
        public var unauthorized = false
        /// Answers the database would not record, even in pieces (the rows are asked about again
        /// once their lease ends).
        public var unrecorded = 0
        /// The database error that stopped the work (exit 3), and for a DBA's time limit the line
        /// naming it (`ServerLimit.line`).
        public var databaseError: DatabaseError? = nil
        public var databaseLimit: String? = nil

        public var exitCode: Int32 { unauthorized ? 2 : databaseError != nil ? 3 : errors > 0 ? 1 : 0 }
        public var description: String {
            var fields: [String] = ["found=\(found)", "not_found=\(notFound)", "swept=\(swept)", "confirmed=\(confirmed)",
                                    "undelivered=\(undelivered)", "failed=\(failed)", "pending=\(pending)"]
            if unseen > 0 { fields.append("unseen=\(unseen)") }
            fields += ["requests=\(requests)", "errors=\(errors)"]
            if let way { fields.append("by=\(way.rawValue)") }
            if unrecorded > 0 { fields.append("unrecorded=\(unrecorded)") }
            return fields.joined(separator: " ")
        }
    }

    let store: RetryStore
    let twilio: TwilioClient
    let options: Options
    let logger: Logger
    let runID: String

    public init(store: RetryStore, twilio: TwilioClient, options: Options = Options(),
                logger: Logger = Logger(label: "sms-retry.reconcile")) {
        self.store = store
        self.twilio = twilio
        self.options = options
        self.logger = logger
        runID = "reconcile:\(RunIdentity.hostname()):\(getpid())"
    }

    public func run() async throws -> Summary {
        var summary = Summary()
        do {
            try await work(&summary)
        } catch let error as DatabaseError where error.isTimeout {
            // A DBA's time limit that smaller statements did not fit either: what was asked and
            // recorded stays; the rest is asked again on the next reconcile.
            summary.databaseError = error
            summary.databaseLimit = await ServerLimit.read(for: error, on: store.database)?.line("a statement of reconcile")
        }
        return summary
    }

    private func work(_ summary: inout Summary) async throws {
        var claimSize = options.batchSize
        while !summary.unauthorized {
            // Every statement here is safe to repeat after a lost connection: a claim takes other
            // rows, a record is guarded by the lease, a status by its rank. A claim or a record a
            // DBA's time limit cancelled is made again smaller (`claimBounded`, `recordInPieces`).
            let (rows, fitted) = try await store.claimBounded(limit: claimSize, lease: options.lease, runID: runID,
                                                              uncertainOnly: true, logger: logger)
            claimSize = fitted
            guard !rows.isEmpty else { break }
            let resolutions = await concurrently(rows) { row in
                await DoubtLookup.resolve(row, twilio: self.twilio, store: self.store, logger: self.logger)
            }
            var outcomes: [Outcome] = []
            for (row, resolution) in zip(rows, resolutions) {
                switch resolution {
                case .found(let outcome):
                    summary.found += 1
                    outcomes.append(outcome)
                case .notFound:
                    summary.notFound += 1
                    var outcome = Outcome.release(id: row.id, delay: 0, leaseUntil: row.leaseUntil)
                    outcome.uncertain = .clear
                    outcomes.append(outcome)
                case .failed(let error):
                    summary.errors += 1
                    summary.unauthorized = summary.unauthorized || error.unauthorized
                    outcomes.append(.release(id: row.id, delay: 60, leaseUntil: row.leaseUntil))
                }
            }
            let recorded = await store.recordInPieces(outcomes, logger: logger)
            if let failure = recorded.failure {
                summary.unrecorded += recorded.unrecorded.count
                guard failure.isTimeout else { throw failure }
                summary.databaseError = failure
                summary.databaseLimit = await ServerLimit.read(for: failure, on: store.database)?
                    .line("the record of \(ServerLimit.rows(recorded.failedPiece))")
                return
            }
            if rows.count < claimSize { break }
        }
        if !summary.unauthorized { try await sweep(&summary) }
        logger.info("reconcile finished", metadata: ["reconcile.found": "\(summary.found)", "reconcile.swept": "\(summary.swept)",
                                                     "reconcile.requests": "\(summary.requests)", "reconcile.errors": "\(summary.errors)"])
    }

    /// `work` over `items`, at most `options.concurrency` at a time, results in input order.
    func concurrently<T: Sendable, R: Sendable>(_ items: [T], _ work: @escaping @Sendable (T) async -> R) async -> [R] {
        await withTaskGroup(of: (Int, R).self) { group in
            var results = [R?](repeating: nil, count: items.count)
            var next = 0
            func add() {
                let i = next
                next += 1
                group.addTask { (i, await work(items[i])) }
            }
            while next < min(items.count, options.concurrency) { add() }
            for await (i, r) in group {
                results[i] = r
                if next < items.count { add() }
            }
            return results.map { $0! }
        }
    }
}
