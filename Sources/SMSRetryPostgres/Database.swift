import Dispatch
import Foundation
import Logging
import SMSRetryTime
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
/// stays away, on `clock` (`SMSRetryClock`). Long-lived users (`serve-callbacks`, a run, `reconcile`) so recover by
/// themselves; `surviving` retries work that is safe to repeat.
public final class Database: Sendable {
    private struct Link {
        var connection: PGConnection
        /// No reconnect attempt before this moment (the backoff after a failed one).
        var nextReset: SMSRetryClock.Instant
        var backoff = Duration.milliseconds(100)
        /// Settings (`set_config(name, value)`) every statement runs under: made for the session
        /// on connecting and after every reconnect, or, where the session does not last
        /// (`Pooling.transaction`), for each transaction (`set_config(..., true)`).
        var settings: [(name: String, value: String)]
    }
    private let link: Mutex<Link>
    private let queue = DispatchQueue(label: "sms-retry.database")
    /// What the connection's session keeps between transactions (a pooler may be in between).
    public let pooling: Pooling
    /// The reconnect backoff's and `surviving`'s time.
    public let clock: SMSRetryClock

    /// Opens a connection. `conninfo` as for psql: `""` uses `PGHOST`, `PGPORT`, `PGUSER`,
    /// `PGDATABASE`, `PGPASSWORD`, `.pgpass` and service files. Every statement runs under
    /// `settings`, whatever is between this process and PostgreSQL (`Pooling`).
    public init(conninfo: String, settings: [(name: String, value: String)] = [], clock: SMSRetryClock = .system) throws(DatabaseError) {
        self.clock = clock
        let connection = try PGConnection(conninfo: conninfo)
        pooling = try Self.pooling(of: connection, conninfo: conninfo)
        connection.prepares = PGConnection.preparesByDefault && pooling.keepsSession
        if pooling.keepsSession { try Self.apply(settings, on: connection) }
        link = Mutex(Link(connection: connection, nextReset: clock.now, settings: settings))
    }

    /// Each conninfo's mode, told once per process.
    private static let known = Mutex<[String: Pooling]>([:])

    /// Tells how `connection` reaches PostgreSQL (`Pooling.judge`): one query when it is direct;
    /// through a pooler, three rounds with a second connection opened for the purpose, closed
    /// after. Nothing is left behind either way.
    private static func pooling(of connection: PGConnection, conninfo: String) throws(DatabaseError) -> Pooling {
        if let mode = known.withLock({ $0[conninfo] }) { return mode }
        if let mode = try Pooling.stated(ProcessInfo.processInfo.environment) { return mode }
        guard let serverPID = connection.serverPID(timeout: .seconds(30)) else {
            throw DatabaseError(kind: .connection, message: "the database did not answer SELECT pg_backend_pid() within 30 s")
        }
        var rounds: [(first: Int32?, other: Int32?, again: Int32?)] = []
        if connection.keyPID != serverPID {
            let other = try? PGConnection(conninfo: conninfo)
            for _ in 0..<3 {
                let first = connection.serverPID(timeout: .seconds(2))
                let second = other?.serverPID(timeout: .seconds(2))
                rounds.append((first, second, connection.serverPID(timeout: .seconds(2))))
            }
        }
        let mode = Pooling.judge(keyPID: connection.keyPID, serverPID: serverPID, rounds: rounds)
        known.withLock { $0[conninfo] = mode }
        return mode
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

    /// `local`: for the current transaction only.
    private static func apply(_ settings: [(name: String, value: String)], on connection: PGConnection,
                              local: Bool = false) throws(DatabaseError) {
        for (name, value) in settings {
            try connection.execute("SELECT set_config($1, $2, $3)", [name, value, local ? "t" : "f"])
        }
    }

    /// Adds (or changes) a setting every later statement runs under.
    public func set(_ name: String, _ value: String) async throws {
        try await withLink { link in
            link.settings.removeAll { $0.name == name }
            link.settings.append((name, value))
            if self.pooling.keepsSession { try Self.apply([(name, value)], on: link.connection) }
        }
    }

    /// Runs `body` with the connection on the database queue.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        try await withLink { link in try body(link.connection) }
    }

    /// Runs `body` as one statement would: where settings must be made for each transaction
    /// (`Pooling.transaction`), inside a transaction that makes them first.
    private func withStatement<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        try await withLink { link in
            guard !self.pooling.keepsSession, !link.settings.isEmpty else { return try body(link.connection) }
            return try Self.inTransaction(link.connection, settings: link.settings, body)
        }
    }

    private func withLink<T: Sendable>(_ body: @escaping @Sendable (inout Link) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result {
                    try self.link.withLock { link in
                        if !link.connection.isOK { try self.reestablish(&link, force: false) }
                        return try body(&link)
                    }
                })
            }
        }
    }

    /// `PQreset` when the backoff allows (or `force`); throws a connection error while the
    /// server is still away.
    private func reestablish(_ link: inout Link, force: Bool) throws(DatabaseError) {
        let now = clock.now
        guard force || now >= link.nextReset else {
            throw DatabaseError(kind: .connection, message: "the connection to the database was lost; reconnecting")
        }
        if link.connection.reset() {
            link.backoff = .milliseconds(100)
            link.nextReset = now
            link.connection.prepares = PGConnection.preparesByDefault && pooling.keepsSession
            if pooling.keepsSession { try Self.apply(link.settings, on: link.connection) }
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
    /// lease-guarded record, a claim that takes other rows, a rank-guarded status). Waits on
    /// `clock` (the caller's, e.g. the store's), else the database's.
    public func surviving<T: Sendable>(budget: Duration = .seconds(15), logger: Logger? = nil, clock: SMSRetryClock? = nil,
                                       _ what: String, _ work: () async throws -> T) async throws -> T {
        let clock = clock ?? self.clock
        let giveUp = clock.now + budget
        var wait = Duration.milliseconds(500)
        while true {
            do {
                return try await work()
            } catch let error as DatabaseError where error.isConnectionLoss && clock.now + wait < giveUp {
                logger?.warning("database connection lost; reconnecting",
                                metadata: ["db.error": "\(error)", "db.work": "\(what)", "db.retry_in": "\(wait)"])
                try await clock.sleep(for: wait)
                wait = min(wait * 2, .seconds(4))
                await reconnect()
            }
        }
    }

    /// One parameterized statement.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) async throws -> PGRows {
        try await withStatement { try $0.execute(sql, parameters) }
    }

    /// One named statement (an error names it).
    @discardableResult
    public func query(_ statement: some SQLStatement, _ parameters: [String?] = []) async throws -> PGRows {
        try await withStatement { try $0.execute(statement, parameters) }
    }

    /// Runs `body` between BEGIN and COMMIT on the database queue; ROLLBACK when it throws.
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        try await withLink { link in
            try Self.inTransaction(link.connection, settings: self.pooling.keepsSession ? [] : link.settings, body)
        }
    }

    private static func inTransaction<T>(_ conn: PGConnection, settings: [(name: String, value: String)],
                                         _ body: (PGConnection) throws -> T) throws -> T {
        try conn.executeScript("BEGIN")
        do {
            try apply(settings, on: conn, local: true)
            let value = try body(conn)
            try conn.executeScript("COMMIT")
            return value
        } catch {
            if conn.isOK { _ = try? conn.executeScript("ROLLBACK") }
            throw error
        }
    }
}
