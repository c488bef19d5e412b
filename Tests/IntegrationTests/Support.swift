import Foundation
import Synchronization
import Logging
import Testing
@testable import SMSRetry
import TwilioStandIn

/// Where the repository and the built binaries are.
enum Paths {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static let migrations = root + "/migrations"
    /// The folder holding the test bundle holds the executables too.
    static let binaries: String = {
        if let dir = ProcessInfo.processInfo.environment["SMS_RETRY_BIN"] { return dir }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
    }()
}

struct TestSetupError: Error, CustomStringConvertible { var description: String }

/// A database of its own for each test, on the server `make test` started (PG* variables).
struct TestDatabase {
    let name: String
    let db: Database
    var conninfo: String { "dbname=\(name)" }

    /// A new database: with `migrated`, a copy of the test process's migrated template (every
    /// migration applied, the router's table created); without, an empty one.
    static func make(migrated: Bool = true) async throws -> TestDatabase {
        guard ProcessInfo.processInfo.environment["PGHOST"] != nil || ProcessInfo.processInfo.environment["PGPORT"] != nil else {
            throw TestSetupError(description: "no PostgreSQL: run `make test`, which starts one, or set PGHOST/PGPORT")
        }
        let name = uniqueName("t_")
        let admin = try await Database.connect("dbname=postgres")
        // Identifiers, made here from hex digits: they cannot be bound parameters.
        if migrated {
            try await admin.query("CREATE DATABASE \(name) TEMPLATE \(try await MigratedTemplate.shared.name())")
        } else {
            try await admin.query("CREATE DATABASE \(name)")
        }
        return TestDatabase(name: name, db: try await Database.connect("dbname=\(name)"))
    }

    static func uniqueName(_ prefix: String) -> String {
        prefix + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    }

    @discardableResult
    func query(_ sql: String, _ params: [String?] = []) async throws -> PGRows { try await db.query(sql, params) }

    /// Inserts a row as the router writes it; returns its id.
    func insert(phone: String = "+14155550100", direction: String = "outbound", content: String? = "Your code is 123456",
                success: Bool = false, error: String? = "failed", metadata: String? = #"{"campaign": "otp"}"#) async throws -> Int {
        try await query("""
            INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content,
                                        success, error_message, sms_metadata)
            VALUES (1, $1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING id
            """, [phone, direction, String(content?.count ?? 0), content, success ? "t" : "f", error, metadata])[0].int("id")!
    }

    func row(_ id: Int) async throws -> PGRow {
        try await query("""
            SELECT id, success, retry_count, max_retries, final_status, twilio_message_sid, error_message,
                   next_retry_at IS NOT NULL AS pending,
                   extract(epoch FROM next_retry_at - now())::float8 AS due_in,
                   sms_metadata::text AS metadata, sms_retry::text AS state, sms_retry ->> 'error_message' AS retry_error,
                   sms_retry ->> 'reason' AS reason,
                   jsonb_array_length(sms_retry -> 'history') AS history_length,
                   sms_retry -> 'history' -> -1 ->> 'outcome' AS last_outcome
            FROM sms_usage_logs WHERE id = $1
            """, [String(id)])[0]
    }

    /// Makes every pending row due now, as if its delay had passed.
    func makeDue() async throws {
        try await query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), next_retry_at = now() - interval '1 second' WHERE next_retry_at IS NOT NULL")
    }

    /// A test clock a second after the last scheduled retry falls due: a run on it finds every
    /// scheduled row due without rewriting the rows (as `makeDue` does); its statements and its
    /// decisions read that time.
    func clockAtDue() async throws -> SMSRetryClock {
        let due = try await query("SELECT extract(epoch FROM max(next_retry_at))::float8 AS at FROM sms_usage_logs WHERE next_retry_at IS NOT NULL")
        return .manual(at: Date(timeIntervalSince1970: (due.first?.double("at") ?? Date().timeIntervalSince1970) + 1))
    }

    func store(_ policy: RetryPolicy = noJitter, clock: SMSRetryClock = .system) -> RetryStore {
        RetryStore(database: db, policy: policy, logger: quietLogger, clock: clock)
    }
}

