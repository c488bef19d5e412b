/// What becomes of a batch statement that a DBA's time limit cancelled (`DatabaseError.isTimeout`:
/// `statement_timeout`, `lock_timeout`), pure. A cancelled statement did nothing, so it can be
/// tried again: a piece of several rows is split in halves, each tried alone (the work of each
/// is half the work); a single row is tried again after a pause (a `lock_timeout` ends when the
/// router's transaction holding the row does), until `patience` has passed since the first
/// timeout; then it is given up, and the caller says what stayed undone.
enum StatementSizing {
    enum Step: Equatable {
        /// Try the first `first` rows, then the rest, each alone.
        case split(first: Int)
        /// Try the same single row again after this pause.
        case retry(after: Duration)
        case giveUp
    }

    /// How long single rows are tried again, from the batch's first timeout.
    static let patience = Duration.seconds(10)

    /// The step after a piece of `count` rows was cancelled; `tries`: how often this single row
    /// was cancelled already, `elapsed`: since the batch's first timeout.
    static func afterTimeout(count: Int, tries: Int, elapsed: Duration) -> Step {
        if count > 1 { return .split(first: count / 2) }
        let pause = Duration.milliseconds(250) * (1 << min(tries, 3))   // 0.25, 0.5, 1, 2 s
        return elapsed + pause < patience ? .retry(after: pause) : .giveUp
    }

    /// The next, smaller size of a claim (or an adoption) that was cancelled; nil below one row.
    static func smaller(_ size: Int) -> Int? { size > 1 ? size / 2 : nil }
}
