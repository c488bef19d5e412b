import Foundation

// The statements of presence, checks and health.

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
