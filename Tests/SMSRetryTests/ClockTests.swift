import Foundation
import Testing
@testable import SMSRetry

@Suite struct ClockTests {
    @Test("a test clock moves only when advanced, its monotonic and wall time together")
    func aManualClockMovesBothTimesTogether() {
        let wall = Date(timeIntervalSince1970: 1_800_000_000)
        let clock = SMSRetryClock.manual(at: wall)
        let start = clock.now
        #expect(clock.now == start && clock.wallNow() == wall)
        clock.advance(by: .seconds(90))
        #expect(clock.now - start == .seconds(90))
        #expect(clock.wallNow() == wall.addingTimeInterval(90))
        // The statements read the test clock's wall time too.
        #expect(clock.statementNow == wall.addingTimeInterval(90))
        // It never goes back.
        clock.advance(to: start)
        #expect(clock.now - start == .seconds(90))
    }

    @Test("a sleeper on a test clock wakes when the clock reaches its instant, not before")
    func aSleeperWakesWhenTheClockGetsThere() async throws {
        let clock = SMSRetryClock.manual()
        let wake = clock.now + .seconds(10)
        let sleeper = Task { try await clock.sleep(until: wake); return clock.now }
        while clock.sleepers.count == 0 { await Task.yield() }
        #expect(clock.sleepers.nextWake == wake)
        clock.advance(by: .seconds(9))
        #expect(clock.sleepers.count == 1, "one second early: still asleep")
        clock.advance(by: .seconds(5))
        #expect(try await sleeper.value == wake + .seconds(4))
        #expect(clock.sleepers.count == 0)
        // An instant already passed does not wait.
        try await clock.sleep(until: wake)
    }

    @Test func aCancelledSleeperThrows() async {
        let clock = SMSRetryClock.manual()
        let sleeper = Task { try await clock.sleep(for: .seconds(60)) }
        while clock.sleepers.count == 0 { await Task.yield() }
        sleeper.cancel()
        await #expect(throws: CancellationError.self) { try await sleeper.value }
        #expect(clock.sleepers.count == 0)
    }

    @Test("the system clock leaves the statements' now to the server; a fixed one gives its instant")
    func statementNow() {
        #expect(SMSRetryClock.system.statementNow == nil)
        let night = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(SMSRetryClock.at(night).wallNow() == night)
        #expect(SMSRetryClock.at(night).statementNow == night)
    }
}
