import Testing
@testable import SMSRetry

/// The run loop's decisions, one test each, without PostgreSQL or HTTP: rows are plain numbers,
/// time is a value moved by hand.
@Suite struct RunLoopTests {
    typealias Loop = RunLoop<Int>
    let t0 = ContinuousClock.now

    func loop(concurrency: Int = 4, batchSize: Int = 10, limit: Int? = nil, rate: Double? = nil,
              lease: Double = 60, runtime: Duration = .seconds(110)) -> Loop {
        Loop(.init(concurrency: concurrency, batchSize: batchSize, limit: limit, rate: rate, lease: lease,
                   sendTimeout: .seconds(15), deadline: t0 + runtime))
    }

    func claims(_ actions: [Loop.Action]) -> [Int] {
        actions.compactMap { if case .claim(let rows, _) = $0 { rows } else { nil } }
    }
    func sends(_ actions: [Loop.Action]) -> [(row: Int, batch: Int, by: ContinuousClock.Instant)] {
        actions.compactMap { if case .send(let row, let batch, let by) = $0 { (row, batch, by) } else { nil } }
    }
    func records(_ actions: [Loop.Action]) -> [[Outcome]] {
        actions.compactMap { if case .record(_, let outcomes) = $0 { outcomes } else { nil } }
    }
    func finishes(_ actions: [Loop.Action]) -> Bool {
        actions.contains { if case .finish = $0 { true } else { false } }
    }
    func sent(_ id: Int) -> Outcome { Outcome(id: id, kind: .sent, counted: true) }

    @Test func theFirstClaimIsTheBatchOrTheConcurrencyWhicheverIsLarger() {
        var small = loop(concurrency: 4, batchSize: 10)
        #expect(claims(small.handle(.start, now: t0)) == [10])
        var wide = loop(concurrency: 50, batchSize: 10)
        #expect(claims(wide.handle(.start, now: t0)) == [50], "a batch smaller than the concurrency would leave senders idle")
    }

    @Test func sendsStartUpToTheConcurrencyThenOneForEachThatFinishes() {
        var l = loop(concurrency: 4, batchSize: 10)
        _ = l.handle(.start, now: t0)
        let first = l.handle(.claimed(closed: [], sendable: Array(1...10), fitted: 10), now: t0)
        #expect(sends(first).map(\.row) == [1, 2, 3, 4])
        #expect(claims(first).isEmpty, "6 rows still wait, more than the low water of 2")
        let next = l.handle(.sent(batch: 0, sent(1)), now: t0 + .seconds(1))
        #expect(sends(next).map(\.row) == [5])
    }

