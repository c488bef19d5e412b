import Foundation

// The dry run's, adoption's and expire's statements (`TypedStatements.swift` says what a typed statement is).

/// The due rows a run would claim, without claiming them (`Queries.dueList`, `--dry-run`).
struct DueList: TypedStatement {
    static let name = "dueList"
    static let sql = Queries.dueList
    var limit: Int
    var now: Date?
    /// The kind's key path (`MessageKeys.kind`).
    var kindPath: String
    var parameters: [String?] { PGParameters.encode(limit, now, kindPath) }
    typealias Row = RetryStore.DueRow
}

extension RetryStore.DueRow: PGRowDecodable {
    init(_ r: PGRow) throws(RowDecodingError) {
        self.init(id: try r.value("id"), phoneNumber: try r.optional("phone_number") ?? "",
                  direction: try r.optional("message_direction") ?? "",
                  retryCount: try r.optional("retry_count") ?? 0, maxRetries: try r.optional("max_retries") ?? 0,
                  nextRetryAt: try r.optional("next_retry_at") ?? "", errorCode: try r.optional("error_code"),
                  ageSeconds: try r.optional("age_seconds"), kind: MessageKeys.string(try r.optional("kind")),
                  segments: try r.optional("segments") ?? 1)
    }
}

/// Rows due now (`Queries.dueCount`, the metrics file).
struct DueCount: TypedStatement {
    static let name = "dueCount"
    static let sql = Queries.dueCount
    var now: Date?
    var parameters: [String?] { PGParameters.encode(now) }

    struct Row: PGRowDecodable {
        var due: Int
        init(_ r: PGRow) throws(RowDecodingError) { due = try r.optional("due") ?? 0 }
    }
}

/// A failed row the router never reported, as adoption reads it.
struct UnreportedFailure: Sendable {
    var id: Int
    var errorMessage: String?
    /// `sms_metadata` as JSON text.
    var metadata: String?
    var ageSeconds: Double?
    /// When the router's send started (`Queries.sentEpoch`); only `UnadoptedLock` reads it.
    var sentEpoch: Double?

    init(_ r: PGRow, sentEpoch withSentEpoch: Bool) throws(RowDecodingError) {
        id = try r.value("id")
        errorMessage = try r.optional("error_message")
        metadata = try r.optional("metadata")
        ageSeconds = try r.optional("age_seconds")
        sentEpoch = withSentEpoch ? try r.optional("sent_epoch") : nil
    }
}

/// Locks up to `batch` unreported failures written at least `grace` seconds ago (`Queries.unadoptedLock`).
struct UnadoptedLock: TypedStatement {
    static let name = "unadoptedLock"
    static let sql = Queries.unadoptedLock
    var batch: Int
    var grace: Double
    var now: Date?
    var parameters: [String?] { PGParameters.encode(batch, grace, now) }

    struct Row: PGRowDecodable {
        var failure: UnreportedFailure
        init(_ r: PGRow) throws(RowDecodingError) { failure = try UnreportedFailure(r, sentEpoch: true) }
    }
}

/// How many rows adoption would take, written at least `minAge` seconds ago, counted up to
/// `cap` (nil: all) (`Queries.unadoptedCount`).
struct UnadoptedCount: TypedStatement {
    static let name = "unadoptedCount"
    static let sql = Queries.unadoptedCount
    var cap: Int?
    var minAge: Double
    var now: Date?
    var parameters: [String?] { PGParameters.encode(cap, minAge, now) }

    struct Row: PGRowDecodable {
        var n: Int
        init(_ r: PGRow) throws(RowDecodingError) { n = try r.optional("n") ?? 0 }
    }
}

/// The unreported failures written at least `grace` and at most `maxAge` seconds ago, read
/// only (`Queries.unadoptedRecent`, `run --dry-run --adopt-failures`).
struct UnadoptedRecent: TypedStatement {
    static let name = "unadoptedRecent"
    static let sql = Queries.unadoptedRecent
    var grace: Double
    var maxAge: Double
    var now: Date?
    var parameters: [String?] { PGParameters.encode(grace, maxAge, now) }

    struct Row: PGRowDecodable {
        var failure: UnreportedFailure
        init(_ r: PGRow) throws(RowDecodingError) { failure = try UnreportedFailure(r, sentEpoch: false) }
    }
}

/// Up to `batch` pending retries of messages older than `maxAge` seconds, not in flight,
/// locked for closing (`Queries.staleLock`, `expire`).
struct StaleLock: TypedStatement {
    static let name = "staleLock"
    static let sql = Queries.staleLock
    var maxAge: Double
    var now: Date?
    var batch: Int
    var parameters: [String?] { PGParameters.encode(maxAge, now, batch) }
    typealias Row = RetryStore.StaleRow
}

/// The rows `StaleLock` would close, read only, a page of `limit` after id `after`
/// (`Queries.staleList`, `expire --dry-run`).
struct StaleList: TypedStatement {
    static let name = "staleList"
    static let sql = Queries.staleList
    var maxAge: Double
    var now: Date?
    var after: Int
    var limit: Int
    var parameters: [String?] { PGParameters.encode(maxAge, now, after, limit) }
    typealias Row = RetryStore.StaleRow
}

extension RetryStore.StaleRow: PGRowDecodable {
    public init(_ r: PGRow) throws(RowDecodingError) {
        self.init(id: try r.value("id"), createdAt: try r.optional("created_at") ?? "",
                  retryCount: try r.optional("retry_count") ?? 0, maxRetries: try r.optional("max_retries") ?? 0)
    }
}
