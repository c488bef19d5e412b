import Foundation
import Logging
import Synchronization

/// The cron job: claims due rows, resends them through Twilio, records each outcome.
///
/// Claim protocol: each batch is claimed in one committed statement (`FOR UPDATE SKIP LOCKED`,
/// lease = `next_retry_at` pushed forward) before any of its rows is sent, so concurrent runs on
/// any number of hosts take disjoint rows. A row is only sent while its lease has time left for the
/// whole request, and its outcome is only written while the row still carries this run's lease.
public final class RetryRunner: Sendable {
    let store: RetryStore
    let twilio: TwilioClient
    let options: RunOptions
    let logger: Logger
    public let runID: String
    private let stop = Mutex<String?>(nil)
    private let pause = Mutex<ContinuousClock.Instant?>(nil)

    public init(store: RetryStore, twilio: TwilioClient, options: RunOptions = RunOptions(),
                logger: Logger = Logger(label: "sms-retry.run"), runID: String? = nil) {
        self.store = store
        self.twilio = twilio
        self.options = options
        self.logger = logger
        self.runID = runID ?? "\(Self.hostname()):\(getpid()):\(UUID().uuidString.prefix(8))"
    }

    /// gethostname(2) only: Foundation's hostName may wait on a DNS lookup.
    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func run() async throws -> RunSummary {
        let clock = ContinuousClock()
        let started = clock.now
        let deadline = started + options.maxRuntime
        var summary = RunSummary()
        logger.info("run started", metadata: ["run.id": "\(runID)", "run.batch_size": "\(options.batchSize)",
                                              "run.concurrency": "\(options.concurrency)"])
        // Pipelined: the next batch is claimed as soon as the current one has no row left to
        // start, and a batch is recorded as soon as its last outcome is in, while later rows are
        // still in flight. Senders only wait on the database for those two statements.
        if options.adopt { summary.adopted = try await adopt(until: deadline) }
        var open: [Int: (expected: Int, outcomes: [Outcome])] = [:]
        var queue: [(batch: Int, row: RetryStore.ClaimedRow, sendBy: ContinuousClock.Instant)] = []
        var next = 0
        var batchCount = 0
        var claiming = true

        func finish(_ batch: Int) async throws {
            guard let entry = open[batch], entry.outcomes.count == entry.expected else { return }
            open[batch] = nil
            try await self.record(entry.outcomes, into: &summary)
        }

        try await withThrowingTaskGroup(of: (Int, Outcome).self) { group in
            var inFlight = 0
            while true {
                while inFlight < max(1, options.concurrency) {
                    if next == queue.count {
                        guard claiming, clock.now < deadline, stop.withLock({ $0 }) == nil else { claiming = false; break }
                        // A batch smaller than the concurrency would leave senders idle.
                        let want = min(max(options.batchSize, options.concurrency), options.limit.map { $0 - summary.claimed } ?? .max)
                        let rows = want > 0 ? try await store.claim(limit: want, lease: options.lease, runID: runID) : []
                        guard !rows.isEmpty else { claiming = false; break }
                        summary.claimed += rows.count
                        let batch = batchCount
                        batchCount += 1
                        let (closed, sendable) = triage(rows)
                        open[batch] = (rows.count, closed)
                        // A request may only start while the lease outlives it, with a margin.
                        let timeout = twilio.http.options.timeout + twilio.http.options.connectTimeout
                        let sendBy = min(clock.now + .milliseconds(Int64(options.lease * 1000)) - timeout - .seconds(5), deadline)
                        queue = sendable.map { (batch, $0, sendBy) }
                        next = 0
                        try await finish(batch)   // a batch of closed rows only
                        continue
                    }
                    let item = queue[next]
                    next += 1
                    inFlight += 1
                    group.addTask { (item.batch, await self.attempt(item.row, sendBy: item.sendBy)) }
                }
                guard inFlight > 0, let (batch, outcome) = try await group.next() else { break }
                inFlight -= 1
                open[batch]?.outcomes.append(outcome)
                try await finish(batch)
            }
        }
        if let why = stop.withLock({ $0 }) {
            summary.stoppedBecause = why
            summary.configurationError = true
        }
        let d = clock.now - started
        summary.seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        logger.info("run finished", metadata: ["run.id": "\(runID)", "run.claimed": "\(summary.claimed)",
                                               "run.sent": "\(summary.sent)", "run.failed": "\(summary.failed)"])
        return summary
    }

