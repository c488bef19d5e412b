import CLibPQ
import Foundation

/// One libpq connection. Owns the `PGconn*`, frees it in `deinit`; not `Sendable`: `Database`
/// is the thread-safe door to it.
///
/// Every statement with values goes through `PQexecParams`: values travel as separate text
/// parameters and are never spliced into SQL text.
public final class PGConnection {
    private let handle: OpaquePointer

    /// `conninfo` is anything `PQconnectdb` takes: `""` (the `PG*` environment, `.pgpass` and
    /// service files, as psql), `key=value` pairs, or a `postgresql://` URI.
    public init(conninfo: String) throws(DatabaseError) {
        // Defaults that the conninfo (a URI, key=value pairs, a service) and PG* variables
        // override: "when key words are repeated, the last processed value is retained", and the
        // conninfo is expanded from `dbname`, which comes last. Without a connect_timeout libpq
        // waits on an unreachable server for as long as TCP does; the keepalives notice a server
        // that vanished mid-query within a minute instead of the kernel's two hours.
        var defaults: [(String, String)] = [("fallback_application_name", "sms-retry"), ("keepalives_idle", "30"),
                                            ("keepalives_interval", "10"), ("keepalives_count", "3")]
        if ProcessInfo.processInfo.environment["PGCONNECT_TIMEOUT"] == nil { defaults.append(("connect_timeout", "10")) }
        let keywords = defaults.map { strdup($0.0) } + [strdup("dbname"), nil]
        let values = defaults.map { strdup($0.1) } + [strdup(conninfo), nil]
        defer { (keywords + values).forEach { free($0) } }
        let connection = keywords.map { $0.map { UnsafePointer($0) } }.withUnsafeBufferPointer { k in
            values.map { $0.map { UnsafePointer($0) } }.withUnsafeBufferPointer { v in
                PQconnectdbParams(k.baseAddress, v.baseAddress, 1)
            }
        }
        guard let conn = connection else {
            throw DatabaseError(kind: .connection, message: "out of memory while connecting")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(conn))
            PQfinish(conn)
            throw DatabaseError(kind: .connection, message: message)
        }
        handle = conn
        // "The default notice processor ... prints the message on stderr." Kept here instead:
        // runtime work drops them, `migrate` prints them as psql does (`drainNotices`).
        PQsetNoticeProcessor(handle, { context, message in
            guard let context, let message else { return }
            Unmanaged<NoticeBox>.fromOpaque(context).takeUnretainedValue().messages.append(String(cString: message))
        }, Unmanaged.passUnretained(notices).toOpaque())
    }

    /// The server's NOTICE/WARNING messages since the last drain (at most 100 kept).
    private let notices = NoticeBox()

    final class NoticeBox {
        var messages: [String] = [] { didSet { if messages.count > 100 { messages.removeFirst() } } }
    }

    public func drainNotices() -> [String] {
        defer { notices.messages.removeAll() }
        return notices.messages
    }

    deinit { PQfinish(handle) }

    public var isOK: Bool { PQstatus(handle) == CONNECTION_OK }

    /// libpq's last error text for this connection (never the password).
    public var errorMessage: String { String(cString: PQerrorMessage(handle)) }

    /// "PQreset: Resets the communication channel to the server ... closes the connection to the
    /// server and attempts to establish a new connection, using all the same parameters
    /// previously used." Returns whether the new connection is up.
    @discardableResult
    public func reset() -> Bool {
        PQreset(handle)
        prepared.removeAll()    // a new session has none
        return isOK
    }

    /// Whether named statements are prepared once per connection and then only executed, so the
    /// server parses and plans each once instead of on every call (on a batch of 100 the claim's
    /// planning alone took ~3 ms). `Database` turns it off on a connection whose session does not
    /// last between transactions (`Pooling.transaction`); `SMS_RETRY_PREPARED_STATEMENTS=off`
    /// turns it off everywhere.
    public static let preparesByDefault: Bool = {
        let value = ProcessInfo.processInfo.environment["SMS_RETRY_PREPARED_STATEMENTS"]?.lowercased()
        return !["off", "0", "false", "no"].contains(value ?? "on")
    }()
    public var prepares = PGConnection.preparesByDefault

    /// The statements this session has prepared.
    private var prepared: Set<String> = []

    /// The process ID in the cancel key the server (or a pooler) sent at login.
    public var keyPID: Int32 { PQbackendPID(handle) }

    /// A statement's server-side name: `sms_retry_<name>_<hash of its text>`. Where a pooler
    /// shares server sessions between clients, a name another client prepared there is then
    /// the same text: an sms-retry of another version cannot run a statement under this name.
    static func serverName(_ statement: some SQLStatement) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325   // FNV-1a, 64 bits
        for byte in statement.sql.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return "sms_retry_\(statement.name)_" + String(hash, radix: 36)
    }

    /// `pg_backend_pid()`, or nil when no answer comes within `timeout` (a pooler whose every
    /// server connection is taken makes a query wait).
    public func serverPID(timeout: Duration) -> Int32? {
        guard PQsendQuery(handle, "SELECT pg_backend_pid()") == 1 else { return nil }
        let deadline = ContinuousClock.now + timeout
        while PQisBusy(handle) == 1 {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return nil }
            var poller = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            let ms = Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
            _ = poll(&poller, 1, max(1, ms))
            guard PQconsumeInput(handle) == 1 else { return nil }
        }
        var pid: Int32?
        while let result = PQgetResult(handle) {
            if PQresultStatus(result) == PGRES_TUPLES_OK, PQntuples(result) == 1 {
                pid = Int32(String(cString: PQgetvalue(result, 0, 0)))
            }
            PQclear(result)
        }
        return pid
    }

    /// Runs one statement with `$n` parameters (text format; `nil` is SQL NULL).
    @discardableResult
    public func execute(_ sql: String, _ parameters: [String?] = []) throws(DatabaseError) -> PGRows {
        try consume(withValues(parameters) { count, values in
            PQexecParams(handle, sql, count, nil, values, nil, nil, 0)
        })
    }

    /// Parameters as C strings for the length of `body`. A NUL byte cannot travel, so it is dropped.
    private func withValues(_ parameters: [String?],
                            _ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> OpaquePointer?) -> OpaquePointer? {
        let cStrings: [UnsafeMutablePointer<CChar>?] = parameters.map { value in
            // (utf8.contains, not String.contains: on Linux the latter goes through
            // Foundation's CFStringFind, which a profile showed on every batch's record.)
            value.map { strdup($0.utf8.contains(0) ? String(decoding: $0.utf8.filter { $0 != 0 }, as: UTF8.self) : $0) }
        }
        defer { cStrings.forEach { free($0) } }
        let values: [UnsafePointer<CChar>?] = cStrings.map { $0.map { UnsafePointer($0) } }
        return values.withUnsafeBufferPointer { buffer in body(Int32(buffer.count), buffer.isEmpty ? nil : buffer.baseAddress) }
    }

    /// Runs a named statement, prepared on first use in this session (see `prepares`); an error
    /// names it.
    @discardableResult
    public func execute(_ statement: some SQLStatement, _ parameters: [String?] = []) throws(DatabaseError) -> PGRows {
        do {
            guard prepares else { return try execute(statement.sql, parameters) }
            let serverName = Self.serverName(statement)
            do {
                return try executePrepared(serverName, statement.sql, parameters)
            } catch let error where error.sqlState == "26000" || error.sqlState == "0A000" {
                // 26000 "prepared statement does not exist": the session was replaced under us
                // (a pooler, DISCARD ALL). 0A000 "cached plan must not change result type": a
                // column's type changed since it was prepared. Prepare again, once.
                if error.sqlState == "0A000" { _ = try? executeScript("DEALLOCATE " + serverName) }
                prepared.remove(serverName)
                return try executePrepared(serverName, statement.sql, parameters)
            }
        } catch {
            var named = error
            named.statement = statement.name
            throw named
        }
    }

    private func executePrepared(_ serverName: String, _ sql: String, _ parameters: [String?]) throws(DatabaseError) -> PGRows {
        if !prepared.contains(serverName) {
            do {
                _ = try consume(PQprepare(handle, serverName, sql, 0, nil))
            } catch let error where error.sqlState == "42P05" && PQtransactionStatus(handle) == PQTRANS_IDLE {
                // "already exists": a pooler shares this server session with another client that
                // prepared it, under a name that carries the same text's hash (`serverName`).
            }
            prepared.insert(serverName)
        }
        return try consume(withValues(parameters) { count, values in
            PQexecPrepared(handle, serverName, count, values, nil, nil, 0)
        })
    }

    /// The names of the columns `sql` returns, as the server describes it (the unnamed prepared
    /// statement; nothing runs): the PREPARE test checks typed statements' rows against it.
    public func describeColumns(_ sql: String) throws(DatabaseError) -> [String] {
        _ = try consume(PQprepare(handle, "", sql, 0, nil))
        guard let result = PQdescribePrepared(handle, "") else {
            throw DatabaseError(kind: .connection, message: String(cString: PQerrorMessage(handle)))
        }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COMMAND_OK else {
            throw DatabaseError(kind: .query, message: String(cString: PQerrorMessage(handle)))
        }
        return (0..<PQnfields(result)).map { String(cString: PQfname(result, $0)) }
    }

    /// Runs SQL text without parameters through `PQexec` (migration files, `BEGIN`/`COMMIT`).
    /// "If the command string contains multiple SQL commands, they are processed in a single
    /// transaction" (libpq docs): callers send one statement at a time.
    @discardableResult
    public func executeScript(_ sql: String) throws(DatabaseError) -> PGRows {
        try consume(PQexec(handle, sql))
    }

    private func consume(_ result: OpaquePointer?) throws(DatabaseError) -> PGRows {
        guard let result else {
            throw DatabaseError(kind: .connection, message: String(cString: PQerrorMessage(handle)))
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return PGRows(columns: [], rows: [], affected: Self.affected(result))
        case PGRES_TUPLES_OK:
            return PGRows(result: result)
        default:
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let primary = PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }
                ?? String(cString: PQerrorMessage(handle))
            throw DatabaseError(kind: isOK ? .query : .connection, sqlState: state, message: primary)
        }
    }

    private static func affected(_ result: OpaquePointer) -> Int {
        Int(String(cString: PQcmdTuples(result))) ?? 0
    }
}