/// The migrated database every test's own is copied from (`CREATE DATABASE … TEMPLATE`), made
/// once per test process, the first time a test asks: a copy costs PostgreSQL about a third of
/// creating a database and running every migration in it (0.3 s against 0.8 s, 2 cores). Nothing
/// stays connected to it, for PostgreSQL copies a database only when no session is in it.
actor MigratedTemplate {
    static let shared = MigratedTemplate()
    private var making: Task<String, Error>?

    func name() async throws -> String {
        if let making { return try await making.value }
        let task = Task { try await Self.make() }
        making = task
        return try await task.value
    }

    private static func make() async throws -> String {
        let name = TestDatabase.uniqueName("tpl_")
        let admin = try await Database.connect("dbname=postgres")
        try await admin.query("CREATE DATABASE \(name)")
        do {
            let db = try await Database.connect("dbname=\(name)")
            _ = try await Migrator(directory: Paths.migrations, logger: quietLogger).up(db, createTable: true)
        }   // the connection closes here, with its last reference
        for _ in 0..<250 {
            let sessions = try await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1", [name])[0].int("n")
            if sessions == 0 { return name }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestSetupError(description: "the migrated template \(name) still has sessions after 5 s")
    }
}

let noJitter: RetryPolicy = { var p = RetryPolicy.default; p.jitter = 0; return p }()
let quietLogger: Logger = { var l = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }; l.logLevel = .critical; return l }()

/// The stand-in on loopback and a client configured for it.
struct StandIn {
    static let account = "AC" + String(repeating: "0123456789abcdef", count: 2)
    static let token = "tok_RECOGNISABLE_9f8e7d"
    static let from = "+15005550006"
    let server: TwilioStandIn
    let baseURL: String
    let http: HTTPClient

    static func start(latency: Duration = .zero) async throws -> StandIn {
        let server = TwilioStandIn(accountSID: account, credentials: [account: token], latency: latency)
        let url = try await server.start()
        return StandIn(server: server, baseURL: url, http: HTTPClient())
    }

    func config(token: String = StandIn.token) -> TwilioConfig {
        TwilioConfig(accountSID: Self.account, username: Self.account, password: token, sender: .from(Self.from), baseURL: baseURL)
    }

    func client(token: String = StandIn.token) -> TwilioClient { TwilioClient(config: config(token: token), http: http) }

    /// A client of its own whose requests give up after `timeout` (a router's short read
    /// timeout, a send that times out while the stand-in hangs); shut its `http` down after use.
    func client(timeout: Duration) -> (client: TwilioClient, http: HTTPClient) {
        var options = HTTPClient.Options()
        options.timeout = timeout
        let http = HTTPClient(options: options)
        return (TwilioClient(config: config(), http: http), http)
    }

    var environment: [String: String] {
        ["TWILIO_ACCOUNT_SID": Self.account, "TWILIO_AUTH_TOKEN": Self.token, "TWILIO_FROM_NUMBER": Self.from,
         "TWILIO_API_BASE_URL": baseURL]
    }

    func stop() async {
        http.shutdown()
        await server.stop()
    }
}

/// One run of the runner with test-friendly options.
func runOnce(_ t: TestDatabase, _ standIn: StandIn, policy: RetryPolicy = noJitter, token: String = StandIn.token,
             clock: SMSRetryClock = .system, configure: (inout RunOptions) -> Void = { _ in }) async throws -> RunSummary {
    var options = RunOptions()
    options.batchSize = 50
    configure(&options)
    return try await RetryRunner(store: t.store(policy, clock: clock), twilio: standIn.client(token: token), options: options,
                                 logger: quietLogger).run()
}

