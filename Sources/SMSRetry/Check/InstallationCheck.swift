import Foundation
import Logging

/// One line of `sms-retry check`: what was checked, what was found, and for anything short of
/// ok, how to fix it.
public struct CheckLine: Sendable, Equatable {
    public enum Level: Int32, Sendable, Comparable {
        case ok = 0, warning = 1, problem = 2
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        var label: String { switch self { case .ok: "ok"; case .warning: "warning"; case .problem: "problem" } }
    }
    public var level: Level
    public var subject: String
    public var detail: String
    public var fix: String?

    public init(_ level: Level, _ subject: String, _ detail: String, fix: String? = nil) {
        self.level = level
        self.subject = subject
        self.detail = detail
        self.fix = fix
    }

    /// `problem  migrations: 2 pending (…). Fix: sms-retry migrate`
    public var text: String {
        level.label.padding(toLength: 8, withPad: " ", startingAt: 0) + " \(subject): \(detail)"
            + (fix.map { ". Fix: \($0)" } ?? "")
    }

    /// 0 every line ok, 1 the worst is a warning, 2 a problem.
    public static func exitCode(_ lines: [CheckLine]) -> Int32 { lines.map(\.level).max()?.rawValue ?? 0 }
}

/// What a new installation checks first (`sms-retry check`): the database, the table, the
/// migrations, the runtime role's privileges, the time zone created_at is read in, the policy,
/// Twilio's credentials and sender, the status callback URL. Read-only: nothing is written to the
/// database and nothing is sent.
public enum InstallationCheck {
    /// The oldest PostgreSQL version sms-retry supports: its migrations use `CREATE OR REPLACE
    /// TRIGGER` and TID range scans, both new in 14 (13 is past its end of life).
    public static let oldestPostgres = 14
    /// The newest PostgreSQL major this release is tested on (`make test-pg`).
    public static let newestTestedPostgres = 18

    public struct Inputs: Sendable {
        public var conninfo: String
        public var settings: [(name: String, value: String)]
        public var twilio: Result<TwilioConfig, ConfigurationError>
        public var policy: Result<String?, PolicyError>
        /// serve-callbacks is meant to run: the status callback URL must be set.
        public var callbacks: Bool
        public var http: HTTPClient
        /// The policy `run` would load: the SQL report functions must read the same one.
        public var loadedPolicy: RetryPolicy? = nil
        /// The role the router connects as (`check --router-role`): its grants to report in SQL.
        public var routerRole: String? = nil

        public init(conninfo: String, settings: [(name: String, value: String)], twilio: Result<TwilioConfig, ConfigurationError>,
                    policy: Result<String?, PolicyError>, callbacks: Bool, http: HTTPClient) {
            self.conninfo = conninfo
            self.settings = settings
            self.twilio = twilio
            self.policy = policy
            self.callbacks = callbacks
            self.http = http
        }
    }

    public static func run(_ inputs: Inputs) async -> [CheckLine] {
        var lines = await database(inputs)
        lines += policy(inputs.policy)
        lines += await twilio(inputs)
        return lines
    }

    // MARK: the database

