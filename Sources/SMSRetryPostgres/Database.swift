import Dispatch
import Logging
import Synchronization

/// The thread-safe door to one PostgreSQL connection.
///
/// libpq calls block, and Swift's cooperative pool has one thread per core (two here), so every
/// round trip runs on this object's own serial dispatch queue; only `Sendable` values cross back
/// into async code.
///
/// A connection the server dropped (a restart, a failover, a network cut) is re-established on
/// the next use, with the same parameters: the statement that met the loss fails with a
/// connection error (whether it took effect is unknown, so it is never re-run here), and later
/// ones reconnect first, at most once per backoff step (0.1 s doubling to 2 s) while the server
/// stays away. Long-lived users (`serve-callbacks`, a run, `reconcile`) so recover by
/// themselves; `surviving` retries work that is safe to repeat.
public final class Database: Sendable {
    private struct Link {
        var connection: PGConnection
        /// No reconnect attempt before this moment (the backoff after a failed one).
        var nextReset = ContinuousClock.now
        var backoff = Duration.milliseconds(100)
    }
    private let link: Mutex<Link>
    private let queue = DispatchQueue(label: "sms-retry.database")
    /// Session settings (`set_config(name, value)`) made on connecting and after every reconnect.
    private let settings: [(name: String, value: String)]

    /// Opens a connection. `conninfo` as for psql: `""` uses `PGHOST`, `PGPORT`, `PGUSER`,
    /// `PGDATABASE`, `PGPASSWORD`, `.pgpass` and service files. `settings` are made for the
    /// session, and again whenever the connection is re-established.
    public init(conninfo: String, settings: [(name: String, value: String)] = []) throws(DatabaseError) {
        let connection = try PGConnection(conninfo: conninfo)
        try Self.apply(settings, on: connection)
        self.settings = settings
        link = Mutex(Link(connection: connection))
    }

    /// Opens a connection off the cooperative pool (a connect can take a while), on a serial
    /// queue of its own: Dispatch gives those a thread at once, where its global queue may make
    /// blocking work wait for a free thread.
    public static func connect(_ conninfo: String, settings: [(name: String, value: String)] = []) async throws -> Database {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue(label: "sms-retry.connect").async {
                continuation.resume(with: Result { try Database(conninfo: conninfo, settings: settings) })
            }
        }
    }

    private static func apply(_ settings: [(name: String, value: String)], on connection: PGConnection) throws(DatabaseError) {
        for (name, value) in settings { try connection.execute("SELECT set_config($1, $2, false)", [name, value]) }
    }

    /// Runs `body` with the connection on the database queue.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result {
                    try self.link.withLock { link in
                        if !link.connection.isOK { try self.reestablish(&link, force: false) }
                        return try body(link.connection)
                    }
                })
            }
        }
    }

    /// `PQreset` when the backoff allows (or `force`); throws a connection error while the
    /// server is still away.
    private func reestablish(_ link: inout Link, force: Bool) throws(DatabaseError) {
        let now = ContinuousClock.now
        guard force || now >= link.nextReset else {
            throw DatabaseError(kind: .connection, message: "the connection to the database was lost; reconnecting")
        }
        if link.connection.reset() {
            link.backoff = .milliseconds(100)
            link.nextReset = now
            try Self.apply(settings, on: link.connection)
            return
        }
        link.nextReset = now + link.backoff
        link.backoff = min(link.backoff * 2, .seconds(2))
        throw DatabaseError(kind: .connection, message: link.connection.errorMessage)
    }

    /// Reconnects with the same parameters now, whatever the backoff. Returns whether the
    /// connection is up again.
    @discardableResult
    public func reconnect() async -> Bool {
        await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(returning: self.link.withLock { link in
                    (try? self.reestablish(&link, force: true)) != nil
                })
            }
        }
    }

    /// Runs `work`, and again after a reconnect when it failed because the connection was lost,
    /// for up to `budget` (waiting 0.5 s, doubling to 4 s, between tries). Only for work that is
    /// safe to repeat: a statement whose effect did commit must be a no-op the second time (a
    /// lease-guarded record, a claim that takes other rows, a rank-guarded status).
    public func surviving<T: Sendable>(budget: Duration = .seconds(15), logger: Logger? = nil, _ what: String,
                                       _ work: () async throws -> T) async throws -> T {
        let clock = ContinuousClock()
        let giveUp = clock.now + budget
        var wait = Duration.milliseconds(500)
        while true {
            do {
                return try await work()
            } catch let error as DatabaseError where error.isConnectionLoss && clock.now + wait < giveUp {
                logger?.warning("database connection lost; reconnecting",
                                metadata: ["db.error": "\(error)", "db.work": "\(what)", "db.retry_in": "\(wait)"])
                try await Task.sleep(for: wait)
                wait = min(wait * 2, .seconds(4))
                await reconnect()
            }
        }
    }

    /// One parameterized statement.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) async throws -> PGRows {
        try await withConnection { try $0.execute(sql, parameters) }
    }

    /// One named statement (an error names it).
    @discardableResult
    public func query(_ statement: some SQLStatement, _ parameters: [String?] = []) async throws -> PGRows {
        try await withConnection { try $0.execute(statement, parameters) }
    }

    /// Runs `body` between BEGIN and COMMIT on the database queue; ROLLBACK when it throws.
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
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
