import Synchronization

/// The one gate every sender of a run passes before a request: it spaces requests at the
/// configured rate (`--rate`, a token bucket of one token refilled every 1/rate seconds, so sends
/// are evenly spaced and no burst exceeds the account's or sender's throughput) and holds all
/// senders while Twilio is throttling (429 / 20429): for `Retry-After` when given, else for a
/// backoff that doubles from 1 s up to `maxBackoff` and resets on the next accepted request.
/// Its time is `clock`'s: tests move a manual clock instead of sleeping.
final class SendGate: Sendable {
    private struct State {
        var nextSlot: SMSRetryClock.Instant
        var pausedUntil: SMSRetryClock.Instant
        var backoff: Duration
        var interval: Duration?
        /// The last turn a sender took (the spacing of a new rate counts from it).
        var lastTurn: SMSRetryClock.Instant?
        /// Bumped when the rate changes or a pause begins: turns handed out before are void,
        /// and their senders ask again when they wake (so a lower share or a 429 takes effect
        /// at once, not after the turns already given out).
        var generation = 0
    }
    private let maxBackoff: Duration
    private let state: Mutex<State>
    let clock: SMSRetryClock

    /// `rate`: requests per second for the whole run (nil: no limit).
    init(rate: Double?, maxBackoff: Duration, clock: SMSRetryClock = .system) {
        self.maxBackoff = maxBackoff
        self.clock = clock
        let now = clock.now
        state = Mutex(State(nextSlot: now, pausedUntil: now, backoff: .seconds(1), interval: Self.interval(rate)))
    }

    private static func interval(_ rate: Double?) -> Duration? { rate.map { .nanoseconds(Int64(1e9 / max($0, 0.001))) } }

    /// A new rate from now on (this run's share of a fleet-wide one).
    func setRate(_ rate: Double?) {
        state.withLock { s in
            let interval = Self.interval(rate)
            guard interval != s.interval else { return }
            s.interval = interval
            let now = clock.now
            s.nextSlot = max(now, s.lastTurn.map { $0 + (interval ?? .zero) } ?? now)
            s.generation += 1
        }
    }

    /// No sender starts before `instant`.
    func hold(until instant: SMSRetryClock.Instant) {
        state.withLock { s in
            s.pausedUntil = max(s.pausedUntil, instant)
            s.generation += 1
        }
    }

    /// Waits for this sender's turn. Returns false, without taking a turn, when the turn would
    /// come after `deadline` (the caller hands its row back).
    func admit(before deadline: SMSRetryClock.Instant) async -> Bool {
        while true {
            let given: (turn: SMSRetryClock.Instant, generation: Int)? = state.withLock { s in
                let turn = max(clock.now, s.pausedUntil, s.nextSlot)
                guard turn <= deadline else { return nil }
                if let interval = s.interval { s.nextSlot = turn + interval }
                return (turn, s.generation)
            }
            guard let given else { return false }
            if given.turn > clock.now { try? await clock.sleep(until: given.turn) }
            let valid = state.withLock { s in
                guard s.generation == given.generation else { return false }
                s.lastTurn = given.turn
                return true
            }
            if valid { return true }
        }
    }

    /// When the next sender could start at the earliest (now, or the end of a pause or of the
    /// rate's spacing).
    func earliestTurn() -> SMSRetryClock.Instant {
        state.withLock { max(clock.now, $0.pausedUntil, $0.nextSlot) }
    }

    /// Twilio said 429: every sender pauses. Returns how long the pause still lasts (seconds) and
    /// whether this answer lengthened it: answers to requests sent before the current pause began
    /// do not lengthen it again.
    func throttled(retryAfter: Double?) -> (seconds: Double, extended: Bool) {
        state.withLock { s in
            let now = clock.now
            var extended = false
            if let retryAfter {
                let until = now + .milliseconds(Int64(retryAfter * 1000))
                extended = until > s.pausedUntil
                s.pausedUntil = max(s.pausedUntil, until)
            } else if s.pausedUntil <= now {
                s.pausedUntil = now + s.backoff
                s.backoff = min(s.backoff * 2, maxBackoff)
                extended = true
            }
            if extended { s.generation += 1 }
            return ((max(s.pausedUntil, now) - now).seconds, extended)
        }
    }

    /// Twilio accepted a request: the next throttling starts its backoff from 1 s again.
    func accepted() { state.withLock { $0.backoff = .seconds(1) } }
}

/// Watches a run's last `window` attempts. When `threshold` of them failed for reasons that are
/// not the message's (HTTP 5xx, timeouts, refused or dropped connections), Twilio or the path to
/// it is down: the breaker opens, and the run stops sending instead of spending every message's
/// retry budget on an outage. It stays open for the rest of the run; the next run (cron) is the
/// probe that finds Twilio back.
final class CircuitBreaker: Sendable {
    private struct State {
        var recent: [Bool] = []
        var failures = 0
        var open = false
    }
    let window: Int
    let threshold: Int
    private let state = Mutex(State())

    init(window: Int, threshold: Int) {
        self.window = window
        self.threshold = threshold
    }

    var isOpen: Bool { state.withLock { $0.open } }

    /// Adds one attempt; returns true when this one opened the breaker.
    func record(providerFailure: Bool) -> Bool {
        state.withLock { s in
            s.recent.append(providerFailure)
            if providerFailure { s.failures += 1 }
            if s.recent.count > window, s.recent.removeFirst() { s.failures -= 1 }
            guard !s.open, s.failures >= threshold else { return false }
            s.open = true
            return true
        }
    }

    /// "11 of the last 20 attempts"
    var tally: String { state.withLock { "\($0.failures) of the last \($0.recent.count) attempts" } }
}
