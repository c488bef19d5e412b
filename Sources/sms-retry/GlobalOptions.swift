import ArgumentParser
import Foundation
import Logging
import SMSRetry

/// Log options every command has.
struct LogOptions: ParsableArguments {
    @Option(help: "Log level on stderr: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = ProcessInfo.processInfo.environment["SMS_RETRY_LOG_LEVEL"] ?? "info"

    @Option(help: "Log format on stderr: text or json (one object per line).")
    var logFormat: String = ProcessInfo.processInfo.environment["SMS_RETRY_LOG_FORMAT"] ?? "text"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format must be text or json") }
    }

    /// Logs go to stderr; stdout is for the command's own output.
    func makeLogger(_ label: String) -> Logger {
        var logger = logFormat == "json"
            ? Logger(label: label) { JSONLogHandler(label: $0) }
            : Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        return logger
    }
}

/// Options every command that touches the database shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("database-url"),
            help: "libpq conninfo or postgresql:// URI (default: $DATABASE_URL, else the PG* variables, as psql).")
    var databaseURL: String?

    @Option(name: .customLong("created-at-time-zone"),
            help: "The time zone the router writes created_at in, e.g. UTC (default: $SMS_RETRY_CREATED_AT_TIME_ZONE, else the database's sms_retry.created_at_time_zone setting, else its TimeZone).")
    var createdAtTimeZone: String?

    @OptionGroup var log: LogOptions

    var conninfo: String { databaseURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"] ?? "" }

    /// Session settings every connection makes (again after a reconnect).
    var sessionSettings: [(name: String, value: String)] {
        let zone = createdAtTimeZone ?? ProcessInfo.processInfo.environment["SMS_RETRY_CREATED_AT_TIME_ZONE"]
        guard let zone, !zone.isEmpty else { return [] }
        return [("sms_retry.created_at_time_zone", zone)]
    }

    func makeLogger(_ label: String) -> Logger { log.makeLogger(label) }

    /// What a command does with the database. Every command names it when it connects, so
    /// that one that writes cannot forget to ask whether it may.
    enum Use {
        /// stats, `migrate --status`: reads only, works on a hot standby.
        case reads
        /// Refused on a read-only standby (or a read-only session) before anything is done.
        case writes(command: String)
    }

    /// Connects, mapping failure onto exit code 3 with libpq's message (which never holds the
    /// password), and a time zone PostgreSQL does not know onto 2. For a command that writes,
    /// asks once whether the server takes writes: a hot standby or a read-only session ends it
    /// here with exit 2 and one line saying to use the primary.
    func connect(_ use: Use) async throws -> Database {
        // A bad SMS_RETRY_POOL_MODE is a configuration error (exit 2), not an unreachable database.
        do { _ = try Pooling.stated(ProcessInfo.processInfo.environment) } catch {
            throw CLIFailure(code: Exit.usage, message: error.message)
        }
        let db: Database
        do { db = try await Database.connect(conninfo, settings: sessionSettings) } catch let error as DatabaseError {
            throw CLIFailure(code: Exit.database, message: "cannot reach the database: \(error.message.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        if let zone = sessionSettings.first?.value {
            do { try await db.query("SELECT now() AT TIME ZONE $1", [zone]) } catch let error as DatabaseError where !error.isConnectionLoss {
                throw CLIFailure(code: Exit.usage, message: "--created-at-time-zone / SMS_RETRY_CREATED_AT_TIME_ZONE: \(zone) is not a time zone PostgreSQL knows (e.g. UTC, America/New_York)")
            }
        }
        if case .writes(let command) = use {
            let access: DatabaseAccess
            do { access = try await DatabaseAccess.of(db) } catch let error as DatabaseError { throw databaseFailure(error) }
            if let refusal = access.refusal(command: command) { throw CLIFailure(code: Exit.usage, message: refusal) }
        }
        return db
    }
}

/// `--policy FILE` or `$SMS_RETRY_POLICY`, over the default table.
struct PolicyOptions: ParsableArguments {
    @Option(help: "JSON file overriding the default retry policy (default: $SMS_RETRY_POLICY).")
    var policy: String?

    /// The policy file named, if any.
    var path: String? {
        guard let path = policy ?? ProcessInfo.processInfo.environment["SMS_RETRY_POLICY"], !path.isEmpty else { return nil }
        return path
    }

    func load() throws -> RetryPolicy {
        guard let path else { return .default }
        do { return try RetryPolicy.load(file: path) } catch let error as PolicyError {
            throw CLIFailure(code: Exit.usage, message: error.description)
        }
    }
}

/// The Twilio settings from the environment; a missing or malformed one is a usage error (2).
func twilioConfig() throws -> TwilioConfig {
    do { return try TwilioConfig.fromEnvironment() } catch {
        throw CLIFailure(code: Exit.usage, message: error.description)
    }
}

/// Maps a database error met while working: a lost server is 3; the schema or the role not as
/// sms-retry needs them (SQLSTATE class 42: a missing column, table or function, as before
/// `migrate`; a missing privilege) is a configuration error, 2, so that a scheduler shows it as a
/// failure; anything else 1.
func databaseFailure(_ error: DatabaseError, limit: String? = nil) -> CLIFailure {
    // A DBA's time limit (statement_timeout, lock_timeout, idle_in_transaction_session_timeout)
    // is the database refusing the work, as a lost server is: 3.
    let code = error.isConnectionLoss || error.isTimeout ? Exit.database
        : error.sqlState?.hasPrefix("42") == true ? Exit.usage : Exit.partial
    // With the limit's own line, the error is said as it is.
    return CLIFailure(code: code, message: limit.map { "\(error.description)\nsms-retry: \($0)" } ?? explained(error))
}

/// `databaseFailure` with, for a DBA's time limit, a second line naming the setting, its value,
/// where it comes from and the fix (`ServerLimit`), read from the session now. `what`: the work
/// the statement did ("the stats views").
func databaseFailure(_ error: DatabaseError, on db: Database, what: String) async -> CLIFailure {
    databaseFailure(error, limit: await ServerLimit.read(for: error, on: db)?.line(what))
}

/// The error, and for a missing privilege (42501, which names the object) or a missing column,
/// table or function (the migrations not applied) the fix.
func explained(_ error: DatabaseError) -> String {
    switch error.sqlState {
    case "42501":
        return "\(error.description); the table's owner grants what sms-retry needs with: sms-retry migrate --grant-runtime <this role>"
    case "42703", "42P01", "42883":
        return "\(error.description); are the migrations applied? sms-retry check tells, sms-retry migrate applies them"
    case _ where error.isTimeout:
        return "\(error.description) (the server's \(error.timeoutSetting ?? "time limit"), set on the role, the database or the server)"
    default:
        return error.description
    }
}

/// A duration given as `90s`, `15m`, `2h`, `7d`, or plain seconds: the one form of every
/// duration flag. A sign is read (with the flag declared `parsing: .unconditional`, `-1h` is the
/// value, not a flag), so a negative value is refused by the flag's range (`check`) in one line.
struct DurationArgument: ExpressibleByArgument, Sendable {
    var seconds: Double
    /// As the user wrote it, for messages.
    var text: String

    static let units: [(Character, Double)] = [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)]

    init?(argument: String) {
        let trimmed = argument.trimmingCharacters(in: .whitespaces)
        let factor = trimmed.last.flatMap { unit in Self.units.first { $0.0 == unit }?.1 }
        guard let n = Double(factor == nil ? trimmed : String(trimmed.dropLast())), n.isFinite else { return nil }
        seconds = n * (factor ?? 1)
        text = argument
    }

    init(seconds: Double) {
        self.seconds = seconds
        text = Self.format(seconds)
    }

    /// `86400` → `1d`, `110` → `110s`: the largest unit that divides it.
    static func format(_ seconds: Double) -> String {
        for (unit, factor) in units where seconds >= factor && seconds.truncatingRemainder(dividingBy: factor) == 0 {
            return "\(Int(seconds / factor))\(unit)"
        }
        return seconds == seconds.rounded() && abs(seconds) < 1e15 ? "\(Int(seconds))s" : "\(seconds)s"
    }

    var defaultValueDescription: String { text }

    /// Refuses a value outside `range` (seconds) with one line: the flag, the value, the range.
    func check(_ flag: String, _ range: ClosedRange<Double>) throws {
        guard range.contains(seconds) else {
            throw ValidationError("\(flag) \(text) is out of range: \(Self.format(range.lowerBound)) to \(Self.format(range.upperBound)) (durations: 90s, 15m, 2h, 7d or seconds)")
        }
    }

    /// The longest duration any flag takes (it keeps every value a whole number of seconds in an Int).
    static let longest = 3650.0 * 86_400
}

/// Range checks for number flags: one line naming the flag, the value and the range.
enum Bounds {
    static func check<T: BinaryInteger>(_ flag: String, _ value: T?, _ range: ClosedRange<T>) throws {
        guard let value, !range.contains(value) else { return }
        throw ValidationError("\(flag) \(value) is out of range: \(range.lowerBound) to \(range.upperBound)")
    }

    static func check(_ flag: String, _ value: Double?, _ range: ClosedRange<Double>) throws {
        guard let value, !(value.isFinite && range.contains(value)) else { return }
        throw ValidationError("\(flag) \(value) is out of range: \(range.lowerBound) to \(range.upperBound)")
    }

    /// A row id: the column may be `integer` or `bigint`; it is passed as bigint.
    static let logID: ClosedRange<Int> = 1...Int(Int64.max)
    /// Twilio's error codes (5 digits; 0 is no error).
    static let errorCode: ClosedRange<Int> = 1...99_999
}