    static func database(_ inputs: Inputs) async -> [CheckLine] {
        let db: Database
        do { db = try await Database.connect(inputs.conninfo, settings: inputs.settings) } catch {
            let message = (error as? DatabaseError)?.message.trimmingCharacters(in: .whitespacesAndNewlines) ?? "\(error)"
            return [CheckLine(.problem, "database", "cannot connect: \(message)",
                              fix: "set DATABASE_URL (postgresql://user@host/db) or PGHOST, PGDATABASE, PGUSER; the password in ~/.pgpass or PGPASSWORD")]
        }
        var lines: [CheckLine] = []
        do {
            let server = try await db.query("""
                SELECT current_setting('server_version_num')::int AS num, current_setting('server_version') AS version,
                       current_database() AS db, current_user AS who
                """)[0]
            let number = (server.int("num") ?? 0) / 10000
            let who = "PostgreSQL \(server.string("version") ?? "?"), database \(server.string("db") ?? "?") as \(server.string("who") ?? "?")"
            lines.append(number < oldestPostgres
                ? CheckLine(.problem, "database", "\(who): older than PostgreSQL \(oldestPostgres), the oldest sms-retry supports (its migrations need CREATE OR REPLACE TRIGGER and TID range scans, new in 14)",
                            fix: "upgrade the server to PostgreSQL \(oldestPostgres) or later")
                : number > newestTestedPostgres
                ? CheckLine(.warning, "database", "\(who): newer than PostgreSQL \(newestTestedPostgres), the newest this release is tested on")
                : CheckLine(.ok, "database", who))
            if let standby = try await DatabaseAccess.of(db).summary {
                lines.append(CheckLine(.warning, "database", "\(standby): stats, health and the views work here; run, reconcile, migrate and every other command that writes refuse",
                                       fix: "point DATABASE_URL at the primary on hosts that run them"))
            }
            lines.append(connection(db.pooling))
            let migrator = try Migrator.embedded(logger: Logger(label: "sms-retry.check"))
            let table = try await migrator.table(db)
            guard let name = table.qualifiedName, let schema = table.schema else {
                lines.append(CheckLine(.problem, "table", "no sms_usage_logs in search_path \(table.searchPath) as role \(table.user)",
                                       fix: "point the search path at the table's schema: options=-csearch_path=SCHEMA in DATABASE_URL, or ALTER ROLE \(table.user) SET search_path = SCHEMA"))
                return lines
            }
            lines.append(CheckLine(.ok, "table", name))
            let pending = try await migrator.status(db).filter { !$0.applied }.map(\.migration.name)
            let current = migrator.migrations.last?.name ?? "?"
            lines.append(pending.isEmpty
                ? CheckLine(.ok, "migrations", "all \(migrator.migrations.count) applied, the newest \(current)")
                : CheckLine(.problem, "migrations", "\(pending.count) not applied: \(pending.joined(separator: ", "))",
                            fix: "as the table's owner: sms-retry migrate (or sms-retry migrate --print | psql -v ON_ERROR_STOP=1 -f -)"))
            lines.append(try await privileges(db, schema: schema, user: table.user))
            if pending.isEmpty { lines.append(try await timeZone(db, migrator: migrator)) }
            if pending.isEmpty, let policy = inputs.loadedPolicy {
                lines.append(try await SQLPolicy.matches(policy, on: db)
                    ? CheckLine(.ok, "sql policy", "the SQL report functions read the policy run loads")
                    : CheckLine(.problem, "sql policy", "the SQL report functions read another policy than run loads: they would decide otherwise",
                                fix: "sms-retry policy apply FILE (the file run reads), or sms-retry migrate --policy FILE"))
            }
            if pending.isEmpty, let policy = inputs.loadedPolicy, let line = try await countries(db, policy: policy.spend) { lines.append(line) }
            if let role = inputs.routerRole {
                let missing = try await Migrator.routerPrivileges(db, schema: schema, role: role).filter { !$0.held }.map(\.description)
                lines.append(missing.isEmpty
                    ? CheckLine(.ok, "router grants", "role \(role) may call the SQL report functions")
                    : CheckLine(.problem, "router grants", "role \(role) lacks \(missing.joined(separator: ", "))",
                                fix: "sms-retry migrate --grant-router \(role)"))
            }
        } catch {
            let message = (error as? DatabaseError)?.description ?? "\(error)"
            lines.append(CheckLine(.problem, "database", "a check failed: \(message)"))
        }
        return lines
    }

