import Foundation

// Every runtime statement, as a `TypedStatement`. The SQL stays in `Queries`; each type here
// is one call: its stored properties are the statement's parameters in `$n` order,
// `Row` what it returns. `now` is the store's clock (`SMSRetryClock.statementNow`; nil = the
// server's `now()`).

/// Every runtime statement: the PREPARE test goes through this list (one per type; a type
/// left out of it is what a reviewer checks, NOTES-typed.md).
enum TypedStatements {
    static let all: [any TypedStatement.Type] = [ClaimDue.self, SpendLock.self, SpendSoFarRead.self, SpendReserve.self,
                                                 OutcomesRecord.self, RouterWordRead.self, DueList.self, DueCount.self,
                                                 UnadoptedLock.self, UnadoptedCount.self, UnadoptedRecent.self,
                                                 ReportFailure.self, ReportSent.self, ReportStatus.self, ReportCancel.self,
                                                 ReportRetryNow.self, StaleLock.self, StaleList.self, SweepChunkRead.self,
                                                 StatusRowsLock.self, SIDHeld.self, RunPresence.self, RunLeave.self,
                                                 SettingSource.self, SpendHeldRead.self, RecentRecipients.self, HealthRead.self,
                                                 ServerAccess.self]
}

/// Claims up to `limit` due rows for `lease` seconds for run `runID` (`Queries.claimDue`).
struct ClaimDue: TypedStatement {
    static let name = "claimDue"
    static let sql = Queries.claimDue
    var limit: Int
    var lease: Double
    var now: Date?
    var runID: String
    /// Only rows whose last send's fate is unknown (`reconcile`).
    var uncertainOnly: Bool
    /// The policy's `MessageKeys` paths, in `MessageKeys.names` order.
    var keyPaths: [String]

    var parameters: [String?] { PGParameters.encode(limit, lease, now, runID, uncertainOnly, keyPaths) }

    /// A claimed row and when it fell due (RETURNING comes in no order: sent in this one).
    struct Row: PGRowDecodable {
        var claimed: RetryStore.ClaimedRow
        var dueEpoch: Double

        init(_ r: PGRow) throws(RowDecodingError) {
            dueEpoch = try r.optional("due_epoch") ?? 0
            let doubt: Doubt?
            if let since: Double = try r.optional("uncertain_since_epoch") {
                doubt = Doubt(since: Date(timeIntervalSince1970: since), counted: try r.optional("uncertain_counted") ?? true,
                              leaseAt: try r.optional("uncertain_lease_epoch", as: Double.self).map { Date(timeIntervalSince1970: $0) },
                              router: try r.optional("uncertain_router") ?? false)
            } else {
                doubt = nil
            }
            var original: [String?] = []
            for i in 1...MessageKeys.names.count { original.append(try r.optional("meta_\(i)")) }
            claimed = RetryStore.ClaimedRow(
                id: try r.value("id"), phoneNumber: try r.optional("phone_number") ?? "",
                direction: try r.optional("message_direction") ?? "", content: try r.optional("message_content"),
                retryCount: try r.optional("retry_count") ?? 0, maxRetries: try r.optional("max_retries") ?? 0,
                leaseUntil: try r.value("lease_until"), previousLease: try r.optional("previous_lease"),
                doubt: doubt, sid: try r.optional("sid"),
                ageSeconds: try r.optional("age_seconds"), optOut: try r.optional("opt_out"),
                original: original, segments: try r.optional("segments") ?? 1)
        }
    }
}

/// Takes the fleet's spend lock for the claim's transaction (`Queries.spendLock`).
struct SpendLock: TypedStatement {
    static let name = "spendLock"
    static let sql = Queries.spendLock
    var lockClass: Int32
    var parameters: [String?] { PGParameters.encode(lockClass) }
    typealias Row = NoRow
}

/// The fleet's resends so far, per range (`Queries.spendSoFar`).
struct SpendSoFarRead: TypedStatement {
    static let name = "spendSoFar"
    static let sql = Queries.spendSoFar
    var now: Date?
    /// The budget day's start.
    var dayStart: Date
    /// How far back a resent row can have been created, seconds.
    var window: Double
    /// The price per segment of rows with no `sms_retry.spend.cost`.
    var defaultPrice: Double
    var parameters: [String?] { PGParameters.encode(now, dayStart, window, defaultPrice) }

