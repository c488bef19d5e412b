/// The run's loop as a value: what `RetryRunner.run` decides between its I/O, with no I/O, no
/// clock and no lock of its own. Events come in (a claim came back, a send finished, a batch was
/// recorded, the run was stopped, a row's turn came too late, the breaker opened), each with the
/// time it happened; actions go out (claim so many rows, send this row by this instant, record
/// this batch, finish). The driver (`RetryRunner.run`) performs the actions and feeds back what
/// became of them (postgres-nio's `ConnectionStateMachine`, tested alone in `RunLoopTests`).
///
/// The decisions, and their thresholds:
/// - **Claim pipelining**: the next batch is claimed while fewer than `lowWater` (half the
///   concurrency, at least 1) claimed rows are still waiting to start, so a sender that frees up
///   finds a row instead of waiting for the claim's round trip; one claim at a time.
/// - **How many**: `max(batchSize, concurrency)` (a smaller batch would leave senders idle),
///   no more than `--limit` leaves, no more than the largest claim that fitted the database's
///   time limits (a cancelled claim is made again smaller; later ones start from the size that
///   fitted), and at `--rate` no more than can start before the deadline, less those waiting.
/// - **When not to claim, for good**: at or after the deadline, once the run is stopped, once a
///   row was handed back because its turn would come after its send-by time, when the gate's
///   next turn (a 429 pause, the rate's spacing) comes at or after the deadline, when `--limit`
///   is reached, when a claim came back empty, when a claim failed.
/// - **Send-by**: a request may only start while the lease outlives it with a margin: the claim's
///   time + lease − the request's whole timeout − 5 s, and never after the deadline.
/// - **Record**: a batch is recorded once all its outcomes are in (closed rows at once, sent rows
///   as they finish); once the breaker has opened, the outage's failures are forgiven
///   (`Outcome.outageForgiven`: handed back uncounted).
/// - **Finish**: nothing sending, recording or being claimed, and nothing more to start.
struct RunLoop<Row: Sendable>: Sendable {
    typealias Instant = SMSRetryClock.Instant

    typealias Stop = RunStop

    struct Settings: Sendable {
        var concurrency: Int
        var batchSize: Int
        /// Rows to claim in all (`--limit`; nil: until nothing is due).
        var limit: Int?
        /// Requests per second for the run (`--rate`; nil: no limit).
        var rate: Double?
        /// Seconds a claim leases its rows for.
        var lease: Double
        /// A request's whole timeout (connect + transfer).
        var sendTimeout: Duration
        /// No claim at or after this, and no send starts after it.
        var deadline: Instant
    }

    enum Event: Sendable {
        /// The run begins (after adoption and the fleet's first count).
        case start
        /// A claim came back: `closed` the rows triage closed or held unsent, `sendable` the
        /// rows to send, `fitted` the size the claim was made at in the end (smaller than asked
        /// when the database's time limit cancelled it).
        case claimed(closed: [Outcome], sendable: [Row], fitted: Int)
        /// A claim failed for good (a lost connection that stayed away, or a time limit even
        /// one row did not fit): the driver stops the run (`Stop.database`).
        case claimFailed
        /// A send finished with this outcome (a hand-back included).
        case sent(batch: Int, Outcome)
        /// A batch's record returned (written, or not: the driver stops the run if not).
        case recorded
        /// Something stopped the run: credentials refused, the breaker opened, the database
        /// failed. Only the first counts.
        case stopped(Stop)
        /// A row was handed back because its turn at the gate (a 429 pause, the rate's spacing)
        /// would have come after its send-by time.
        case outOfTime
        /// The outage breaker opened (it stays open for the rest of the run).
        case breakerOpened
    }

    enum Action: Sendable {
        /// Claim up to `rows` rows, retrying a lost connection for at most `budget`.
        case claim(rows: Int, budget: Duration)
        /// Send `row` (of batch `batch`) if its turn comes by `by`; hand it back otherwise.
        case send(Row, batch: Int, by: Instant)
        /// Record this batch's outcomes.
        case record(batch: Int, [Outcome])
        /// Nothing is in flight and nothing more will start.
        case finish
    }

    let settings: Settings
    /// The next batch is claimed while fewer than this many rows wait to start.
    var lowWater: Int { max(1, settings.concurrency / 2) }

    private(set) var stop: Stop? = nil
    private(set) var outOfTime = false
    private(set) var breakerOpen = false
    /// Rows claimed so far (`--limit` counts them).
    private(set) var claimed = 0
    /// The largest claim that fitted the database's time limits.
    private(set) var claimCeiling = Int.max
    /// False once claiming ended for the run.
    private(set) var claiming = true
    private(set) var claimInFlight = false
    private(set) var sending = 0
    private(set) var recording = 0
    private(set) var finished = false
    private var asked = 0
    private var batches = 0
    private var open: [Int: (expected: Int, outcomes: [Outcome])] = [:]
    private var queue: [(batch: Int, row: Row, sendBy: Instant)] = []
    private var next = 0

