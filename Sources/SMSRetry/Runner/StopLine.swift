import Synchronization

/// What every part of a run reads to know it is stopping, and why: the senders before each
/// request, the loop's driver before each decision, the record for its reconnect budget. The
/// first stop wins.
final class StopLine: Sendable {
    private let stop = Mutex<RunStop?>(nil)
    /// The database error that ended the run (exit 3) and the work it stopped ("the record of
    /// 100 rows"): a lost connection that stayed away, or a DBA's time limit a smaller statement
    /// did not fit either.
    private let failure = Mutex<(error: DatabaseError, what: String)?>(nil)

    var reason: RunStop? { stop.withLock { $0 } }
    var stopped: Bool { reason != nil }
    var databaseFailure: (error: DatabaseError, what: String)? { failure.withLock { $0 } }

    func halt(_ why: RunStop) { stop.withLock { $0 = $0 ?? why } }

    /// A reason found at the end that says more than the one the run stopped for (no request
    /// reached Twilio at all).
    func replace(with why: RunStop) { stop.withLock { $0 = why } }

    /// The database refused `what` for good: nothing more is claimed or started, the rows in
    /// flight are finished and recorded as far as the database lets them, and the run exits 3.
    func databaseFailed(_ error: DatabaseError, _ what: String) {
        failure.withLock { $0 = $0 ?? (error, what) }
        halt(.database("\(error)"))
    }
}