    struct Row: PGRowDecodable {
        var range: String?
        var resendsToday: Int?
        var costToday: Double?
        var resendsHour: Int?
        init(_ r: PGRow) throws(RowDecodingError) {
            range = try r.optional("range")
            resendsToday = try r.optional("resends_today")
            costToday = try r.optional("cost_today")
            resendsHour = try r.optional("resends_hour")
        }
    }
}

/// Reserves the resends the spend guard allowed at a claim (`Queries.spendReserve`): one
/// element per row in each array.
struct SpendReserve: TypedStatement {
    static let name = "spendReserve"
    static let sql = Queries.spendReserve
    var ids: [Int]
    var countries: [String?]
    var ranges: [String?]
    var costs: [Double]
    /// The rows' leases as the claim returned them: text, so the equality with `next_retry_at`
    /// keeps its microseconds (a `Date` would round them).
    var leasesUntil: [String]
    var parameters: [String?] { PGParameters.encode(ids, countries, ranges, costs, leasesUntil) }
    typealias Row = NoRow
}

/// Records a batch of outcomes in one statement (`Queries.outcomesRecord`): `now`, how many
/// history entries to keep, then one array per column of `Outcome.recordColumns`.
struct OutcomesRecord: TypedStatement {
    static let name = "outcomesRecord"
    static let sql = Queries.outcomesRecord
    var now: Date?
    var keep: Int
    var outcomes: [Outcome]
    var parameters: [String?] {
        PGParameters.encode(now, keep) + Outcome.recordColumns.map { column in PGArray.literal(outcomes.map(column.value)) }
    }

    /// A row the record wrote (a row whose lease was lost is not).
    typealias Row = RetryStore.WrittenRow
}

extension RetryStore.WrittenRow: PGRowDecodable {
    init(_ r: PGRow) throws(RowDecodingError) {
        id = try r.value("id")
    }
}

/// The router's word on claimed rows since their claim (`Queries.routerWord`).
struct RouterWordRead: TypedStatement {
    static let name = "routerWord"
    static let sql = Queries.routerWord
    var ids: [Int]
    var parameters: [String?] { PGParameters.encode(ids) }

    struct Row: PGRowDecodable {
        var id: Int
        var deleted: Bool
        init(_ r: PGRow) throws(RowDecodingError) {
            id = try r.value("id")
            deleted = try r.optional("deleted") == true
        }
    }
}

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

// The report functions of migration 015, as the library calls them (`Queries.report`): each
// answers one `ReportAnswer`. `policy` is the store's policy as the function reads it
// (`RetryPolicy.sqlJSON`, jsonb text); `now` the store's clock.

extension RetryStore.ReportAnswer: PGRowDecodable {
    init(_ r: PGRow) throws(RowDecodingError) {
        self.init(result: try r.optional("result") ?? "", logID: try r.optional("log_id"), attempt: try r.optional("attempt"),
                  attempts: try r.optional("attempts"), reason: try r.optional("reason"), meaning: try r.optional("meaning"),
                  status: try r.optional("status"), current: try r.optional("current"),
                  nextRetryAt: try r.optional("next_epoch", as: Double.self).map { Date(timeIntervalSince1970: $0) })
    }
}

/// The router's failure report (`sms_retry_report_failure_at`).
struct ReportFailure: TypedStatement {
    static let name = "reportFailure"
    static let sql = Queries.reportFailure
    var logID: Int
    var errorCode: Int?
    var errorMessage: String?
    var now: Date?
    var policy: String
    var parameters: [String?] { PGParameters.encode(logID, errorCode, errorMessage, now, policy) }
    typealias Row = RetryStore.ReportAnswer
}

/// The router's report of an accepted send (`sms_retry_report_sent_at`).
struct ReportSent: TypedStatement {
    static let name = "reportSent"
    static let sql = Queries.reportSent
    var logID: Int
    var messageSID: String
    var now: Date?
    var parameters: [String?] { PGParameters.encode(logID, messageSID, now) }
    typealias Row = RetryStore.ReportAnswer
}

