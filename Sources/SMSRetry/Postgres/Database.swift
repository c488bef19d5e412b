import Dispatch
import Synchronization

/// The thread-safe door to one PostgreSQL connection.
///
/// libpq calls block, and Swift's cooperative pool has one thread per core (two here), so every
/// round trip runs on this object's own serial dispatch queue; only `Sendable` values cross back
/// into async code.
public final class Database: Sendable {
    private let connection: Mutex<PGConnection>
    private let queue = DispatchQueue(label: "sms-retry.database")

    /// Opens a connection. `conninfo` as for psql: `""` uses `PGHOST`, `PGPORT`, `PGUSER`,
    /// `PGDATABASE`, `PGPASSWORD`, `.pgpass` and service files.
    public init(conninfo: String) throws(DatabaseError) {
        connection = Mutex(try PGConnection(conninfo: conninfo))
    }

    /// Opens a connection off the cooperative pool (a connect can take a while).
    public static func connect(_ conninfo: String) async throws -> Database {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try Database(conninfo: conninfo) })
            }
        }
    }

    /// Runs `body` with the connection on the database queue.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try self.connection.withLock { try body($0) } })
            }
        }
    }

    /// Reconnects with the same parameters after the server went away. Returns whether the
    /// connection is up again.
    @discardableResult
    public func reconnect() async -> Bool {
        (try? await withConnection { $0.reset() }) ?? false
    }

    /// One parameterized statement.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) async throws -> PGRows {
        try await withConnection { try $0.execute(sql, parameters) }
    }

    /// Runs `body` between BEGIN and COMMIT on the database queue; ROLLBACK when it throws.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        try await withConnection { conn in
            try conn.executeScript("BEGIN")
            do {
                let value = try body(conn)
                try conn.executeScript("COMMIT")
                return value
            } catch {
                if conn.isOK { _ = try? conn.executeScript("ROLLBACK") }
                throw error
            }
        }
    }
}
