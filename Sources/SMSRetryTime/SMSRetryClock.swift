import Foundation
import Synchronization

/// The one clock of sms-retry: a monotonic `Clock` (what runs, the send gate, the reconnect
/// backoff and the store's retries wait on and measure with) and wall time (`wallNow()`, the
/// statements' "now") read from the same source.
///
/// - `system`: the process's `ContinuousClock` and `Date()`. The only place production code
///   reads either.
/// - `at(_:)`: the system's monotonic time, with wall time fixed at an instant a test sets
///   (a run "at night"): deadlines still pass, the statements and the Swift decisions read one
///   fixed "now".
/// - `manual(at:)`: a test clock. Neither time moves until the test calls `advance(by:)` or
///   `advance(to:)`; both move together. Sleepers wake when the clock reaches their instant.
///
/// Instants are `ContinuousClock.Instant`s (a manual clock counts from the moment it was made),
/// so every type that holds one works with any source.
public struct SMSRetryClock: Clock {
    public typealias Instant = ContinuousClock.Instant
    public typealias Duration = Swift.Duration

    /// A wall time every reader sees instead of the system's (`at(_:)`).
    public let fixed: Date?
    private let manual: ManualTime?

    private init(fixed: Date?, manual: ManualTime?) {
        self.fixed = fixed
        self.manual = manual
    }

    public static let system = SMSRetryClock(fixed: nil, manual: nil)
    /// The system's monotonic time; wall time fixed at `instant`.
    public static func at(_ instant: Date) -> SMSRetryClock { SMSRetryClock(fixed: instant, manual: nil) }
    /// A test clock at wall time `wall`, moved only by `advance`.
    public static func manual(at wall: Date = Date()) -> SMSRetryClock {
        SMSRetryClock(fixed: nil, manual: ManualTime(wall: wall))
    }

    // MARK: Clock

    public var now: Instant { manual?.now ?? ContinuousClock.now }
    public var minimumResolution: Duration { manual == nil ? ContinuousClock().minimumResolution : .nanoseconds(1) }

    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        if let manual {
            try await manual.sleep(until: deadline)
        } else {
            try await ContinuousClock().sleep(until: deadline, tolerance: tolerance)
        }
    }

    // MARK: Wall time

    /// Now on the wall: fixed, the test clock's, or the system's.
    public func wallNow() -> Date { fixed ?? manual?.wall ?? Date() }
    /// The wall time statements are given as their "now" parameter: nil (the server's `now()`)
    /// for the system clock, else this clock's.
    public var statementNow: Date? { fixed ?? manual?.wall }

    // MARK: Test clock

    public var isManual: Bool { manual != nil }

    /// Moves a test clock (both times) forward by `duration`, waking every sleeper it passes.
    public func advance(by duration: Duration) {
        guard let manual else { preconditionFailure("only a manual clock is advanced by hand") }
        manual.advance(to: manual.now + duration)
    }

    /// Moves a test clock forward to `instant` (no-op when it is already there).
    public func advance(to instant: Instant) {
        guard let manual else { preconditionFailure("only a manual clock is advanced by hand") }
        manual.advance(to: instant)
    }

    /// A test clock's sleepers: how many wait, and the earliest instant one wakes at.
    public var sleepers: (count: Int, nextWake: Instant?) {
        manual?.sleepers ?? (0, nil)
    }
}

/// The state of a manual clock: how far it has been moved, and who sleeps until when.
private final class ManualTime: Sendable {
    private struct Sleeper {
        let until: ContinuousClock.Instant
        let continuation: CheckedContinuation<Void, any Error>
    }
    private struct State {
        var offset = Duration.zero
        var nextID = 0
        var sleepers: [Int: Sleeper] = [:]
    }
    private let start = ContinuousClock.now
    private let startWall: Date
    private let state = Mutex(State())

    init(wall: Date) { startWall = wall }

    var now: ContinuousClock.Instant { start + state.withLock { $0.offset } }
    var wall: Date {
        let offset = state.withLock { $0.offset }
        return startWall.addingTimeInterval(Double(offset.components.seconds) + Double(offset.components.attoseconds) / 1e18)
    }
    var sleepers: (count: Int, nextWake: ContinuousClock.Instant?) {
        state.withLock { s in (s.sleepers.count, s.sleepers.values.map(\.until).min()) }
    }

    func advance(to instant: ContinuousClock.Instant) {
        let woken: [CheckedContinuation<Void, any Error>] = state.withLock { s in
            s.offset = max(s.offset, instant - start)
            let now = start + s.offset
            let due = s.sleepers.filter { $0.value.until <= now }
            for id in due.keys { s.sleepers[id] = nil }
            return due.map(\.value.continuation)
        }
        for continuation in woken { continuation.resume() }
    }

    func sleep(until deadline: ContinuousClock.Instant) async throws {
        let id = state.withLock { s in
            defer { s.nextID += 1 }
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let answer: Result<Void, any Error>? = state.withLock { s in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if deadline <= start + s.offset { return .success(()) }
                    s.sleepers[id] = Sleeper(until: deadline, continuation: continuation)
                    return nil
                }
                if let answer { continuation.resume(with: answer) }
            }
        } onCancel: {
            let sleeper = state.withLock { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }
}