/// A delivery status for a message, by SID (`sms_retry_report_status_at`).
struct ReportStatus: TypedStatement {
    static let name = "reportStatus"
    static let sql = Queries.reportStatus
    var messageSID: String
    var status: String
    var errorCode: Int?
    var now: Date?
    var policy: String
    var parameters: [String?] { PGParameters.encode(messageSID, status, errorCode, now, policy) }
    typealias Row = RetryStore.ReportAnswer
}

/// The operator's cancel (`sms_retry_cancel_at`).
struct ReportCancel: TypedStatement {
    static let name = "reportCancel"
    static let sql = Queries.reportCancel
    var logID: Int
    var note: String?
    var now: Date?
    var parameters: [String?] { PGParameters.encode(logID, note, now) }
    typealias Row = RetryStore.ReportAnswer
}

/// The operator's retry-now (`sms_retry_retry_now_at`).
struct ReportRetryNow: TypedStatement {
    static let name = "reportRetryNow"
    static let sql = Queries.reportRetryNow
    var logID: Int
    var now: Date?
    var parameters: [String?] { PGParameters.encode(logID, now) }
    typealias Row = RetryStore.ReportAnswer
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

/// One chunk of the sweep's walk down the primary key (`Queries.sweepChunk`).
struct SweepChunkRead: TypedStatement {
    static let name = "sweepChunk"
    static let sql = Queries.sweepChunk
    /// The id below which to read (nil: from the top).
    var cursor: Int?
    var size: Int
    /// Seconds a row is left to settle.
    var settle: Double
    /// The window, seconds.
    var window: Double
    var now: Date?
    /// Where in `sms_metadata` a router keeps the SID (empty: nowhere).
    var sidKeyPath: [String]
    var parameters: [String?] { PGParameters.encode(cursor, size, settle, window, now, sidKeyPath) }

    /// The chunk's edge (the same on every row) and one candidate, or none.
    struct Row: PGRowDecodable {
        var lowestID: Int?
        var scanned: Int?
        var inWindow: Int?
        var candidate: RetryStore.SweepCandidate?
        init(_ r: PGRow) throws(RowDecodingError) {
            lowestID = try r.optional("low_id")
            scanned = try r.optional("scanned")
            inWindow = try r.optional("in_window")
            let retryCount: Int? = try r.optional("retry_count")
            let created: Double? = try r.optional("created_epoch")
            if let id: Int = try r.optional("id"), let sid: String = try r.optional("sid") {
                candidate = RetryStore.SweepCandidate(id: id, sid: sid, retryCount: retryCount ?? 0,
                                                      created: Date(timeIntervalSince1970: created ?? 0))
            } else {
                candidate = nil
            }
        }
    }
}

/// The rows `ids`, locked for applying Twilio's statuses (`Queries.statusRowsLock`).
struct StatusRowsLock: TypedStatement {
    static let name = "statusRowsLock"
    static let sql = Queries.statusRowsLock
    var ids: [Int]
    var parameters: [String?] { PGParameters.encode(ids) }

    struct Row: PGRowDecodable {
        var id: Int
        var direction: String?
        var retryCount: Int?
        var success: Bool?
        var finalStatus: String?
        /// The SID and status of `sms_retry.delivery`, the message's last known Twilio status.
        var deliverySID: String?
        var deliveryStatus: String?
        init(_ r: PGRow) throws(RowDecodingError) {
            id = try r.value("id")
            direction = try r.optional("message_direction")
            retryCount = try r.optional("retry_count")
            success = try r.optional("success")
            finalStatus = try r.optional("final_status")
            deliverySID = try r.optional("delivery_sid")
            deliveryStatus = try r.optional("delivery_status")
        }
    }
}

/// Whether a row other than `notRow` holds message `sid` (`Queries.sidHeld`).
struct SIDHeld: TypedStatement {
    static let name = "sidHeld"
    static let sql = Queries.sidHeld
    var sid: String
    var notRow: Int
    var parameters: [String?] { PGParameters.encode(sid, notRow) }

