/// What a connection's server session keeps from one transaction to the next: a pooler in
/// between may run each transaction on another server connection.
public enum Pooling: String, Sendable {
    /// Straight to PostgreSQL (or through a proxy that passes the session through).
    case direct
    /// A pooler that gives this client one server session for as long as it stays connected
    /// (PgBouncer's `pool_mode = session`): as good as direct for everything sms-retry does.
    case session
    /// A pooler that may run each transaction on another server connection (PgBouncer's
    /// `pool_mode = transaction` or `statement`): a prepared statement, a session setting or a
    /// session advisory lock is not there in the next transaction, and stays behind on the server
    /// connection for whichever client gets it next.
    case transaction

    /// The mode `SMS_RETRY_POOL_MODE` states, if set: the operator's word where the probe cannot
    /// tell (a pool so busy that another client takes this one's backend between its reads).
    public static func stated(_ environment: [String: String]) throws(DatabaseError) -> Pooling? {
        guard let stated = environment["SMS_RETRY_POOL_MODE"], !stated.isEmpty else { return nil }
        guard let mode = Pooling(rawValue: stated.lowercased()) else {
            throw DatabaseError(kind: .query, message: "SMS_RETRY_POOL_MODE=\(stated): must be direct, session or transaction")
        }
        return mode
    }

    /// Whether session state lasts from one transaction to the next.
    public var keepsSession: Bool { self != .transaction }

    /// How the mode is told, from process IDs only (nothing is left anywhere):
    /// - `keyPID`: the process ID in the key the client got at login (`PQbackendPID`). PostgreSQL
    ///   sends its backend's; a pooler sends one of its own making.
    /// - `serverPID`: `pg_backend_pid()` read on this connection.
    /// - `rounds`: read only when the two differ: for each probe round, `pg_backend_pid()` on
    ///   this connection, then on a second connection opened alongside, then on this one again
    ///   (`nil`: that read did not answer in time).
    ///
    /// A pooler in session mode pins one server connection to each client: this connection reads
    /// the same process each time, and the second one another process. In transaction mode a
    /// server connection goes back to the pool after each transaction and the pool hands out the
    /// one used last: the second connection gets this one's process, or this one gets another.
    /// A read that did not answer cannot tell, and counts as transaction mode: the mode that
    /// keeps less is the safe guess.
    public static func judge(keyPID: Int32, serverPID: Int32,
                             rounds: [(first: Int32?, other: Int32?, again: Int32?)]) -> Pooling {
        if keyPID == serverPID { return .direct }
        guard !rounds.isEmpty else { return .transaction }
        for round in rounds {
            guard let first = round.first, let other = round.other, let again = round.again else { return .transaction }
            if first != serverPID || other == first || again != first { return .transaction }
        }
        return .session
    }
}