/// Runs the built `sms-retry` binary; returns its exit code and output.
func runCLI(_ arguments: [String], environment: [String: String] = [:]) async throws -> (code: Int32, out: String, err: String) {
    let process = cliProcess(arguments, environment: environment)
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    // Read both pipes on threads of their own; wait for the exit without blocking the
    // cooperative pool (the stand-in answering this process runs on it).
    async let outData = readAll(out)
    async let errData = readAll(err)
    let code: Int32 = try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
        // Process.run() blocks until the child has started (Foundation closes every inherited
        // descriptor first): not on the cooperative pool.
        onThread {
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
    }
    return (code, String(decoding: await outData, as: UTF8.self), String(decoding: await errData, as: UTF8.self))
}

/// The `sms-retry` binary with this environment (the test's own Twilio and database settings removed).
func cliProcess(_ arguments: [String], environment: [String: String]) -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Paths.binaries + "/sms-retry")
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: Paths.root)
    var env = ProcessInfo.processInfo.environment
    for key in env.keys where key.hasPrefix("TWILIO_") || key == "DATABASE_URL" || key == "SMS_RETRY_POLICY" { env[key] = nil }
    env.merge(environment) { $1 }
    process.environment = env
    return process
}

/// Starts a long-running `sms-retry` command and returns it with the first line it printed
/// (with `firstLine: false`, at once).
func spawnCLI(_ arguments: [String], environment: [String: String] = [:],
              firstLine: Bool = true) async throws -> (process: Process, firstLine: String) {
    let process = cliProcess(arguments, environment: environment)
    let out = Pipe()
    process.standardOutput = firstLine ? out : FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    let started = process
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
        onThread { continuation.resume(with: Result { try started.run() }) }
    }
    guard firstLine else { return (process, "") }
    let line = await withCheckedContinuation { continuation in
        onThread {
            var bytes: [UInt8] = []
            while true {
                let chunk = out.fileHandleForReading.readData(ofLength: 1)
                guard let byte = chunk.first, byte != 10 else { break }
                bytes.append(byte)
            }
            continuation.resume(returning: String(decoding: bytes, as: UTF8.self))
        }
    }
    return (process, line)
}

private func readAll(_ pipe: Pipe) async -> Data {
    await withCheckedContinuation { continuation in
        onThread { continuation.resume(returning: pipe.fileHandleForReading.readDataToEndOfFile()) }
    }
}

/// Runs blocking work (a child's start, a read to its end) on a thread of its own. Not on
/// Dispatch's global queue: on Linux its pool has one thread per core and grows only about once
/// a second when they all block, and while four runs' pipes held them the stand-in's answers and
/// the next runs' starts waited seconds (the 4-run rate drill saw no sends, then a burst).
private func onThread(_ work: @escaping @Sendable () -> Void) {
    let thread = Thread(block: work)
    thread.stackSize = 512 * 1024
    thread.start()
}

/// Ports `freePort` has handed out in this test process.
private let portsHandedOut = Mutex<Set<Int>>([])

/// A port on 127.0.0.1 that nothing listens on (bound, then closed), never the same twice in one
/// test process: the kernel may hand a just-closed port to the next bind(0), and two tests
/// running in parallel then started their servers on one port (the second failed to bind and
/// its requests reached the first test's server).
func freePort() throws -> Int {
    for _ in 0..<100 {
        let port = try anyFreePort()
        if portsHandedOut.withLock({ $0.insert(port).inserted }) { return port }
    }
    throw TestSetupError(description: "no free port")
}

private func anyFreePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard ok else { throw TestSetupError(description: "no free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

extension StandIn {
    /// Waits (up to 12 s) until the stand-in has accepted `count` messages.
    func waitForAccepted(_ count: Int) async throws {
        var waited = 0
        while await server.acceptedTotal < count && waited < 600 {
            try await Task.sleep(for: .milliseconds(20))
            waited += 1
        }
    }
}

/// `psql -v ON_ERROR_STOP=1 -f migrations/FILE` on `database`, as a DBA would apply a file.
func psqlFile(_ file: String, _ database: String) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-f", Paths.migrations + "/" + file]
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, text)
}

