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
    /// Why the run stopped sending, once something made it stop.
    private let stop = Mutex<Stop?>(nil)
    private let gate: SendGate
    /// One gate per sender when `--sender-rate` is set.
    private let senderGates = Mutex<[String: SendGate]>([:])
    /// How many runs share the rates now (1 until counted).
    private let runsSharing = Atomic<Int>(1)
    /// No send before this (the fleet rate's first count of the others).
    private let firstSend = Mutex<ContinuousClock.Instant?>(nil)
    private let breaker: CircuitBreaker
    /// Numbers Twilio answered 21610 for during this run: their other rows are not sent.
    private let unsubscribed = Mutex<Set<String>>([])
    /// Senders Twilio said cannot send (a sender-fault code), with why: their rows wait.
    private let blockedSenders = Mutex<[String: String]>([:])
    /// Pumping answers (30450) per range this run, and the ranges it stopped: their rows wait.
    private let pumpingRanges = Mutex<(hits: [String: Int], stopped: Set<String>)>(([:], []))
    private let throttles = Atomic<Int>(0)
    /// Requests to Twilio (creates and lookups), and how many of them never reached it.
    private let requests = Atomic<Int>(0)
    private let unreachable = Atomic<Int>(0)
    private let lastUnreachable = Mutex<String>("")
    /// A row was handed back because its turn would have come after the deadline: claim no more.
    private let outOfTime = Atomic<Bool>(false)
    /// The router's word on each row, right before its send.
    private let routerWords: RouterWordCheck
    /// The database error that ended the run (exit 3) and the work it stopped ("the record of
    /// 100 rows"): a lost connection that stayed away, or a DBA's time limit a smaller statement
    /// did not fit either.
    private let databaseFailure = Mutex<(error: DatabaseError, what: String)?>(nil)

    typealias Stop = RunStop

    public init(store: RetryStore, twilio: TwilioClient, options: RunOptions = RunOptions(),
                logger: Logger = Logger(label: "sms-retry.run"), runID: String? = nil) {
        self.store = store
        self.twilio = twilio
        self.options = options
        self.logger = logger
        self.runID = runID ?? "\(RunIdentity.hostname()):\(getpid()):\(UUID().uuidString.prefix(8))"
        gate = SendGate(rate: options.rate, maxBackoff: .milliseconds(Int64(options.throttleDelay * 1000)))
        breaker = CircuitBreaker(window: options.breakerWindow, threshold: options.breakerThreshold)
        routerWords = RouterWordCheck(store: store)
    }

    private var stopped: Bool { stop.withLock { $0 != nil } }

    private func halt(_ why: Stop) { stop.withLock { $0 = $0 ?? why } }

    /// The database refused `what` for good: nothing more is claimed or started, the rows in
    /// flight are finished and recorded as far as the database lets them, and the run exits 3.
    private func databaseFailed(_ error: DatabaseError, _ what: String) {
        databaseFailure.withLock { $0 = $0 ?? (error, what) }
        halt(.database("\(error)"))
    }

    public func run() async throws -> RunSummary {
        let clock = ContinuousClock()
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
            if let runs = try? await fleet.present() { applyShare(runs: runs) }
            let start = ContinuousClock.now + FleetRate.joining
            firstSend.withLock { $0 = start }
            gate.hold(until: start)
            follower = Task { await fleet.follow { [weak self] runs in self?.applyShare(runs: runs) } }
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
            case recorded([Outcome], Result<Recorded, any Error>)
        }

        // The loop's decisions are `RunLoop`'s; this only performs its actions and feeds back
        // what became of them, with what the senders saw meanwhile (a stop, a row out of time,
        // the breaker open) first, as the loop would have read it from them.
        try await withThrowingTaskGroup(of: Done.self) { group in
            func perform(_ actions: [RunLoop<RetryStore.ClaimedRow>.Action]) {
                for action in actions {
                    switch action {
                    case .send(let row, let batch, let sendBy):
                        group.addTask { .sent(batch: batch, await self.attempt(row, sendBy: sendBy)) }
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
                            do { return .recorded(outcomes, .success(try await self.written(outcomes))) }
                            catch { return .recorded(outcomes, .failure(error)) }
                        }
                    case .finish:
                        break
                    }
                }
            }
            func feed(_ event: RunLoop<RetryStore.ClaimedRow>.Event) {
                var seen: [RunLoop<RetryStore.ClaimedRow>.Event] = []
                if loop.stop == nil, let why = stop.withLock({ $0 }) { seen.append(.stopped(why)) }
                if !loop.outOfTime, outOfTime.load(ordering: .relaxed) { seen.append(.outOfTime) }
                if !loop.breakerOpen, breaker.isOpen { seen.append(.breakerOpened) }
                for event in seen + [event] { perform(loop.handle(event, now: clock.now, earliestTurn: gate.earliestTurn())) }
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
                    databaseFailed(error, error.isTimeout ? "the claim of 1 row" : "a claim")
                    feed(.claimFailed)
                case .claimed(.failure(let error)):
                    throw error
                case .claimed(.success(let (rows, size))):
                    let (closed, sendable) = triage(rows)
                    feed(.claimed(closed: closed, sendable: sendable, fitted: size))
                case .recorded(let outcomes, let written):
                    let recorded = try written.get()
                    tally(outcomes, recorded, into: &summary)
                    if let failure = recorded.failure {
                        databaseFailed(failure, "the record of \(ServerLimit.rows(recorded.failedPiece))")
                    }
                    feed(.recorded)
                }
            }
        }
        let made = requests.load(ordering: .relaxed)
        if made > 0 && unreachable.load(ordering: .relaxed) == made {
            // Not one request got to Twilio: a wrong URL, DNS, a firewall, a TLS problem.
            let why = "Twilio unreachable: none of the \(made) requests to \(twilio.messagesURL) reached it (last: \(lastUnreachable.withLock { $0 })); rows handed back without using an attempt"
            stop.withLock { $0 = .outage(why) }
        }
        if let stop = stop.withLock({ $0 }) {
            summary.stoppedBecause = stop.reason
            switch stop {
            case .configuration: summary.configurationError = true
            case .outage: summary.providerOutage = true
            case .database: break
            }
        }
        if let failure = databaseFailure.withLock({ $0 }) {
            summary.databaseError = failure.error
            summary.databaseLimit = await ServerLimit.read(for: failure.error, on: store.database)?.line(failure.what)
        }
        summary.throttled = throttles.load(ordering: .relaxed)
        summary.stoppedRanges = pumpingRanges.withLock { state in state.stopped.sorted().map { "\($0): \(state.hits[$0] ?? 0) pumping blocks" } }
        summary.unreachable = unreachable.load(ordering: .relaxed)
        summary.blockedSenders = blockedSenders.withLock { $0 }.map { key, why in
            let parts = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            let shown = OutboundMessage(to: "", body: "", from: parts[0].isEmpty ? nil : parts[0],
                                        messagingServiceSID: parts[1].isEmpty ? nil : parts[1]).senderForHistory ?? "-"
            return "\(shown): \(why)"
        }.sorted()
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
    func adopt(until deadline: ContinuousClock.Instant, batch: Int = 500) async throws -> AdoptionSplit {
        var adopted = AdoptionSplit()
        var batch = batch
        while ContinuousClock.now < deadline {
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
                databaseFailed(error, "the adoption of \(ServerLimit.rows(batch))")
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
    private func written(_ outcomes: [Outcome]) async throws -> Recorded {
        // Reconnecting when the server went away: these rows were sent, and an outcome lost here
        // would have them resent once their lease ends. Rerunning the statement is safe: a row
        // whose outcome did commit no longer carries this lease and is not written twice. A
        // record a DBA's time limit cancelled is made again in pieces (`recordInPieces`). Once the
        // run has met a database failure, a lost connection is waited for 2 s, not 15.
        let budget: Duration = databaseFailure.withLock { $0 == nil } ? .seconds(15) : .seconds(2)
        let pieces = await store.recordInPieces(outcomes, budget: budget, logger: logger)
        var recorded = Recorded(written: Set(pieces.written.map(\.id)), unrecorded: Set(pieces.unrecorded.map(\.id)),
                                failure: pieces.failure, failedPiece: pieces.failedPiece)
        let unwritten = outcomes.map(\.id).filter { !recorded.written.contains($0) && !recorded.unrecorded.contains($0) }
        if !unwritten.isEmpty { recorded.routerWords = (try? await store.routerWord(ids: unwritten)) ?? [:] }
        return recorded
    }

    /// Counts a recorded batch into the run's summary.
    private func tally(_ outcomes: [Outcome], _ recorded: Recorded, into summary: inout RunSummary) {
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

    /// The due rows a run would claim now, without claiming them, and what it would do with
    /// each by its kind: send it, hold it for quiet hours (until when), close it as expired, close
    /// it for its country, or, with a fleet budget or a range's cap, hold it as the claim would
    /// now: the fleet's spend read from the table as the claim reads it (`spendSoFar`), the rows
    /// decided in order by `SpendGuard`, nothing reserved (no lock, no write).
    public func dryRun() async throws -> [DueMessage] {
        let now = store.clock.now()
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
        let now = store.clock.now()
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
            if case .send = Triage.verdict(row, policy: policy, maxAge: maxAge, now: clock.now(), sender: sender) { return true }
            return false
        }
    }

    /// The resend of `row` (`Triage.message`).
    func message(for row: RetryStore.ClaimedRow) -> OutboundMessage {
        Triage.message(for: row, maxAge: options.maxAge, sender: twilio.config.sender)
    }

    /// One send and what it means for the row.
    private func attempt(_ row: RetryStore.ClaimedRow, sendBy: ContinuousClock.Instant) async -> Outcome {
        let release = Outcome.release(id: row.id, delay: 0, leaseUntil: row.leaseUntil)
        if unsubscribed.withLock({ $0.contains(row.phoneNumber) }) { return Triage.optedOut(row, event: "21610") }
        let message = message(for: row)
        if let why = blockedSenders.withLock({ $0[Self.senderKey(message)] }) {
            return Outcome.senderBlocked(row, message: message, why: why, code: nil)
        }
        let range = RecipientCountries.range(row.phoneNumber, digits: store.policy.spend.prefixDigits)
        if let range, pumpingRanges.withLock({ $0.stopped.contains(range) }) {
            return Outcome.pumpingHeld(row, hold: store.policy.spend.pumpingHold,
                                       why: "range \(range) stopped for the run after \(store.policy.spend.pumpingStopAfter) pumping blocks (30450)", code: nil)
        }
        guard await admit(before: sendBy, sender: Self.senderKey(message)) else { return release }
        let attemptsMade = row.retryCount + 1
        // An earlier send may have created a message we were never told about: ask Twilio first.
        // Until it has answered, the doubt stays on the row (a hand-back keeps `retry.uncertain`).
        if row.doubt != nil {
            requests.add(1, ordering: .relaxed)
            switch await DoubtLookup.resolve(row, twilio: twilio, store: store, logger: logger) {
            case .found(let outcome):
                providerAnswered()
                return outcome
            case .notFound:
                providerAnswered()
            case .failed(let error):
                if error.unauthorized { halt(.configuration("Twilio refused the credentials (\(error))")) }
                else if error.inconclusive { providerAnswered() }   // Twilio is up; the row waits
                else { providerFailed("\(error)") }
                if error.notReached { noteUnreachable(error.description) }
                var outcome = Outcome.release(id: row.id, delay: options.throttleDelay, leaseUntil: row.leaseUntil)
                outcome.providerFailure = !error.unauthorized && !error.inconclusive
                return outcome
            }
        }
        // The router's word, right before the send: a row it confirmed or deleted since the claim
        // is not sent (the record then ends a confirmed row's pending retry).
        switch await routerWords.word(for: row.id) {
        case .success(nil):
            // The check waited out a lost connection: the lease must still cover the request.
            guard ContinuousClock.now < sendBy else { return release }
        case .success(let word?):
            var outcome = release
            outcome.routerWord = word
            logger.info(word == .confirmed ? "the router confirmed this row after the claim; not sent" : "the router deleted this row; not sent",
                        metadata: ["sms.log_id": "\(row.id)"])
            return outcome
        case .failure(let error):
            logger.warning("could not read the router's word on the row; not sent now",
                           metadata: ["sms.log_id": "\(row.id)", "db.error": "\(error)"])
            // The read already waited out a lost connection for 15 s: the rows behind it would
            // each wait as long. Stop starting sends; the run finishes and exits 3.
            if let error = error as? DatabaseError, error.isConnectionLoss || error.isTimeout {
                databaseFailed(error, "the check of the router's word")
            }
            return Outcome.release(id: row.id, delay: options.throttleDelay, leaseUntil: row.leaseUntil)
        }
        var result: SendResult
        var started: Date
        // Throttled: every sender pauses, then this message goes again; nothing is counted.
        while true {
            started = Date()
            requests.add(1, ordering: .relaxed)
            result = await twilio.send(message)
            guard case .throttled(let retryAfter, _, _) = result else { break }
            throttles.add(1, ordering: .relaxed)
            let pause = gate.throttled(retryAfter: retryAfter)
            if pause.extended {
                logger.warning("Twilio is throttling (429); all senders pause",
                               metadata: ["run.pause_s": "\(String(format: "%.1f", pause.seconds))",
                                          "run.retry_after": "\(retryAfter.map { "\($0)" } ?? "-")"])
            }
            // A pause longer than this row's time left: back to the table, due when it ends.
            guard await admit(before: sendBy) else {
                var (outcome, _) = AnswerOutcome.map(result, row: row, message: message, policy: store.policy, started: started,
                                                     now: store.clock.now(), handBack: options.throttleDelay)
                outcome.delay = max(pause.seconds, 1)
                return outcome
            }
        }
        let (outcome, signals) = AnswerOutcome.map(result, row: row, message: message, policy: store.policy, started: started,
                                                   now: store.clock.now(), handBack: options.throttleDelay)
        apply(signals, row: row, message: message)
        logger.debug("attempt", metadata: ["sms.log_id": "\(row.id)", "sms.to": "\(PhoneNumber.masked(row.phoneNumber))",
                                           "sms.attempt": "\(attemptsMade)", "sms.outcome": "\(outcome.outcome?.rawValue ?? outcome.kind.rawValue)",
                                           "sms.error_code": "\(outcome.errorCode.map(String.init) ?? "-")"])
        return outcome
    }

    /// What an answer tells the run, applied: the breaker, a stopped sender, an unsubscribed
    /// number, credentials refused.
    private func apply(_ signals: AnswerOutcome.Signals, row: RetryStore.ClaimedRow, message: OutboundMessage) {
        if signals.accepted { gate.accepted() }
        if signals.providerUp == true { providerAnswered() }
        if let why = signals.providerFailure { providerFailed(why) }
        if let what = signals.unreachable { noteUnreachable(what) }
        if let why = signals.configurationError { halt(.configuration(why)) }
        if signals.unsubscribed { unsubscribed.withLock { _ = $0.insert(row.phoneNumber) } }
        if signals.pumping, let range = RecipientCountries.range(row.phoneNumber, digits: store.policy.spend.prefixDigits) {
            let stopAfter = store.policy.spend.pumpingStopAfter
            let stoppedNow = pumpingRanges.withLock { state -> Bool in
                state.hits[range, default: 0] += 1
                guard state.hits[range]! >= stopAfter, !state.stopped.contains(range) else { return false }
                state.stopped.insert(range)
                return true
            }
            if stoppedNow {
                logger.error("range stopped for this run: Twilio's SMS pumping protection blocked several resends to it",
                             metadata: ["sms.range": "\(range)", "sms.blocks": "\(stopAfter)"])
            }
        }
        if let why = signals.blockSender {
            blockedSenders.withLock { $0[Self.senderKey(message)] = $0[Self.senderKey(message)] ?? why }
            logger.error("sender stopped for this run", metadata: ["sms.sender": "\(message.senderForHistory ?? "-")", "sms.why": "\(why)"])
        }
    }

    /// One key per sender (a From, a Messaging Service, or both).
    static func senderKey(_ m: OutboundMessage) -> String { "\(m.from ?? "")|\(m.messagingServiceSID ?? "")" }

    /// This run's share of the fleet-wide rates, `runs` runs sharing them.
    private func applyShare(runs: Int) {
        if runsSharing.exchange(runs, ordering: .relaxed) != runs {
            logger.info("runs sharing the rate", metadata: ["run.sharing": "\(runs)"])
        }
        if let rate = options.rate { gate.setRate(FleetRate.share(rate, runs: runs)) }
        if let senderRate = options.senderRate {
            senderGates.withLock { gates in for gate in gates.values { gate.setRate(FleetRate.share(senderRate, runs: runs)) } }
        }
    }

    /// The gate of one sender (`--sender-rate`), made at its first message.
    private func senderGate(_ key: String) -> SendGate? {
        guard let senderRate = options.senderRate else { return nil }
        let runs = runsSharing.load(ordering: .relaxed)
        return senderGates.withLock { gates in
            if let gate = gates[key] { return gate }
            let gate = SendGate(rate: FleetRate.share(senderRate, runs: runs), maxBackoff: .seconds(30))
            if let start = firstSend.withLock({ $0 }) { gate.hold(until: start) }
            gates[key] = gate
            return gate
        }
    }

    /// Waits for this sender's turn at the gates (the run's, and the sender's with
    /// `--sender-rate`); false (the row goes back) when the run is stopping or the turn would
    /// come after `sendBy`, which also ends claiming.
    private func admit(before sendBy: ContinuousClock.Instant, sender: String? = nil) async -> Bool {
        guard !stopped else { return false }
        if let sender, let senderGate = senderGate(sender), !(await senderGate.admit(before: sendBy)) {
            outOfTime.store(true, ordering: .relaxed)
            return false
        }
        guard await gate.admit(before: sendBy) else {
            outOfTime.store(true, ordering: .relaxed)
            return false
        }
        return !stopped
    }

    private func noteUnreachable(_ what: String) {
        unreachable.add(1, ordering: .relaxed)
        lastUnreachable.withLock { $0 = what }
    }

    /// An answer that shows Twilio is up (accepted, or refused for the message's own reasons).
    private func providerAnswered() { _ = breaker.record(providerFailure: false) }

    /// A failure that is not the message's: counts toward the breaker, which may open here.
    private func providerFailed(_ what: String) {
        guard breaker.record(providerFailure: true) else { return }
        let why = "Twilio looks down: \(breaker.tally) failed for reasons not the messages' (last: \(what)); stopped sending, unsent rows handed back without using an attempt"
        logger.error("outage breaker opened", metadata: ["run.id": "\(runID)", "run.breaker": "\(breaker.tally)"])
        halt(.outage(why))
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