    /// Gives every failed outbound row without retry state (what a router that never calls the
    /// library leaves) its classification: the Twilio code from `sms_metadata` or `error_message`,
    /// through the policy; rows older than the maximum age are closed as expired. Each batch is
    /// locked, classified and written in one transaction, so concurrent runs adopt disjoint rows.
    /// Returns how many rows were adopted.
    func adopt(until deadline: ContinuousClock.Instant, batch: Int = 500) async throws -> Int {
        var adopted = 0
        let policy = store.policy
        let options = self.options
        while ContinuousClock.now < deadline {
            let count = try await store.database.transaction { conn -> Int in
                let rows = try conn.execute(Queries.unadoptedLock, [String(batch), String(options.adoptGrace)]).all
                let outcomes = rows.map { row -> Outcome in
                    let id = row.int("id")!
                    let message = row.string("error_message")
                    let code = ErrorCodeParser.code(errorMessage: message, metadata: row.string("metadata"))
                    let failure: Failure = code.map { .twilio(code: $0) } ?? .transport
                    var outcome: Outcome
                    if let age = row.double("age_seconds"), age > options.maxAge {
                        outcome = Outcome(id: id, kind: .failed, errorCode: code, reason: "expired", outcome: "expired")
                    } else {
                        outcome = .failure(id: id, decision: policy.decide(failure, attemptsMade: 0), failure: failure,
                                           message: message, countedAttempt: false)
                        outcome.outcome = "failed"
                    }
                    outcome.note = "adopted: the router did not report this failure"
                    return outcome
                }
                _ = try RetryStore.record(outcomes, on: conn)
                return outcomes.count
            }
            adopted += count
            if count < batch { break }
        }
        if adopted > 0 { logger.info("unreported failures adopted", metadata: ["run.adopted": "\(adopted)"]) }
        return adopted
    }

