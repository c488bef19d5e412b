import Synchronization
import Testing
@testable import SMSRetry

/// How many of a test's tasks have finished.
private final class Finished: Sendable {
    private let count = Atomic<Int>(0)
    func add() { count.add(1, ordering: .sequentiallyConsistent) }
    var value: Int { count.load(ordering: .sequentiallyConsistent) }
}

/// Waits (yielding, never sleeping) until each of `count` tasks has finished or sleeps on `clock`.
private func settle(_ clock: SMSRetryClock, _ finished: Finished, count: Int) async {
    while clock.sleepers.count + finished.value < count { await Task.yield() }
}

/// Moves the test clock to `target` (nil: until every task finished), one sleeper's wake at a
/// time, letting the tasks it woke go on (to their end or their next sleep) before the next step.
private func advance(_ clock: SMSRetryClock, to target: SMSRetryClock.Instant?, _ finished: Finished, count: Int) async {
    while true {
        await settle(clock, finished, count: count)
        let next = clock.sleepers.nextWake
        if let target, next.map({ $0 > target }) ?? true {
            clock.advance(to: target)
            await settle(clock, finished, count: count)
            return
        }
        guard let next else { return }
        clock.advance(to: next)
    }
}

@Suite struct FlowControlTests {
    @Test func theBreakerOpensAtItsThresholdWithinTheWindowOnly() {
        let breaker = CircuitBreaker(window: 20, threshold: 11)
        // Failures spread thinner than 11 in any 20 never open it.
        for i in 0..<200 { #expect(breaker.record(providerFailure: i % 2 == 0) == false) }
        #expect(!breaker.isOpen)
        // Ten more in a row make 15 of the last 20: it opens once, on the 11th of the window.
        var opened = 0
        for _ in 0..<10 where breaker.record(providerFailure: true) { opened += 1 }
        #expect(opened == 1 && breaker.isOpen)
        #expect(breaker.tally.hasSuffix("of the last 20 attempts"))
    }

    @Test func successesKeepTheBreakerShut() {
        let breaker = CircuitBreaker(window: 20, threshold: 11)
        for _ in 0..<10 { _ = breaker.record(providerFailure: true) }
        for _ in 0..<20 { _ = breaker.record(providerFailure: false) }
        for _ in 0..<10 { _ = breaker.record(providerFailure: true) }
        #expect(!breaker.isOpen, "10 failures in the window are not most of it")
        _ = breaker.record(providerFailure: true)
        #expect(breaker.isOpen)
    }

    @Test func aThrottlePausesEverySenderAndBacksOff() async {
        let clock = SMSRetryClock.manual()
        let gate = SendGate(rate: nil, maxBackoff: .seconds(4), clock: clock)
        let first = gate.throttled(retryAfter: nil)
        #expect(first.extended && first.seconds > 0.9 && first.seconds <= 1)
        // Answers to requests already in flight do not stack up the pause.
        let echo = gate.throttled(retryAfter: nil)
        #expect(!echo.extended && echo.seconds <= 1)
        // Retry-After wins when longer; a shorter one does not cut the pause.
        #expect(gate.throttled(retryAfter: 3).extended)
        #expect(!gate.throttled(retryAfter: 0.5).extended)
        // A sender whose row must be sent before the pause ends is turned away at once.
        #expect(await gate.admit(before: clock.now + .milliseconds(100)) == false)
    }

    @Test func theRateSpacesTurns() async {
        let clock = SMSRetryClock.manual()
        let gate = SendGate(rate: 50, maxBackoff: .seconds(30), clock: clock)
        let start = clock.now
        // The test clock moves to each turn as soon as the sender waits for it.
        let mover = Task {
            while !Task.isCancelled {
                if let next = clock.sleepers.nextWake { clock.advance(to: next) }
                await Task.yield()
            }
        }
        defer { mover.cancel() }
        for _ in 0..<6 { #expect(await gate.admit(before: start + .seconds(10))) }
        // Six turns at 50/s: the sixth comes 5 × 20 ms after the first, at the earliest.
        #expect(clock.now - start >= .milliseconds(100))
        // A turn beyond the deadline is refused without being taken.
        #expect(await gate.admit(before: clock.now) == false)
    }

    /// When each of `count` senders, all waiting at once, got its turn, and when `change` was
    /// applied to the gate (20 ms after they started waiting), in seconds from the start, on the
    /// gate's test clock.
    private func turns(_ gate: SendGate, count: Int, change: @Sendable () -> Void) async -> (turns: [Double], change: Double) {
        let clock = gate.clock
        let start = clock.now
        let finished = Finished()
        return await withTaskGroup(of: Double.self) { group in
            for _ in 0..<count {
                group.addTask {
                    _ = await gate.admit(before: start + .seconds(10))
                    defer { finished.add() }
                    return (clock.now - start).seconds
                }
            }
            await advance(clock, to: start + .milliseconds(20), finished, count: count)
            change()
            let changed = (clock.now - start).seconds
            await advance(clock, to: nil, finished, count: count)
            return (await group.reduce(into: []) { $0.append($1) }.sorted(), changed)
        }
    }

    @Test("a lower rate (a run joined the fleet) applies to the turns already handed out")
    func aLowerRateAppliesAtOnce() async {
        let gate = SendGate(rate: 20, maxBackoff: .seconds(30), clock: .manual())
        // Six senders are given turns 50 ms apart; then the share drops to 5/s: those not yet
        // gone go 200 ms apart, not at the old spacing.
        let (times, changed) = await turns(gate, count: 6) { gate.setRate(5) }
        // (One sender that went just before the change may be seen just after it.)
        let after = times.filter { $0 > changed }.count
        #expect(after >= 3 && times.last! >= changed + 0.2 * Double(after - 2), "turns \(times), the rate changed at \(changed)")
    }

    @Test("a 429 holds the senders already given a turn")
    func aThrottleHoldsTurnsAlreadyGiven() async {
        let gate = SendGate(rate: 20, maxBackoff: .seconds(30), clock: .manual())
        // Turns 50 ms apart; then a 0.5 s pause: no sender goes during it.
        let (times, changed) = await turns(gate, count: 6) { _ = gate.throttled(retryAfter: 0.5) }
        let during = times.filter { $0 > changed + 0.1 && $0 < changed + 0.49 }
        #expect(during.isEmpty && times.last! >= changed + 0.49, "turns \(times), the 429 at \(changed)")
    }

    @Test("the earliest turn, read before claiming, includes a 429 pause and the rate's spacing")
    func theEarliestTurnShowsWhatAClaimWouldWaitFor() async {
        let clock = SMSRetryClock.manual()
        let gate = SendGate(rate: nil, maxBackoff: .seconds(30), clock: clock)
        #expect(gate.earliestTurn() <= clock.now)
        _ = gate.throttled(retryAfter: 5)
        #expect(gate.earliestTurn() > clock.now + .seconds(4), "a run 1 s before its deadline claims nothing during this pause")
        let paced = SendGate(rate: 1, maxBackoff: .seconds(30), clock: clock)
        #expect(await paced.admit(before: clock.now + .seconds(1)))
        #expect(paced.earliestTurn() > clock.now + .milliseconds(900))
    }
}
