import Foundation
import Logging
import Synchronization

/// Sending one claimed row, and what the run's senders learn from each other while they send:
/// the checks right before a request (a number that unsubscribed this run, a stopped sender or
/// range, the gates, an unknown-fate send asked about first, the router's word), the request
/// and its 429s, and what the answer tells the run (the breaker, a sender or range stopped,
/// credentials refused). A row it does not send it hands back (`Outcome.release`): the run is
/// stopping, or the row's turn would come after its send-by time (`outOfTime`, which ends the
/// run's claiming), or a 429 pause outlasts it.
final class MessageSender: Sendable {
    let store: RetryStore
    let twilio: TwilioClient
    let options: RunOptions
    let logger: Logger
    let runID: String
    /// The run's stop: read before each request, set by credentials refused, the breaker, the
    /// database.
    let line: StopLine
    let gate: SendGate
    /// One gate per sender when `--sender-rate` is set.
    private let senderGates = Mutex<[String: SendGate]>([:])
    /// How many runs share the rates now (1 until counted).
    private let runsSharing = Atomic<Int>(1)
    /// No send before this (the fleet rate's first count of the others).
    private let firstSend = Mutex<SMSRetryClock.Instant?>(nil)
    let breaker: CircuitBreaker
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
    /// A row was handed back because its turn would have come after its send-by time.
    private let outOfTimeFlag = Atomic<Bool>(false)
    /// The router's word on each row, right before its send.
    private let routerWords: RouterWordCheck

    init(store: RetryStore, twilio: TwilioClient, options: RunOptions, logger: Logger, runID: String, line: StopLine) {
        self.store = store
        self.twilio = twilio
        self.options = options
        self.logger = logger
        self.runID = runID
        self.line = line
        gate = SendGate(rate: options.rate, maxBackoff: .milliseconds(Int64(options.throttleDelay * 1000)), clock: store.clock)
        breaker = CircuitBreaker(window: options.breakerWindow, threshold: options.breakerThreshold)
        routerWords = RouterWordCheck(store: store)
    }

    /// A row was handed back because its turn would have come after its send-by time.
    var outOfTime: Bool { outOfTimeFlag.load(ordering: .relaxed) }

    /// No sender starts before `start` (the fleet rate's first count of the others).
    func holdFirstSend(until start: SMSRetryClock.Instant) {
        firstSend.withLock { $0 = start }
        gate.hold(until: start)
    }

    /// Requests made, and how many of them never reached Twilio (the last such failure).
    var reach: (requests: Int, unreachable: Int, last: String) {
        (requests.load(ordering: .relaxed), unreachable.load(ordering: .relaxed), lastUnreachable.withLock { $0 })
    }

    /// What the senders learned, into the run's summary: 429s, stopped ranges and senders,
    /// requests that never reached Twilio.
    func report(into summary: inout RunSummary) {
        summary.throttled = throttles.load(ordering: .relaxed)
        summary.stoppedRanges = pumpingRanges.withLock { state in state.stopped.sorted().map { "\($0): \(state.hits[$0] ?? 0) pumping blocks" } }
        summary.unreachable = unreachable.load(ordering: .relaxed)
        summary.blockedSenders = blockedSenders.withLock { $0 }.map { key, why in
            let parts = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            let shown = OutboundMessage(to: "", body: "", from: parts[0].isEmpty ? nil : parts[0],
                                        messagingServiceSID: parts[1].isEmpty ? nil : parts[1]).senderForHistory ?? "-"
            return "\(shown): \(why)"
        }.sorted()
    }

    /// The resend of `row` (`Triage.message`).
    func message(for row: RetryStore.ClaimedRow) -> OutboundMessage {
        Triage.message(for: row, maxAge: options.maxAge, sender: twilio.config.sender)
    }

    /// One send and what it means for the row.
    func attempt(_ row: RetryStore.ClaimedRow, sendBy: SMSRetryClock.Instant) async -> Outcome {
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
                if error.unauthorized { line.halt(.configuration("Twilio refused the credentials (\(error))")) }
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
            guard store.clock.now < sendBy else { return release }
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
                line.databaseFailed(error, "the check of the router's word")
            }
            return Outcome.release(id: row.id, delay: options.throttleDelay, leaseUntil: row.leaseUntil)
        }
        var result: SendResult
        var started: Date
        // Throttled: every sender pauses, then this message goes again; nothing is counted.
        while true {
            started = store.clock.wallNow()
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
                                                     now: store.clock.wallNow(), handBack: options.throttleDelay)
                outcome.delay = max(pause.seconds, 1)
                return outcome
            }
        }
        let (outcome, signals) = AnswerOutcome.map(result, row: row, message: message, policy: store.policy, started: started,
                                                   now: store.clock.wallNow(), handBack: options.throttleDelay)
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
        if let why = signals.configurationError { line.halt(.configuration(why)) }
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
    func applyShare(runs: Int) {
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
            let gate = SendGate(rate: FleetRate.share(senderRate, runs: runs), maxBackoff: .seconds(30), clock: store.clock)
            if let start = firstSend.withLock({ $0 }) { gate.hold(until: start) }
            gates[key] = gate
            return gate
        }
    }

    /// Waits for this sender's turn at the gates (the run's, and the sender's with
    /// `--sender-rate`); false (the row goes back) when the run is stopping or the turn would
    /// come after `sendBy`, which also ends claiming.
    private func admit(before sendBy: SMSRetryClock.Instant, sender: String? = nil) async -> Bool {
        guard !line.stopped else { return false }
        if let sender, let senderGate = senderGate(sender), !(await senderGate.admit(before: sendBy)) {
            outOfTimeFlag.store(true, ordering: .relaxed)
            return false
        }
        guard await gate.admit(before: sendBy) else {
            outOfTimeFlag.store(true, ordering: .relaxed)
            return false
        }
        return !line.stopped
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
        line.halt(.outage(why))
    }
}