    /// Writes one batch's outcomes and counts them.
    private func record(_ outcomes: [Outcome], into summary: inout RunSummary) async throws {
        let written = Set(try await recordSurvivingReconnects(outcomes).map(\.id))
        var lost = 0
        for outcome in outcomes {
            guard written.contains(outcome.id) else { lost += 1; continue }
            switch outcome.kind {
            case _ where outcome.reconciled: summary.reconciled += 1
            case .sent, .delivered, .progress: summary.sent += 1
            case .retry: summary.rescheduled += 1
            case .failed where outcome.outcome == "not_sent": summary.skipped += 1
            case .failed where outcome.outcome == "expired": summary.expired += 1
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

    /// Records a batch, reconnecting when the server went away: these rows were sent, and an
    /// outcome lost here would have them resent once their lease ends. Rerunning the statement
    /// is safe: a row whose outcome did commit no longer carries this lease and is not written
    /// twice. Gives up (the run then exits as "database unreachable") after about 15 s.
    private func recordSurvivingReconnects(_ outcomes: [Outcome]) async throws -> [RetryStore.WrittenRow] {
        var wait = Duration.milliseconds(500)
        for attempt in 1... {
            do {
                return try await store.record(outcomes)
            } catch let error as DatabaseError where error.isConnectionLoss && attempt < 6 {
                logger.warning("database connection lost while recording outcomes; reconnecting",
                               metadata: ["db.error": "\(error)", "run.rows": "\(outcomes.count)", "db.attempt": "\(attempt)"])
                try await Task.sleep(for: wait)
                wait *= 2
                await store.database.reconnect()
            }
        }
        fatalError("unreachable")
    }

    /// The due rows a run would claim now, without claiming them.
    public func dryRun() async throws -> [DueMessage] {
        try await store.dueList(limit: options.limit ?? options.batchSize).map {
            DueMessage(logID: $0.id, maskedPhone: PhoneNumber.masked($0.phoneNumber), direction: $0.direction,
                       attempt: $0.retryCount + 1, maxRetries: $0.maxRetries, dueAt: $0.nextRetryAt,
                       lastErrorCode: $0.errorCode)
        }
    }

    /// Splits a claimed batch into rows closed unsent (too old, bad input, inbound) and rows to send.
    private func triage(_ rows: [RetryStore.ClaimedRow]) -> (closed: [Outcome], sendable: [RetryStore.ClaimedRow]) {
        var closed: [Outcome] = []
        var sendable: [RetryStore.ClaimedRow] = []
        for row in rows {
            if let age = row.ageSeconds, age > options.maxAge {
                logger.info("message too old to send; closed", metadata: ["sms.log_id": "\(row.id)", "sms.age_s": "\(Int(age))"])
                var expired = Outcome.closed(id: row.id, reason: "expired", leaseUntil: row.leaseUntil)
                expired.outcome = "expired"
                closed.append(expired)
            } else if let reason = Self.unsendableReason(row) {
                logger.warning("row closed without sending", metadata: ["sms.log_id": "\(row.id)", "sms.reason": "\(reason)"])
                closed.append(.closed(id: row.id, reason: reason, leaseUntil: row.leaseUntil))
            } else {
                if let previous = row.previousLease {
                    logger.warning("previous attempt's outcome unknown (its run stopped before recording it); asking Twilio before resending",
                                   metadata: ["sms.log_id": "\(row.id)", "sms.previous_lease": "\(previous)"])
                }
                sendable.append(row)
            }
        }
        return (closed, sendable)
    }

    static func unsendableReason(_ row: RetryStore.ClaimedRow) -> String? {
        if !RetryStore.isOutbound(row.direction) { return "not_outbound" }
        if (row.content ?? "").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return "empty_body" }
        if !PhoneNumber.isE164(row.phoneNumber) { return "invalid_phone_number" }
        return nil
    }

    /// One send and what it means for the row.
    private func attempt(_ row: RetryStore.ClaimedRow, sendBy: ContinuousClock.Instant) async -> Outcome {
        if let until = pause.withLock({ $0 }), until > .now {
            try? await Task.sleep(until: min(until, sendBy), clock: .continuous)
        }
        guard stop.withLock({ $0 }) == nil, ContinuousClock.now < sendBy else {
            return .release(id: row.id, delay: 0, leaseUntil: row.leaseUntil)
        }
        let attemptsMade = row.retryCount + 1
        // An earlier send may have created a message we were never told about: ask Twilio first.
        if row.uncertainSince != nil {
            switch await Reconciler.resolve(row, twilio: twilio, policy: store.policy, logger: logger) {
            case .found(let outcome):
                return outcome
            case .notFound:
                break
            case .failed(let error):
                if error.unauthorized { stop.withLock { $0 = $0 ?? "Twilio refused the credentials (\(error))" } }
                return .release(id: row.id, delay: options.throttleDelay, leaseUntil: row.leaseUntil)
            }
        }
        let started = Date()
        let result = await twilio.send(to: row.phoneNumber, body: row.content ?? "")
        var outcome: Outcome
        switch result {
        case .accepted(let sid, let twilioStatus, let status, let seconds):
            outcome = Outcome(id: row.id, kind: .sent, counted: true, sid: sid, httpStatus: status,
                              durationMS: Int(seconds * 1000), outcome: "sent")
            outcome.delivery = ["sid": sid, "status": twilioStatus, "at": ISO8601DateFormatter().string(from: Date())]
        case .rejected(let code, let message, let status, let seconds):
            let decision = store.policy.decide(.twilio(code: code), attemptsMade: attemptsMade)
            outcome = .failure(id: row.id, decision: decision, failure: .twilio(code: code),
                               message: "Twilio error \(code): \(message)", countedAttempt: true)
            outcome.httpStatus = status
            outcome.durationMS = Int(seconds * 1000)
            outcome.outcome = "rejected"
            outcome.uncertain = .clear
        case .throttled(let retryAfter, let status, let seconds):
            let wait = retryAfter ?? options.throttleDelay
            pause.withLock { $0 = max($0 ?? .now, .now + .milliseconds(Int64(wait * 1000))) }
            outcome = .release(id: row.id, delay: wait, leaseUntil: row.leaseUntil)
            outcome.errorCode = RetryPolicy.throttledCode
            outcome.httpStatus = status
            outcome.durationMS = Int(seconds * 1000)
            outcome.outcome = "throttled"
        case .unauthorized(let code, let message, let status):
            stop.withLock { $0 = $0 ?? "Twilio refused the credentials (HTTP \(status), code \(code.map(String.init) ?? "none"): \(message)); check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN or the API key" }
            outcome = .release(id: row.id, delay: 0, leaseUntil: row.leaseUntil)
        case .unexpected(let status, let code, let message, let seconds):
            let decision = store.policy.decide(.transport, attemptsMade: attemptsMade)
            outcome = .failure(id: row.id, decision: decision, failure: .transport,
                               message: "HTTP \(status)\(code.map { " (code \($0))" } ?? ""): \(message)", countedAttempt: true)
            outcome.errorCode = code
            outcome.httpStatus = status
            outcome.durationMS = Int(seconds * 1000)
            outcome.outcome = "http_error"
            // A 5xx may come after Twilio created the message: ask before resending.
            outcome.uncertain = .since(started)
        case .transport(let error, let seconds):
            let decision = store.policy.decide(.transport, attemptsMade: attemptsMade)
            outcome = .failure(id: row.id, decision: decision, failure: .transport, message: error.description,
                               countedAttempt: true)
            outcome.durationMS = Int(seconds * 1000)
            outcome.outcome = "transport_error"
            outcome.uncertain = error.requestMayHaveArrived ? .since(started) : .clear
        }
        outcome.leaseUntil = row.leaseUntil
        logger.debug("attempt", metadata: ["sms.log_id": "\(row.id)", "sms.to": "\(PhoneNumber.masked(row.phoneNumber))",
                                           "sms.attempt": "\(attemptsMade)", "sms.outcome": "\(outcome.outcome ?? outcome.kind.rawValue)",
                                           "sms.error_code": "\(outcome.errorCode.map(String.init) ?? "-")"])
        return outcome
    }
}

/// A row `run` would send now (`--dry-run`).
public struct DueMessage: Sendable {
    public var logID: Int
    public var maskedPhone: String
    public var direction: String
    public var attempt: Int
    public var maxRetries: Int
    public var dueAt: String
    public var lastErrorCode: String?
}
