import Foundation

/// Whether a connection can take sms-retry's writes. A hot standby (`pg_is_in_recovery()` is
/// true) serves reads only, and so does a session whose `transaction_read_only` is on (a cloud
/// provider's reader endpoint, or `default_transaction_read_only` set on the role or database).
/// `stats`, `health` and the analytics views only read, so they work on either; every command
/// that writes asks once after connecting and refuses before it does anything (the CLI's exit 2),
/// rather than failing later on SQLSTATE 25006 with part of its work done (a run that sent a
/// message and could not record it).
public enum DatabaseAccess: Sendable, Equatable {
    case readWrite
    /// A hot standby: the server is replaying the primary's WAL, and every write fails.
    case standby
    /// Not in recovery, yet the session starts read-only.
    case readOnlySession

    public init(inRecovery: Bool, transactionReadOnly: Bool) {
        self = inRecovery ? .standby : transactionReadOnly ? .readOnlySession : .readWrite
    }

    /// Asks the server (one round trip).
    public static func of(_ database: Database) async throws -> DatabaseAccess {
        guard let row = try await database.run(ServerAccess()).first,
              let inRecovery = row.inRecovery, let readOnly = row.readOnly else {
            throw DatabaseError(kind: .query, message: "pg_is_in_recovery() returned no row", statement: ServerAccess.name)
        }
        return DatabaseAccess(inRecovery: inRecovery, transactionReadOnly: readOnly)
    }

    public var allowsWrites: Bool { self == .readWrite }

    /// What the database is, for a person: nil where it takes writes.
    public var summary: String? {
        switch self {
        case .readWrite: nil
        case .standby: "a read-only standby (pg_is_in_recovery() is true)"
        case .readOnlySession:
            "read-only for this session (transaction_read_only is on: a read-only standby's endpoint, or default_transaction_read_only set on the role or database)"
        }
    }

    /// The one line a command that writes ends with here, naming the command and what to do;
    /// nil where writes are possible.
    public func refusal(command: String) -> String? {
        guard let summary else { return nil }
        let fix = self == .standby
            ? "point --database-url (or DATABASE_URL, PGHOST/PGPORT) at the primary"
            : "point --database-url (or DATABASE_URL, PGHOST/PGPORT) at the primary's read-write endpoint, or connect as a role without default_transaction_read_only"
        return "the database is \(summary), and \(command) writes to it: nothing was done; \(fix) (stats, health and the sms_retry_* views work on a standby)"
    }
}
