import Foundation
import Logging

/// `sms-retry reconcile`: asks Twilio what became of messages whose fate the table does not know,
/// and applies the answer through the same paths as callbacks and runs.
///
/// 1. Rows whose last send's fate is unknown (a run died between claim and record, a request
///    timed out, a 5xx): claimed like due rows, then looked up in Twilio's message list (same
///    number and body, created since that send). Found: recorded as sent with its SID and status,
///    never resent. Not found: handed back due now, marked known, for the next run to send.
/// 2. Resends Twilio accepted with no final word after `confirmAfter`: `GET …/Messages/{Sid}.json`,
///    then `recordDeliveryStatus` — so a lost `undelivered` callback still gets its retry.
public final class Reconciler: Sendable {
    public struct Options: Sendable {
        /// Ask about an accepted resend after this long without a final status (default 15 min);
        /// then again every twice that, until the message is older than `maxAge`.
        public var confirmAfter: Double = 900
        public var maxAge: Double = 86_400
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
        /// Accepted resends whose status was asked, and how many of those changed the row.
        public var checked = 0
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
            "found=\(found) not_found=\(notFound) checked=\(checked) updated=\(updated) errors=\(errors)"
                + (unrecorded > 0 ? " unrecorded=\(unrecorded)" : "")
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
        while !summary.unauthorized {
            let rows = try await store.surviving(logger: logger, "claim unconfirmed resends") {
                try await self.store.claimUnconfirmed(limit: self.options.batchSize, confirmAfter: self.options.confirmAfter,
                                                      maxAge: self.options.maxAge)
            }
            guard !rows.isEmpty else { break }
            let answers = await concurrently(rows) { row in (row, await self.twilio.message(sid: row.sid)) }
            for (row, answer) in answers {
                summary.checked += 1
                switch answer {
                case .success(let message?):
                    let outcome = try await store.surviving(logger: logger, "record a delivery status") {
                        try await self.store.recordDeliveryStatus(messageSID: row.sid, status: message.status,
                                                                  errorCode: message.errorCode)
                    }
                    if case .unchanged = outcome {} else if case .progress = outcome {} else { summary.updated += 1 }
                case .success(nil):
                    logger.warning("Twilio does not know a message sms-retry recorded as accepted",
                                   metadata: ["sms.log_id": "\(row.id)", "sms.sid": "\(row.sid)"])
                case .failure(let error):
                    summary.errors += 1
                    if error.unauthorized { summary.unauthorized = true }
                    logger.warning("could not ask Twilio about a message", metadata: ["sms.sid": "\(row.sid)", "twilio.error": "\(error)"])
                }
            }
            if rows.count < options.batchSize { break }
        }
        logger.info("reconcile finished", metadata: ["reconcile.found": "\(summary.found)", "reconcile.checked": "\(summary.checked)",
                                                     "reconcile.errors": "\(summary.errors)"])
    }

    /// `work` over `items`, at most `options.concurrency` at a time, results in input order.
    private func concurrently<T: Sendable, R: Sendable>(_ items: [T], _ work: @escaping @Sendable (T) async -> R) async -> [R] {
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