    /// A warning when resends may go to every country and the table's recent messages went to
    /// more than a handful: where an SMS pumping attack would be multiplied. Nil otherwise.
    static func countries(_ db: Database, policy: SpendPolicy) async throws -> CheckLine? {
        guard policy.countries == nil else { return nil }
        let numbers = try await db.run(RecentRecipients()).compactMap(\.phoneNumber)
        let seen = CountryCheck.countries(numbers)
        guard seen.count > CountryCheck.handful else { return nil }
        return CheckLine(.warning, "countries", "the last \(numbers.count) outbound messages went to \(seen.count) countries (\(seen.prefix(8).joined(separator: ", "))\(seen.count > 8 ? ", …" : "")) and resends may go to any country",
                         fix: "list the countries resends may go to in the policy file: \"resend_countries\": [\(seen.prefix(3).map { "\"\($0)\"" }.joined(separator: ", "))] (README, Message safety, Spend)")
    }

    /// What the connection keeps between transactions, and what that allows.
    static func connection(_ pooling: Pooling) -> CheckLine {
        switch pooling {
        case .direct: CheckLine(.ok, "connection", "straight to PostgreSQL")
        case .session: CheckLine(.ok, "connection", "through a pooler in session mode: as a direct connection")
        case .transaction:
            CheckLine(.warning, "connection", "through a pooler in transaction mode: no statement is prepared ahead; run, reconcile, stats, health and the reporting commands work, but run --rate / --sender-rate and migrate refuse",
                      fix: "for those two, connect straight to PostgreSQL or through a session-mode pool")
        }
    }

    /// Whether this role has what the runtime commands need: USAGE on the schema, SELECT and
    /// UPDATE on the table, SELECT on the views, EXECUTE on sms-retry's functions.
    static func privileges(_ db: Database, schema: String, user: String) async throws -> CheckLine {
        let missing = try await Migrator.runtimePrivileges(db, schema: schema, role: user).filter { !$0.held }.map(\.description)
        guard missing.isEmpty else {
            return CheckLine(.problem, "privileges", "role \(user) lacks \(missing.joined(separator: ", "))",
                             fix: "as the table's owner: sms-retry migrate --grant-runtime \(user)")
        }
        return CheckLine(.ok, "privileges", "role \(user) has what run, reconcile, stats and health need")
    }

    /// How created_at is read (the zone the router writes it in), judged against the newest rows:
    /// a row created in the future on that clock means the zone is wrong (a router writing UTC
    /// under a server whose TimeZone is behind UTC), and every age is read too young.
    static func timeZone(_ db: Database, migrator: Migrator) async throws -> CheckLine {
        let row = try await db.query("""
            SELECT coalesce(nullif(current_setting('sms_retry.created_at_time_zone', true), ''), current_setting('TimeZone')) AS zone,
                   (SELECT extract(epoch FROM max(created_at) - sms_retry_router_time(now()))::float8
                    FROM (SELECT created_at FROM sms_usage_logs ORDER BY id DESC LIMIT 100) AS newest) AS ahead_seconds
            """)[0]
        let zone = row.string("zone") ?? "?"
        if let ahead = row.double("ahead_seconds"), ahead > 300 {
            let hours = (ahead / 3600).rounded()
            return CheckLine(.problem, "time zone", "created_at is read in \(zone), and the newest rows would then be created \(hours >= 1 ? "\(Int(hours)) h" : "\(Int(ahead)) s") in the future: ages and quiet hours are read wrong",
                             fix: "name the zone the router writes created_at in: ALTER DATABASE … SET sms_retry.created_at_time_zone = 'UTC' (or SMS_RETRY_CREATED_AT_TIME_ZONE)")
        }
        if let warning = try await migrator.clockWarning(db) {
            return CheckLine(.warning, "time zone", String(warning.dropFirst("warning: ".count)))
        }
        return CheckLine(.ok, "time zone", "created_at is read in \(zone)")
    }

    // MARK: the policy

    static func policy(_ policy: Result<String?, PolicyError>) -> [CheckLine] {
        switch policy {
        case .success(nil): return [CheckLine(.ok, "policy", "the built-in retry policy (no --policy or SMS_RETRY_POLICY)")]
        case .success(let path?): return [CheckLine(.ok, "policy", path)]
        case .failure(let error): return [CheckLine(.problem, "policy", error.description, fix: "correct the file, or unset SMS_RETRY_POLICY")]
        }
    }

    // MARK: Twilio

    /// The twilio, sender and callbacks lines, always all three: a failed account check says
    /// why the sender could not be checked, and the callback URL is checked whatever Twilio said.
    static func twilio(_ inputs: Inputs) async -> [CheckLine] {
        let config: TwilioConfig
        switch inputs.twilio {
        case .failure(let error):
            return [CheckLine(.problem, "twilio", error.description,
                              fix: "set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN (or TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET) and TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID"),
                    CheckLine(.warning, "sender", "not checked: the Twilio settings are incomplete (the twilio line)")]
                + callbacks(ProcessInfo.processInfo.environment["TWILIO_STATUS_CALLBACK_URL"].flatMap { $0.isEmpty ? nil : $0 }, inputs.callbacks)
        case .success(let c): config = c
        }
        let client = TwilioClient(config: config, http: inputs.http)
        var lines: [CheckLine] = []
        var accountAnswered = true
        switch await client.account() {
        case .failure(let error) where error.unauthorized:
            lines.append(CheckLine(.problem, "twilio", "Twilio refused the credentials for account \(config.accountSID) (HTTP 401)",
                                   fix: "check TWILIO_AUTH_TOKEN (or the API key pair) against the account's in the Twilio Console"))
            accountAnswered = false
        case .failure(let error):
            lines.append(CheckLine(.problem, "twilio", "cannot ask Twilio at \(config.baseURL): \(error.description)",
                                   fix: error.notReached ? "check DNS, the firewall and any HTTPS_PROXY between this host and \(config.baseURL)" : nil))
            accountAnswered = false
        case .success(let account) where account.status != "active":
            lines.append(CheckLine(.problem, "twilio", "account \(config.accountSID) is \(account.status)",
                                   fix: "reactivate the account in the Twilio Console; nothing can be sent until then"))
        case .success(let account) where account.type == "Trial":
            lines.append(CheckLine(.warning, "twilio", "account \(config.accountSID) accepts the credentials, and is a trial account: only verified numbers receive messages"))
        case .success:
            lines.append(CheckLine(.ok, "twilio", "account \(config.accountSID) accepts the credentials and is active"))
        }
        let sender: String
        switch config.sender {
        case .from(let number): sender = number
        case .messagingService(let sid): sender = "Messaging Service \(sid)"
        }
        if !accountAnswered {
            lines.append(CheckLine(.warning, "sender", "\(sender) not checked: Twilio did not answer for the account (the twilio line)"))
        } else {
            switch await client.senderOnAccount() {
            case nil:
                lines.append(CheckLine(.warning, "sender", "\(sender) is an alphanumeric sender ID, which Twilio cannot be asked about"))
            case .success(true)?:
                lines.append(CheckLine(.ok, "sender", "\(sender) is on the account"))
            case .success(false)?:
                lines.append(CheckLine(.problem, "sender", "\(sender) is not on account \(config.accountSID)",
                                       fix: "set TWILIO_FROM_NUMBER to one of the account's SMS numbers, or TWILIO_MESSAGING_SERVICE_SID"))
            case .failure(let error)?:
                lines.append(CheckLine(.problem, "sender", "cannot ask Twilio about \(sender): \(error.description)"))
            }
        }
        lines += callbacks(config.statusCallbackURL, inputs.callbacks)
        return lines
    }

    /// The callbacks line: the status callback URL, set where serve-callbacks runs, HTTPS.
    static func callbacks(_ url: String?, _ wanted: Bool) -> [CheckLine] {
        switch (url, wanted) {
        case (nil, true):
            return [CheckLine(.problem, "callbacks", "TWILIO_STATUS_CALLBACK_URL is not set, so Twilio never calls serve-callbacks",
                              fix: "set it to the public HTTPS URL that reaches serve-callbacks, e.g. https://sms.example.com/twilio/status")]
        case (nil, false):
            return [CheckLine(.ok, "callbacks", "no status callback URL: delivery is confirmed by reconcile (use --callbacks where serve-callbacks runs)")]
        case (let url?, _) where !url.hasPrefix("https://"):
            return [CheckLine(.warning, "callbacks", "TWILIO_STATUS_CALLBACK_URL \(url) is not HTTPS: the callbacks and their signatures cross the internet in clear",
                              fix: "serve-callbacks behind a TLS proxy, and an https:// URL")]
        case (let url?, _):
            return [CheckLine(.ok, "callbacks", "Twilio will post delivery statuses to \(url)")]
        }
    }
}