    @Test func theNextClaimGoesOutAtLowWaterWhileTheBatchStillSends() {
        var l = loop(concurrency: 4, batchSize: 10)
        _ = l.handle(.start, now: t0)
        _ = l.handle(.claimed(closed: [], sendable: Array(1...10), fitted: 10), now: t0)
        #expect(l.lowWater == 2)
        var claimed: [Int] = []
        for id in 1...5 {
            let actions = l.handle(.sent(batch: 0, sent(id)), now: t0 + .seconds(Double(id)))
            claimed += claims(actions)
            if id < 5 { #expect(claims(actions).isEmpty, "\(l.waiting) rows wait") }
        }
        #expect(claimed == [10] && l.waiting == 1, "claimed once, when fewer than 2 rows were left to start")
        // Only one claim at a time.
        #expect(claims(l.handle(.sent(batch: 0, sent(6)), now: t0 + .seconds(6))).isEmpty)
    }

    @Test func aCancelledClaimSizesTheNextOnesToWhatFitted() {
        var l = loop(concurrency: 4, batchSize: 100)
        #expect(claims(l.handle(.start, now: t0)) == [100])
        // The database's time limit cancelled it: claimBounded made it again at 50 (then 25).
        _ = l.handle(.claimed(closed: [], sendable: Array(1...25), fitted: 25), now: t0)
        #expect(l.claimCeiling == 25)
        var next: [Int] = []
        for id in 1...25 where next.isEmpty { next = claims(l.handle(.sent(batch: 0, sent(id)), now: t0 + .seconds(1))) }
        #expect(next == [25], "later claims start from the size that fitted")
    }

    @Test func aClaimThatFittedWholeLeavesTheSizeAlone() {
        var l = loop(concurrency: 4, batchSize: 100)
        _ = l.handle(.start, now: t0)
        _ = l.handle(.claimed(closed: [], sendable: [1], fitted: 100), now: t0)
        #expect(l.claimCeiling == .max)
    }

    @Test func theLimitCapsTheClaimsAndThenEndsThem() {
        var l = loop(concurrency: 4, batchSize: 10, limit: 13)
        #expect(claims(l.handle(.start, now: t0)) == [10])
        let second = l.handle(.claimed(closed: [], sendable: Array(1...10), fitted: 10), now: t0)
        #expect(claims(second).isEmpty)
        var asked: [Int] = []
        for id in 1...10 { asked += claims(l.handle(.sent(batch: 0, sent(id)), now: t0)) }
        #expect(asked == [3], "13 in all")
        _ = l.handle(.claimed(closed: [], sendable: [11, 12, 13], fitted: 3), now: t0)
        #expect(!l.claiming, "the limit is reached")
        #expect(l.claimed == 13)
    }

    @Test func atARateNoMoreRowsAreClaimedThanCanStartBeforeTheDeadline() {
        var l = loop(concurrency: 4, batchSize: 100, rate: 2, runtime: .seconds(10))
        #expect(claims(l.handle(.start, now: t0)) == [21], "2/s for 10 s, and the one at once")
        var late = loop(concurrency: 4, batchSize: 100, rate: 2, runtime: .seconds(10))
        #expect(claims(late.handle(.start, now: t0 + .seconds(8))) == [5])
    }

    @Test func aRowMaySendOnlyWhileTheLeaseOutlivesItsRequestAndNeverAfterTheDeadline() {
        var l = loop(lease: 60, runtime: .seconds(110))
        _ = l.handle(.start, now: t0)
        let early = sends(l.handle(.claimed(closed: [], sendable: [1], fitted: 10), now: t0 + .seconds(1)))
        #expect(early.first?.by == t0 + .seconds(1) + .seconds(60) - .seconds(15) - .seconds(5))
        var late = loop(lease: 60, runtime: .seconds(30))
        _ = late.handle(.start, now: t0)
        let capped = sends(late.handle(.claimed(closed: [], sendable: [1], fitted: 10), now: t0 + .seconds(1)))
        #expect(capped.first?.by == t0 + .seconds(30), "never after the deadline")
    }

    @Test func atTheDeadlineNothingMoreIsClaimed() {
        var l = loop(concurrency: 4, batchSize: 10, runtime: .seconds(10))
        _ = l.handle(.start, now: t0)
        _ = l.handle(.claimed(closed: [], sendable: Array(1...10), fitted: 10), now: t0)
        var actions: [Loop.Action] = []
        for id in 1...10 { actions += l.handle(.sent(batch: 0, sent(id)), now: t0 + .seconds(10)) }
        #expect(claims(actions).isEmpty && !l.claiming)
        #expect(records(actions).count == 1 && !finishes(actions), "the batch is still being recorded")
        #expect(finishes(l.handle(.recorded, now: t0 + .seconds(11))))
    }

    @Test func aGateTurnAtOrAfterTheDeadlineClaimsNothing() {
        var l = loop(runtime: .seconds(10))
        let actions = l.handle(.start, now: t0, earliestTurn: t0 + .seconds(10))
        #expect(claims(actions).isEmpty, "a 429 pause past the deadline: the rows would only be handed back")
        #expect(finishes(actions))
    }

    @Test func aRowHandedBackForItsTurnComingTooLateEndsClaiming() {
        var l = loop(concurrency: 4, batchSize: 10)
        _ = l.handle(.start, now: t0)
        _ = l.handle(.claimed(closed: [], sendable: Array(1...10), fitted: 10), now: t0)
        // A sender's gate turn came after its row's send-by (a long 429 pause): it handed the
        // row back, and so do the senders after it.
        var actions = l.handle(.outOfTime, now: t0 + .seconds(1))
        for id in 1...10 { actions += l.handle(.sent(batch: 0, Outcome.release(id: id, delay: 0, leaseUntil: nil)), now: t0 + .seconds(1)) }
        #expect(claims(actions).isEmpty && !l.claiming, "the rows claimed next would only be handed back too")
        #expect(records(actions).first?.allSatisfy { $0.kind == .release } == true, "the handed-back rows are recorded as released")
        #expect(finishes(l.handle(.recorded, now: t0 + .seconds(2))))
    }

    @Test(arguments: [RunStop.configuration("Twilio refused the credentials"), .outage("Twilio looks down"),
                      .database("connection lost")])
    func aStopEndsClaimingAndFinishesTheRowsInFlight(_ why: RunStop) {
        var l = loop(concurrency: 2, batchSize: 4)
        _ = l.handle(.start, now: t0)
        _ = l.handle(.claimed(closed: [], sendable: [1, 2, 3, 4], fitted: 4), now: t0)
        #expect(claims(l.handle(.stopped(why), now: t0)).isEmpty)
        #expect(l.stop == why)
        var actions: [Loop.Action] = []
        for id in 1...4 { actions += l.handle(.sent(batch: 0, Outcome.release(id: id, delay: 0, leaseUntil: nil)), now: t0) }
        #expect(claims(actions).isEmpty && !l.claiming)
        #expect(sends(actions).map(\.row) == [3, 4], "queued rows still go to a sender, which hands them back")
        #expect(records(actions).count == 1)
        #expect(finishes(l.handle(.recorded, now: t0)))
    }

    @Test func onlyTheFirstStopCounts() {
        var l = loop()
        _ = l.handle(.start, now: t0)
        _ = l.handle(.stopped(.configuration("credentials")), now: t0)
        _ = l.handle(.stopped(.outage("breaker")), now: t0)
        #expect(l.stop == .configuration("credentials"))
    }

    @Test func aFailedClaimEndsClaimingAndTheRunFinishesItsRowsInFlight() {
        var l = loop(concurrency: 2, batchSize: 2)
        _ = l.handle(.start, now: t0)
        _ = l.handle(.claimed(closed: [], sendable: [1, 2], fitted: 2), now: t0)
        _ = l.handle(.sent(batch: 0, sent(1)), now: t0)
        #expect(l.claimInFlight)
        let failed = l.handle(.claimFailed, now: t0)
        #expect(claims(failed).isEmpty && !l.claiming && !finishes(failed), "row 2 is still sending")
        let last = l.handle(.sent(batch: 0, sent(2)), now: t0)
        #expect(records(last).count == 1)
        #expect(finishes(l.handle(.recorded, now: t0)))
    }

    @Test func aBatchIsRecordedOnlyWhenAllItsOutcomesAreIn() {
        var l = loop(concurrency: 4, batchSize: 3)
        _ = l.handle(.start, now: t0)
        let closed = Outcome(id: 9, kind: .failed)
        _ = l.handle(.claimed(closed: [closed], sendable: [1, 2], fitted: 3), now: t0)
        #expect(records(l.handle(.sent(batch: 0, sent(1)), now: t0)).isEmpty, "1 of 3 outcomes is not in")
        let last = records(l.handle(.sent(batch: 0, sent(2)), now: t0))
        #expect(last.count == 1 && Set(last[0].map(\.id)) == [9, 1, 2])
    }

    @Test func aBatchOfClosedRowsOnlyIsRecordedAtOnce() {
        var l = loop()
        _ = l.handle(.start, now: t0)
        let actions = l.handle(.claimed(closed: [Outcome(id: 7, kind: .failed), Outcome(id: 8, kind: .failed)], sendable: [], fitted: 10), now: t0)
        #expect(records(actions).map { $0.map(\.id) } == [[7, 8]] && sends(actions).isEmpty)
    }

    @Test func batchesAreRecordedApartAsEachCompletes() {
        var l = loop(concurrency: 2, batchSize: 2)
        _ = l.handle(.start, now: t0)
        _ = l.handle(.claimed(closed: [], sendable: [1, 2], fitted: 2), now: t0)
        _ = l.handle(.sent(batch: 0, sent(1)), now: t0)
        _ = l.handle(.claimed(closed: [], sendable: [3, 4], fitted: 2), now: t0)
        #expect(records(l.handle(.sent(batch: 0, sent(2)), now: t0)).map { $0.map(\.id) } == [[1, 2]])
        _ = l.handle(.sent(batch: 1, sent(3)), now: t0)
        #expect(records(l.handle(.sent(batch: 1, sent(4)), now: t0)).map { $0.map(\.id) } == [[3, 4]])
    }

    @Test func onceTheBreakerOpensTheOutagesFailuresAreForgiven() {
        var l = loop(concurrency: 2, batchSize: 2)
        _ = l.handle(.start, now: t0)
        _ = l.handle(.claimed(closed: [], sendable: [1, 2], fitted: 2), now: t0)
        var failed = Outcome(id: 1, kind: .retry, counted: true, httpStatus: 503)
        failed.providerFailure = true
        _ = l.handle(.sent(batch: 0, failed), now: t0)
        _ = l.handle(.breakerOpened, now: t0)
        let recorded = records(l.handle(.sent(batch: 0, sent(2)), now: t0)).first ?? []
        #expect(recorded.map(\.kind) == [.release, .sent], "the 503 goes back uncounted; the accepted send stays sent")
        #expect(recorded.first?.counted == false && recorded.first?.outcome == .providerOutage)
    }

    @Test func withTheBreakerShutFailuresCount() {
        var l = loop(concurrency: 1, batchSize: 1)
        _ = l.handle(.start, now: t0)
        _ = l.handle(.claimed(closed: [], sendable: [1], fitted: 1), now: t0)
        var failed = Outcome(id: 1, kind: .retry, counted: true, httpStatus: 503)
        failed.providerFailure = true
        #expect(records(l.handle(.sent(batch: 0, failed), now: t0)).first?.first?.kind == .retry)
    }

    @Test func nothingLeftFinishes() {
        var l = loop()
        #expect(claims(l.handle(.start, now: t0)) == [10])
        let empty = l.handle(.claimed(closed: [], sendable: [], fitted: 10), now: t0)
        #expect(finishes(empty) && !l.claiming && l.finished)
        #expect(l.handle(.recorded, now: t0).isEmpty, "a finished loop does nothing more")
    }

    @Test func aClaimsBudgetIsFifteenSecondsOrWhatIsLeftOfTheRun() {
        var l = loop(runtime: .seconds(110))
        let budgets = l.handle(.start, now: t0 + .seconds(100)).compactMap { if case .claim(_, let b) = $0 { b } else { nil } }
        #expect(budgets == [.seconds(10)])
        var early = loop(runtime: .seconds(110))
        let full = early.handle(.start, now: t0).compactMap { if case .claim(_, let b) = $0 { b } else { nil } }
        #expect(full == [.seconds(15)])
    }

    @Test func whenNoRequestReachedTwilioThatIsWhyTheRunStopped() {
        let why = RunStop.unreachable(requests: 3, notReached: 3, url: "https://api.example/Messages.json", last: "DNS")
        #expect(why == .outage("Twilio unreachable: none of the 3 requests to https://api.example/Messages.json reached it (last: DNS); rows handed back without using an attempt"))
        #expect(RunStop.unreachable(requests: 3, notReached: 2, url: "u", last: "DNS") == nil, "one request got through")
        #expect(RunStop.unreachable(requests: 0, notReached: 0, url: "u", last: "") == nil, "no request, nothing to say")
    }
}