    struct Row: PGRowDecodable {
        var held: Bool?
        init(_ r: PGRow) throws(RowDecodingError) { held = try r.optional("held") }
    }
}

/// A run's presence among the runs sharing a rate (`Queries.runPresence`).
struct RunPresence: TypedStatement {
    static let name = "runPresence"
    static let sql = Queries.runPresence
    /// The advisory-lock class of the rate.
    var lockClass: Int32
    var parameters: [String?] { PGParameters.encode(lockClass) }

    struct Row: PGRowDecodable {
        var runs: Int?
        init(_ r: PGRow) throws(RowDecodingError) { runs = try r.optional("runs") }
    }
}

/// Gives back this session's presence slots (`Queries.runLeave`).
struct RunLeave: TypedStatement {
    static let name = "runLeave"
    static let sql = Queries.runLeave
    var lockClass: Int32
    var parameters: [String?] { PGParameters.encode(lockClass) }
    typealias Row = NoRow
}

/// A server setting as this session has it, and where it came from (`Queries.settingSource`).
struct SettingSource: TypedStatement {
    static let name = "settingSource"
    static let sql = Queries.settingSource
    var setting: String
    var parameters: [String?] { PGParameters.encode(setting) }

    struct Row: PGRowDecodable {
        var value: String?
        var setting: Double?
        var unit: String?
        var source: String?
        var role: String?
        var database: String?
        init(_ r: PGRow) throws(RowDecodingError) {
            value = try r.optional("value")
            setting = try r.optional("setting")
            unit = try r.optional("unit")
            source = try r.optional("source")
            role = try r.optional("role")
            database = try r.optional("database")
        }
    }
}

/// Pending rows the spend guard holds, by reason and number (`Queries.spendHeld`).
struct SpendHeldRead: TypedStatement {
    static let name = "spendHeld"
    static let sql = Queries.spendHeld
    var parameters: [String?] { [] }

    struct Row: PGRowDecodable {
        var reason: String?
        var phoneNumber: String?
        var rows: Int?
        init(_ r: PGRow) throws(RowDecodingError) {
            reason = try r.optional("reason")
            phoneNumber = try r.optional("phone_number")
            rows = try r.optional("rows")
        }
    }
}

/// The numbers of the newest outbound messages (`Queries.recentRecipients`, `check`'s countries line).
struct RecentRecipients: TypedStatement {
    static let name = "recentRecipients"
    static let sql = Queries.recentRecipients
    var parameters: [String?] { [] }

    struct Row: PGRowDecodable {
        var phoneNumber: String?
        init(_ r: PGRow) throws(RowDecodingError) { phoneNumber = try r.optional("phone_number") }
    }
}

/// `sms_retry_health` as one row (`Queries.health`).
struct HealthRead: TypedStatement {
    static let name = "health"
    static let sql = Queries.health
    var parameters: [String?] { [] }

    struct Row: PGRowDecodable {
        var status: String?
        /// A JSON array of strings.
        var reasons: String?
        var retrySuccessRate: Double?
        var finishedRetries: Int?
        var backlog: Int?
        var oldestDueSeconds: Int?
        init(_ r: PGRow) throws(RowDecodingError) {
            status = try r.optional("status")
            reasons = try r.optional("reasons")
            retrySuccessRate = try r.optional("retry_success_rate")
            finishedRetries = try r.optional("finished_retries")
            backlog = try r.optional("backlog")
            oldestDueSeconds = try r.optional("oldest_due_seconds")
        }
    }
}

/// Whether this connection can write (`Queries.serverAccess`, `DatabaseAccess`).
struct ServerAccess: TypedStatement {
    static let name = "serverAccess"
    static let sql = Queries.serverAccess
    var parameters: [String?] { [] }

    struct Row: PGRowDecodable {
        var inRecovery: Bool?
        var readOnly: Bool?
        init(_ r: PGRow) throws(RowDecodingError) {
            inRecovery = try r.optional("in_recovery")
            readOnly = try r.optional("read_only")
        }
    }
}