/// `psql -X -A -t -v ON_ERROR_STOP=1 -c C1 -c C2 …` on `database`, as a person would type them:
/// exit status and standard output + standard error.
func psqlCommands(_ commands: [String], _ database: String) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database] + commands.flatMap { ["-c", $0] }
    let out = Pipe()
    p.standardError = out
    p.standardOutput = out
    try p.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, text)
}

/// Applies `upFiles` with psql, then every down above 001 newest first, each expected to succeed;
/// between the two, every migration must read as applied.
func psqlUpThenDown(_ t: TestDatabase, _ migrator: Migrator, upFiles: [String]) async throws {
    for file in upFiles {
        let (code, err) = try psqlFile(file, t.name)
        #expect(code == 0, "\(file): \(err)")
    }
    #expect(try await migrator.status(t.db).allSatisfy(\.applied))
    for file in migrator.migrations.dropFirst().reversed().map({ $0.name + ".down.sql" }) {
        let (code, err) = try psqlFile(file, t.name)
        #expect(code == 0, "\(file): \(err)")
    }
}

extension TestDatabase {
    /// EXPLAIN of the claim statement for a batch of 100, its parameters bound as the run binds
    /// them (`ClaimDue.parameters`): the plan's text.
    func claimPlan() async throws -> String {
        let claim = ClaimDue(limit: 100, lease: 300, now: nil, runID: "r", uncertainOnly: false, keyPaths: MessageKeys().paths)
        return try await db.query("EXPLAIN " + ClaimDue.sql, claim.parameters).rows.compactMap { $0.first ?? nil }.joined(separator: "\n")
    }
}

extension String {
    /// As an SQL string literal (test SQL only; runtime SQL binds its values).
    var quotedLiteral: String { "'" + replacingOccurrences(of: "'", with: "''") + "'" }
}

/// Time in the integration tests: an in-process run (`runOnce`, a `RetryRunner`, `Reconciler` or
/// `RetryStore` made in the test) reads a test clock (`clockAtDue()`, `advance(by:)`) and the rows
/// stay as the product wrote them. `makeDue()` is for runs of the built binary (`runCLI`,
/// `spawnCLI`: a process of its own on the system clock), and for the runs whose Twilio lookups
/// compare the run's send time with the stand-in's, which stamps messages on the system clock.
extension TestDatabase {
    /// `row(_:)` read at `clock`'s time: `due_in` counts from the clock's "now" (a test clock's
    /// wall time, the server's `now()` for the system clock), as a run on that clock sees the row.
    /// A run on a moved clock writes its times from that clock, so "due in 600 s" is counted from it.
    func row(_ id: Int, at clock: SMSRetryClock) async throws -> PGRow {
        try await query("""
            SELECT id, success, retry_count, max_retries, final_status, twilio_message_sid, error_message,
                   next_retry_at IS NOT NULL AS pending,
                   extract(epoch FROM next_retry_at - COALESCE($2::timestamptz, now()))::float8 AS due_in,
                   sms_metadata::text AS metadata, sms_retry::text AS state, sms_retry ->> 'error_message' AS retry_error,
                   sms_retry ->> 'reason' AS reason,
                   jsonb_array_length(sms_retry -> 'history') AS history_length,
                   sms_retry -> 'history' -> -1 ->> 'outcome' AS last_outcome
            FROM sms_usage_logs WHERE id = $1
            """, [String(id), clock.statementNow.map(JSONText.timestamp)])[0]
    }

    /// `clockAtDue()`'s wall time on the system's monotonic clock (`SMSRetryClock.at`): for work
    /// that waits on the clock while it runs (a store's pauses between pieces of a record held
    /// by a lock), which a manual clock nobody advances would hold forever.
    func wallClockAtDue() async throws -> SMSRetryClock {
        .at(try await clockAtDue().wallNow())
    }
}
