import Foundation

/// A DBA's time limit that ended one of sms-retry's statements (`DatabaseError.timeoutSetting`),
/// as the session saw it: the setting, its value (`current_setting`), where it came from
/// (`pg_settings.source`: the role, the database, the server's configuration, the connection's
/// options), and the one line a command prints about it, with the fix. Pure, but for `read`.
public struct ServerLimit: Sendable, Equatable {
    /// `statement_timeout`, `lock_timeout`, `idle_in_transaction_session_timeout`, `transaction_timeout`.
    public var setting: String
    /// As `SHOW` prints it (`50ms`, `5s`); nil when it could not be read.
    public var value: String? = nil
    /// The value in milliseconds (`pg_settings.setting` in its `unit`).
    public var milliseconds: Double? = nil
    /// `pg_settings.source`: `user`, `database`, `database user`, `configuration file`, `client`, …
    public var source: String? = nil
    public var role: String? = nil
    public var database: String? = nil

    public init(setting: String, value: String? = nil, milliseconds: Double? = nil, source: String? = nil,
                role: String? = nil, database: String? = nil) {
        self.setting = setting
        self.value = value
        self.milliseconds = milliseconds
        self.source = source
        self.role = role
        self.database = database
    }

    /// Where the value came from, in words.
    var origin: String? {
        switch source {
        case "user"?: "the role's setting"
        case "database"?: "the database's setting"
        case "database user"?: "the role's setting in this database"
        case "configuration file"?: "the server's configuration"
        case "command line"?: "the server's command line"
        case "client"?: "the connection's options"
        case "session"?: "set in the session"
        case "default"?, nil: nil
        case let other?: "source: \(other)"
        }
    }

    /// What to give sms-retry's role: ten times the value, at least 5 s (30 s for a whole
    /// transaction), in whole seconds.
    var suggested: String {
        let floor: Double = setting == "transaction_timeout" ? 30_000 : 5_000
        let ms = max(floor, (milliseconds ?? 0) * 10)
        return "\(Int((ms / 1000).rounded(.up)))s"
    }

    /// The fix: a role setting wins over the database's and the server's; a role-in-database
    /// setting only over itself; the connection's own options are changed where they are given.
    var fix: String {
        let role = role.map(Self.identifier) ?? "<sms-retry's role>"
        switch source {
        case "client"?:
            return "give sms-retry more: change -c \(setting)=… in the connection's options (PGOPTIONS, or options= in DATABASE_URL)"
        case "session"?:
            return "give sms-retry more where its sessions are set up (a pooler's connect_query), or: ALTER ROLE \(role) SET \(setting) = '\(suggested)'"
        case "database user"?:
            let database = database.map(Self.identifier) ?? "<database>"
            return "give sms-retry's role more: ALTER ROLE \(role) IN DATABASE \(database) SET \(setting) = '\(suggested)'"
        default:
            return "give sms-retry's role more: ALTER ROLE \(role) SET \(setting) = '\(suggested)'"
        }
    }

    /// One line: `statement_timeout = 50ms (the role's setting) cancelled the record of 100 rows;
    /// give sms-retry's role more: ALTER ROLE sms SET statement_timeout = '5s'`. `what`: the work
    /// the statement did ("the record of 100 rows").
    public func line(_ what: String) -> String {
        var subject = setting
        if let value { subject += " = \(value)" } else { subject += " (its value could not be read)" }
        if let origin { subject += " (\(origin))" }
        let verb = setting == "idle_in_transaction_session_timeout" ? "closed the session during" : "cancelled"
        return "\(subject) \(verb) \(what); \(fix)"
    }

    /// An SQL identifier as written in a statement: bare when it is a plain lower-case name.
    static func identifier(_ name: String) -> String {
        let plain = name.first.map { $0 == "_" || ("a"..."z").contains($0) } == true
            && name.allSatisfy { $0 == "_" || ("a"..."z").contains($0) || ("0"..."9").contains($0) }
        return plain ? name : "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// `rows` rows, in words: "1 row", "100 rows".
    public static func rows(_ n: Int) -> String { n == 1 ? "1 row" : "\(n) rows" }

    /// The limit behind `error` as this session sees it now (after an
    /// `idle_in_transaction_session_timeout` the connection is re-established first); nil when
    /// the error is no timeout. Never throws: what cannot be read is left out of the line.
    public static func read(for error: DatabaseError, on database: Database) async -> ServerLimit? {
        guard let setting = error.timeoutSetting else { return nil }
        var limit = ServerLimit(setting: setting)
        guard let row = (try? await database.run(SettingSource(setting: setting)))?.first else { return limit }
        limit.value = row.value
        limit.source = row.source
        limit.role = row.role
        limit.database = row.database
        if let number = row.setting {
            let scale: [String: Double] = ["ms": 1, "s": 1000, "min": 60_000]
            limit.milliseconds = number * (scale[row.unit ?? "ms"] ?? 1)
        }
        return limit
    }
}
