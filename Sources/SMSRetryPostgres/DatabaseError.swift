/// An error from PostgreSQL or from libpq.
///
/// `description` carries the SQLSTATE and the server's primary message only, with the values
/// that data and constraint errors quote left out: phone numbers and message bodies never reach a
/// log through it, and neither does the conninfo, which may hold a password.
public struct DatabaseError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// The server could not be reached, refused the login, or the connection was lost.
        case connection
        /// The server rejected a statement.
        case query
    }

    public var kind: Kind
    /// The five-character SQLSTATE, when the server sent one.
    public var sqlState: String?
    public var message: String
    /// The named statement that failed (`claimDue`), when it was one.
    public var statement: String?

    public init(kind: Kind, sqlState: String? = nil, message: String, statement: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.statement = statement
    }

    /// True for errors that mean "the database is not there" rather than "this statement was
    /// wrong": libpq connection failures, SQLSTATE class 08 and the shutdown codes 57P01-57P03.
    public var isConnectionLoss: Bool {
        if kind == .connection { return true }
        guard let state = sqlState else { return false }
        return state.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(state)
    }

    /// `55P03` lock_not_available: a `lock_timeout` expired. Worth retrying.
    public var isLockTimeout: Bool { sqlState == "55P03" }

    /// The server setting (a DBA's, on the role, the database or the server) whose limit ended
    /// the statement or the session, or nil: `statement_timeout` (57014 query_canceled, unless
    /// someone cancelled it by hand: sms-retry never cancels its own statements),
    /// `lock_timeout` (55P03: sms-retry takes no lock with NOWAIT),
    /// `idle_in_transaction_session_timeout` (25P03, the session then closed) and
    /// `transaction_timeout` (25P04, PostgreSQL 17). A session the server ended while idle
    /// reaches libpq as a lost connection with the server's FATAL text and often no SQLSTATE
    /// (seen on 15): that text names the setting.
    public var timeoutSetting: String? {
        switch sqlState {
        case "57014": return message.contains("user request") ? nil : "statement_timeout"
        case "55P03": return "lock_timeout"
        case "25P03": return "idle_in_transaction_session_timeout"
        case "25P04": return "transaction_timeout"
        case nil where kind == .connection:
            if message.contains("idle-in-transaction timeout") { return "idle_in_transaction_session_timeout" }
            if message.contains("due to transaction timeout") { return "transaction_timeout" }
            return nil
        default: return nil
        }
    }

    /// A DBA's time limit ended the statement (`timeoutSetting`).
    public var isTimeout: Bool { timeoutSetting != nil }

    public var description: String {
        var text = message.trimmingCharacters(in: .whitespacesAndNewlines)
        // Data exceptions (22xxx) and constraint violations (23xxx) quote the offending value,
        // which may be a phone number or a message body: keep the sentence, drop the value.
        if let state = sqlState, state.hasPrefix("22") || state.hasPrefix("23") {
            text = Self.redactingQuoted(text)
        }
        let in_ = statement.map { " in \($0)" } ?? ""
        if let state = sqlState { return "database error \(state)\(in_): \(text)" }
        return "database error\(in_): \(text)"
    }

    static func redactingQuoted(_ text: String) -> String {
        var out = ""
        var inside = false
        for ch in text {
            if ch == "\"" {
                out.append(ch)
                if !inside { out += "…" }
                inside.toggle()
            } else if !inside {
                out.append(ch)
            }
        }
        return out
    }
}
