import Foundation

// Every runtime statement, as a `TypedStatement`. The SQL stays in `Queries`; each type here
// is one call: its stored properties are the statement's parameters in `$n` order,
// `Row` what it returns. `now` is the store's clock (`SMSRetryClock.statementNow`; nil = the
// server's `now()`).

/// Every runtime statement: the PREPARE test goes through this list, one entry per type, and
/// counts the types declared as typed statements under Sources/SMSRetry against it.
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