    init(_ settings: Settings) { self.settings = settings }

    /// Rows claimed and not yet started.
    var waiting: Int { queue.count - next }

    /// Takes in `event`, which happened at `now`, when the gate's next turn is `earliestTurn`;
    /// returns what to do next, in order.
    mutating func handle(_ event: Event, now: Instant, earliestTurn: Instant? = nil) -> [Action] {
        guard !finished else { return [] }
        var actions: [Action] = []
        switch event {
        case .start:
            break
        case .claimed(let closed, let sendable, let fitted):
            claimInFlight = false
            if fitted < asked { claimCeiling = fitted }
            let count = closed.count + sendable.count
            if count == 0 {
                claiming = false
                break
            }
            claimed += count
            let batch = batches
            batches += 1
            open[batch] = (count, closed)
            let sendBy = min(now + .milliseconds(Int64(settings.lease * 1000)) - settings.sendTimeout - .seconds(5), settings.deadline)
            queue.removeFirst(next)
            next = 0
            queue += sendable.map { (batch, $0, sendBy) }
            actions += complete(batch)   // a batch of closed rows only
        case .claimFailed:
            claimInFlight = false
            claiming = false
        case .sent(let batch, let outcome):
            sending -= 1
            open[batch]?.outcomes.append(outcome)
            actions += complete(batch)
        case .recorded:
            recording -= 1
        case .stopped(let why):
            stop = stop ?? why
        case .outOfTime:
            outOfTime = true
        case .breakerOpened:
            breakerOpen = true
        }
        return actions + step(now: now, earliestTurn: earliestTurn ?? now)
    }

    /// Records `batch` when all its outcomes are in.
    private mutating func complete(_ batch: Int) -> [Action] {
        guard let entry = open[batch], entry.outcomes.count == entry.expected else { return [] }
        open[batch] = nil
        recording += 1
        // Once the breaker has opened, the outage's failures are not the messages' fault: they
        // go back uncounted (still marked uncertain where Twilio may have taken them).
        return [.record(batch: batch, breakerOpen ? entry.outcomes.map(\.outageForgiven) : entry.outcomes)]
    }

    /// Starts what can start: sends up to the concurrency, then a claim when few rows wait.
    private mutating func step(now: Instant, earliestTurn: Instant) -> [Action] {
        var actions: [Action] = []
        while sending < max(1, settings.concurrency), next < queue.count {
            let item = queue[next]
            next += 1
            sending += 1
            actions.append(.send(item.row, batch: item.batch, by: item.sendBy))
        }
        if claiming, !claimInFlight, waiting < lowWater {
            // No claim for rows that could not start before the deadline (a 429 pause or the
            // rate's spacing included): they would only be handed back.
            if now < settings.deadline, stop == nil, !outOfTime, earliestTurn < settings.deadline {
                let left = settings.limit.map { $0 - claimed } ?? .max
                var want = min(max(settings.batchSize, settings.concurrency), left, claimCeiling)
                // At --rate, no more rows than can start before the deadline, less those still
                // waiting to start.
                if let rate = settings.rate {
                    want = min(want, Int(rate * (settings.deadline - now).seconds) + 1 - waiting)
                }
                if left <= 0 { claiming = false }
                if want > 0 {
                    claimInFlight = true
                    asked = want
                    // A claim is safe to repeat after a lost connection: one that did commit
                    // leaves its rows leased to this run until the lease ends, and they are then
                    // treated as a dead run's (asked about first).
                    actions.append(.claim(rows: want, budget: min(.seconds(15), settings.deadline - now)))
                }
            } else {
                claiming = false
            }
        }
        if sending + recording == 0, !claimInFlight {
            finished = true
            actions.append(.finish)
        }
        return actions
    }
}

/// Why a run stopped sending.
enum RunStop: Sendable, Equatable {
    /// Twilio refused the credentials: exit 2.
    case configuration(String)
    /// The breaker opened, or no request reached Twilio: exit 4.
    case outage(String)
    /// The database failed a statement that smaller pieces and retries could not save: exit 3.
    case database(String)

    var reason: String {
        switch self { case .configuration(let why), .outage(let why), .database(let why): why }
    }
}

extension RunStop {
    /// At the end of a run: when not one of its requests reached Twilio (a wrong URL, DNS, a
    /// firewall, a TLS problem), that is why it stopped, whatever else it met (exit 4).
    static func unreachable(requests: Int, notReached: Int, url: String, last: String) -> RunStop? {
        guard requests > 0, notReached == requests else { return nil }
        return .outage("Twilio unreachable: none of the \(requests) requests to \(url) reached it (last: \(last)); rows handed back without using an attempt")
    }
}
