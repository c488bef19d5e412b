import Foundation
import Logging

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
    /// The run's stop, which its senders and its record read.
    private let line = StopLine()
    /// Sending one row, and what the senders learn from each other.
    private let sender: MessageSender
    /// Recording one batch.
    private let recorder: BatchRecorder

    typealias Stop = RunStop

    public init(store: RetryStore, twilio: TwilioClient, options: RunOptions = RunOptions(),
                logger: Logger = Logger(label: "sms-retry.run"), runID: String? = nil) {
        self.store = store
        self.twilio = twilio
        self.options = options
        self.logger = logger
        self.runID = runID ?? "\(RunIdentity.hostname()):\(getpid()):\(UUID().uuidString.prefix(8))"
        sender = MessageSender(store: store, twilio: twilio, options: options, logger: logger, runID: self.runID, line: line)
        recorder = BatchRecorder(store: store, logger: logger, line: line)
    }

    public func run() async throws -> RunSummary {
        let clock = store.clock
        let started = clock.now
        let deadline = started + options.maxRuntime
        var summary = RunSummary()
        logger.info("run started", metadata: ["run.id": "\(runID)", "run.batch_size": "\(options.batchSize)",
                                              "run.concurrency": "\(options.concurrency)"])
        // Pipelined (`RunLoop`): the next batch is claimed while the current one still has half
        // the concurrency's rows to start, and a batch is recorded as soon as its last outcome is
        // in; both run as tasks beside the sends, so a sender never waits on the database.
        if options.adopt { summary.adoption = try await adopt(until: deadline) }
        // A fleet-wide rate: this run's share, re-counted four times a second while it runs.
        // The first send waits one count of every run: those already sending count this one
        // (they send at their larger shares until then), and this one counts runs that started
        // at the same moment but had not taken their presence at its first count.
        var follower: Task<Void, Never>? = nil
        let fleet = options.rate != nil || options.senderRate != nil ? FleetRate(store: store, logger: logger) : nil
        if let fleet {
            if let runs = try? await fleet.present() { sender.applyShare(runs: runs) }
            let start = clock.now + FleetRate.joining
            sender.holdFirstSend(until: start)
            follower = Task { await fleet.follow { [weak sender] runs in sender?.applyShare(runs: runs) } }
        }
        defer { follower?.cancel() }
        let sendTimeout = twilio.http.options.timeout + twilio.http.options.connectTimeout
        var loop = RunLoop<RetryStore.ClaimedRow>(RunLoop.Settings(
            concurrency: options.concurrency, batchSize: options.batchSize, limit: options.limit, rate: options.rate,
            lease: options.lease, sendTimeout: sendTimeout, deadline: deadline))

        /// What the run's child tasks report: a send's outcome, a claimed batch, a recorded one.
        enum Done: Sendable {
            case sent(batch: Int, Outcome)
            case claimed(Result<(rows: [RetryStore.ClaimedRow], size: Int), DatabaseError>)
            case recorded([Outcome], Result<BatchRecorder.Recorded, any Error>)
        }

        // The loop's decisions are `RunLoop`'s; this only performs its actions and feeds back
        // what became of them, with what the senders saw meanwhile (a stop, a row out of time,
        // the breaker open) first, as the loop would have read it from them.
        try await withThrowingTaskGroup(of: Done.self) { group in
            func perform(_ actions: [RunLoop<RetryStore.ClaimedRow>.Action]) {
                for action in actions {
                    switch action {
                    case .send(let row, let batch, let sendBy):
                        group.addTask { .sent(batch: batch, await self.sender.attempt(row, sendBy: sendBy)) }
                    case .claim(let want, let budget):
                        // A claim a DBA's time limit cancelled took nothing: it is made again for
                        // fewer rows (`claimBounded`), and later claims start from the size that fitted.
                        group.addTask {
                            do {
                                return .claimed(.success(try await self.store.claimBounded(limit: want, lease: self.options.lease, runID: self.runID,
                                                                                           spend: self.spendClaim, budget: budget, logger: self.logger)))
                            } catch let error as DatabaseError {
                                return .claimed(.failure(error))
                            }
                        }
                    case .record(_, let outcomes):
                        // In a task of its own: senders go on.
                        group.addTask {
                            do { return .recorded(outcomes, .success(try await self.recorder.record(outcomes))) }
                            catch { return .recorded(outcomes, .failure(error)) }
                        }
                    case .finish:
                        break
                    }
                }
            }
            func feed(_ event: RunLoop<RetryStore.ClaimedRow>.Event) {
                var seen: [RunLoop<RetryStore.ClaimedRow>.Event] = []
                if loop.stop == nil, let why = line.reason { seen.append(.stopped(why)) }
                if !loop.outOfTime, sender.outOfTime { seen.append(.outOfTime) }
                if !loop.breakerOpen, sender.breaker.isOpen { seen.append(.breakerOpened) }
                for event in seen + [event] { perform(loop.handle(event, now: clock.now, earliestTurn: sender.gate.earliestTurn())) }
                summary.claimed = loop.claimed
            }

            feed(.start)
            while !loop.finished, let done = try await group.next() {
                switch done {
                case .sent(let batch, let outcome):
                    feed(.sent(batch: batch, outcome))
                case .claimed(.failure(let error)) where error.isConnectionLoss || error.isTimeout:
                    // The rows in flight were sent: finish them and try to record them
                    // (surviving a short restart) before exiting as a database error.
                    logger.error(error.isTimeout ? "the database's time limit cancelled a claim of one row; finishing the rows in flight"
                                                 : "database connection lost while claiming; finishing the rows in flight",
                                 metadata: ["db.error": "\(error)"])
                    line.databaseFailed(error, error.isTimeout ? "the claim of 1 row" : "a claim")
                    feed(.claimFailed)
                case .claimed(.failure(let error)):
                    throw error
                case .claimed(.success(let (rows, size))):
                    let (closed, sendable) = triage(rows)
                    feed(.claimed(closed: closed, sendable: sendable, fitted: size))
                case .recorded(let outcomes, let written):
                    let recorded = try written.get()
                    recorder.tally(outcomes, recorded, into: &summary)
                    if let failure = recorded.failure {
                        line.databaseFailed(failure, "the record of \(ServerLimit.rows(recorded.failedPiece))")
                    }
                    feed(.recorded)
                }
            }
        }
        let reach = sender.reach
        if let unreachable = RunStop.unreachable(requests: reach.requests, notReached: reach.unreachable, url: "\(twilio.messagesURL)", last: reach.last) {
            line.replace(with: unreachable)
        }
        if let stop = line.reason {
            summary.stoppedBecause = stop.reason
            switch stop {
            case .configuration: summary.configurationError = true
            case .outage: summary.providerOutage = true
            case .database: break
            }
        }
        if let failure = line.databaseFailure {
            summary.databaseError = failure.error
            summary.databaseLimit = await ServerLimit.read(for: failure.error, on: store.database)?.line(failure.what)
        }
        sender.report(into: &summary)
        if let fleet {
            follower?.cancel()
            await follower?.value
            await fleet.leave()
        }
        summary.seconds = (clock.now - started).seconds
        logger.info("run finished", metadata: ["run.id": "\(runID)", "run.claimed": "\(summary.claimed)",
                                               "run.sent": "\(summary.sent)", "run.failed": "\(summary.failed)"])
        return summary
    }

    /// Adopts the failures the router never reported (`RetryStore.adopt`), batch by batch until
    /// none is left or the deadline passes. Returns what became of the rows adopted. A batch a DBA's
    /// time limit cancelled (its transaction rolled back) is made again with half as many rows;
    /// when even one row does not fit, the run stops there (exit 3).
    func adopt(until deadline: SMSRetryClock.Instant, batch: Int = 500) async throws -> AdoptionSplit {
        var adopted = AdoptionSplit()
        var batch = batch
        while store.clock.now < deadline {
            let split: AdoptionSplit
            do {
                split = try await store.adopt(batch: batch, grace: options.adoptGrace, maxAge: options.maxAge)
            } catch let error as DatabaseError where error.isTimeout || error.isConnectionLoss {
                if error.isTimeout, let smaller = StatementSizing.smaller(batch) {
                    logger.warning("the database's time limit cancelled an adoption; adopting fewer rows at a time",
                                   metadata: ["db.limit": "\(error.timeoutSetting ?? "-")", "run.rows": "\(batch)", "run.next_rows": "\(smaller)"])
                    batch = smaller
                    continue
                }
                line.databaseFailed(error, "the adoption of \(ServerLimit.rows(batch))")
                break
            }
            adopted += split
            if split.total < batch { break }
        }
        if adopted.total > 0 {
            logger.info("unreported failures adopted", metadata: [
                "run.adopted": "\(adopted.total)", "run.adopted_scheduled": "\(adopted.scheduled)",
                "run.adopted_expired": "\(adopted.expired)", "run.adopted_not_retryable": "\(adopted.notRetryable)",
                "run.adopted_exhausted": "\(adopted.exhausted)"])
        }
        return adopted
    }

    /// What `run --adopt-failures` would do now with every unreported failure, changing nothing
    /// (`run --dry-run --adopt-failures`).
    public func adoptionPreview() async throws -> AdoptionSplit {
        try await store.adoptionPreview(grace: options.adoptGrace, maxAge: options.maxAge)
    }

    /// How many unreported failures adoption would take now, counted up to `cap` (a run
    /// without `--adopt-failures` says so once). Nil when the count failed: it is a hint, never
    /// a reason for a run to fail.
    public func unreportedFailures(cap: Int = AdoptionSplit.hintCap) async -> Int? {
        try? await store.unreportedCount(grace: options.adoptGrace, cap: cap)
    }

    /// The due rows a run would claim now, without claiming them, and what it would do with
    /// each by its kind: send it, hold it for quiet hours (until when), close it as expired, close
    /// it for its country, or, with a fleet budget or a range's cap, hold it as the claim would
    /// now: the fleet's spend read from the table as the claim reads it (`spendSoFar`), the rows
    /// decided in order by `SpendGuard`, nothing reserved (no lock, no write).
    public func dryRun() async throws -> [DueMessage] {
        let now = store.clock.wallNow()
        let rows = try await store.dueList(limit: options.limit ?? options.batchSize)
        var guardian: SpendGuard? = nil
        if let claim = spendClaim {
            guardian = SpendGuard(policy: store.policy.spend, soFar: try await store.spendSoFar(window: claim.window), now: now)
        }
        var list: [DueMessage] = []
        for row in rows {
            let (kindName, kind) = store.policy.kinds.kind(row.kind)
            var due = DueMessage(logID: row.id, maskedPhone: PhoneNumber.masked(row.phoneNumber), direction: row.direction,
                                 attempt: row.retryCount + 1, maxRetries: row.maxRetries, dueAt: row.nextRetryAt,
                                 lastErrorCode: row.errorCode)
            due.kind = kindName
            switch MessageSafety.decide(kind: kind, maxAgeDefault: options.maxAge, age: row.ageSeconds, number: row.phoneNumber, now: now) {
            case .send: due.action = "send"
            case .expired(let why): due.action = "close as expired: \(why)"
            case .hold(let until, let zone): due.action = "hold for quiet hours until \(MessageSafety.describe(until, zone: zone))"
            }
            // The recipient's country (`resend_countries`).
            if due.action == "send" || due.action.hasPrefix("hold"),
               case .close(let reason, let why)? = SpendGuard.countryVerdict(row.phoneNumber, policy: store.policy.spend) {
                due.action = "close unsent as \(reason.rawValue): \(why)"
                due.spendReason = reason
            }
            // The fleet's budget and the ranges' caps, for the rows the run would send.
            if due.action == "send", var g = guardian {
                if case .hold(let reason, let until, let why) = g.decide(number: row.phoneNumber, segments: row.segments) {
                    due.action = "hold as \(reason.rawValue) until \(JSONText.timestamp(until)): \(why)"
                    due.spendReason = reason
                }
                guardian = g
            }
            list.append(due)
        }
        return list
    }

    /// Splits a claimed batch into rows closed unsent (too old, bad input, inbound, opted out),
    /// rows held for their recipient's quiet hours, and rows to send (`Triage`, pure), and logs why.
    private func triage(_ rows: [RetryStore.ClaimedRow]) -> (closed: [Outcome], sendable: [RetryStore.ClaimedRow]) {
        var closed: [Outcome] = []
        var sendable: [RetryStore.ClaimedRow] = []
        let now = store.clock.wallNow()
        for var row in rows {
            let id = "\(row.id)"
            switch Triage.verdict(row, policy: store.policy, maxAge: options.maxAge, now: now, sender: twilio.config.sender) {
            case .expired(let outcome, let kind, let why):
                logger.info("message too old to send; closed", metadata: ["sms.log_id": "\(id)", "sms.age_s": "\(Int(row.ageSeconds ?? 0))",
                                                                          "sms.kind": "\(kind)", "sms.why": "\(why)"])
                closed.append(outcome)
            case .unsendable(let outcome):
                logger.warning("row closed without sending", metadata: ["sms.log_id": "\(id)", "sms.reason": "\(outcome.reason?.rawValue ?? "-")"])
                closed.append(outcome)
            case .optedOut(let outcome, let event):
                logger.info("number opted out; row closed without sending", metadata: ["sms.log_id": "\(id)", "sms.opt_out": "\(event)"])
                closed.append(outcome)
            case .held(let outcome, let kind):
                logger.info("recipient's quiet hours; held", metadata: ["sms.log_id": "\(id)", "sms.kind": "\(kind)",
                                                                       "sms.note": "\(outcome.note ?? "")"])
                closed.append(outcome)
            case .spend(let outcome, let reason, let why):
                logger.info(reason == .countryNotAllowed ? "recipient's country not allowed for resends; closed" : "resend held by the spend guard",
                            metadata: ["sms.log_id": "\(id)", "sms.reason": "\(reason.rawValue)", "sms.why": "\(why)"])
                closed.append(outcome)
            case .send(let secondsLeft):
                if let previous = row.previousLease {
                    logger.warning("previous attempt's outcome unknown (its run stopped before recording it); asking Twilio before resending",
                                   metadata: ["sms.log_id": "\(id)", "sms.previous_lease": "\(previous)"])
                }
                row.secondsLeft = secondsLeft
                sendable.append(row)
            }
        }
        return (closed, sendable)
    }

    /// With a fleet-wide spend limit, how the claim keeps to it: the rows triage would send are
    /// the ones the spend guard decides (and reserves), looking back as far as the longest
    /// maximum age for the resends already made.
    var spendClaim: RetryStore.SpendClaim? {
        guard store.policy.spend.needsFleetCount else { return nil }
        let policy = store.policy, maxAge = options.maxAge, sender = twilio.config.sender, clock = store.clock
        let window = max(maxAge, policy.kinds.kinds.values.compactMap(\.maxAge).max() ?? 0) + 3600
        return RetryStore.SpendClaim(window: window) { row in
            if case .send = Triage.verdict(row, policy: policy, maxAge: maxAge, now: clock.wallNow(), sender: sender) { return true }
            return false
        }
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
    /// The row's kind of message (the default kind when it names none).
    public var kind = ""
    /// What a run would do now: `send`, `hold for quiet hours until …`, `close as expired: …`,
    /// `close unsent as country_not_allowed: …`, `hold as budget_held until …: …`,
    /// `hold as prefix_held until …: …`.
    public var action = "send"
    /// The spend guard's reason when it would close or hold the row.
    public var spendReason: SpendReason? = nil
}
