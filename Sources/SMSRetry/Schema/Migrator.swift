import Foundation
import Logging

/// Applies and reverts the SQL files in `migrations/`, in order, statement by statement as
/// `psql -f` would. The applied state is read from the catalog, never from a table of its own:
/// each up file declares, in a `-- sms-retry:applied-when: <SQL boolean>` header, how to tell
/// that it has been applied.
public struct Migrator: Sendable {
    public struct Migration: Sendable {
        public var version: Int
        public var name: String
        public var up: String
        public var down: String
        public var appliedWhen: String
    }

    public struct Step: Sendable, Equatable {
        public enum Action: String, Sendable { case applied, reverted, alreadyApplied = "already applied" }
        public var version: Int
        public var name: String
        public var action: Action
        public var seconds: Double
    }

    public let migrations: [Migration]
    let logger: Logger
    /// How many times a file is rerun when a statement hits `lock_timeout` (SQLSTATE 55P03).
    var lockRetries = 5
    /// Receives the server's NOTICE and WARNING messages as the files run (psql prints them on
    /// stderr; `sms-retry migrate` does the same). Nil drops them.
    public var notices: (@Sendable (String) -> Void)? = nil

    /// The migrations compiled into this build (migrations/*.sql, by the EmbedMigrations build
    /// plugin): what `sms-retry migrate` applies from any folder.
    public static func embedded(logger: Logger = Logger(label: "sms-retry.migrate")) throws -> Migrator {
        try Migrator(files: EmbeddedMigrations.files, source: "the built-in migrations", logger: logger)
    }

    /// Reads `NNN_name.up.sql` / `NNN_name.down.sql` pairs from `directory`.
    public init(directory: String, logger: Logger = Logger(label: "sms-retry.migrate")) throws {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw MigrationError(message: "cannot read the migrations folder \(directory)")
        }
        let files = names.filter { $0.hasSuffix(".sql") }.compactMap { name in
            FileManager.default.contents(atPath: (directory as NSString).appendingPathComponent(name))
                .map { (name: name, text: String(decoding: $0, as: UTF8.self)) }
        }
        try self.init(files: files, source: directory, logger: logger)
    }

    /// `NNN_name.up.sql` / `NNN_name.down.sql` pairs from (name, text) files; `source` names
    /// where they came from in errors.
    public init(files: [(name: String, text: String)], source: String,
                logger: Logger = Logger(label: "sms-retry.migrate")) throws {
        self.logger = logger
        let texts = Dictionary(files.map { ($0.name, $0.text) }, uniquingKeysWith: { first, _ in first })
        var found: [Migration] = []
        for file in texts.keys.sorted() where file.hasSuffix(".up.sql") {
            let stem = String(file.dropLast(".up.sql".count))
            guard let version = Int(stem.prefix(while: \.isNumber)) else {
                throw MigrationError(message: "\(file): name must start with a version number")
            }
            let up = texts[file]!
            guard let down = texts[stem + ".down.sql"] else {
                throw MigrationError(message: "missing \(stem).down.sql in \(source) (every up needs its down)")
            }
            guard let marker = up.split(separator: "\n").first(where: { $0.hasPrefix("-- sms-retry:applied-when:") }) else {
                throw MigrationError(message: "\(file): missing the '-- sms-retry:applied-when:' header")
            }
            let condition = marker.dropFirst("-- sms-retry:applied-when:".count).trimmingCharacters(in: .whitespaces)
            found.append(Migration(version: version, name: stem, up: up, down: down, appliedWhen: condition))
        }
        guard !found.isEmpty else { throw MigrationError(message: "no *.up.sql files in \(source)") }
        migrations = found
    }

    /// The SQL of `up` (every migration from 002 on, oldest first; from 001, which creates an
    /// empty table where there is none, with `createTable`) or of `down` (every one above `to`,
    /// default the newest only, newest first), one file after the other, for a DBA to apply with
    /// `psql -v ON_ERROR_STOP=1 -f`.
    public func script(down: Bool = false, to: Int? = nil, createTable: Bool = false) -> String {
        let chosen = down ? migrations.filter { $0.version > (to ?? migrations.dropLast().last?.version ?? 0) }.reversed()
                          : migrations.filter { createTable || $0.version > 1 }
        return chosen.map { migration in
            let file = migration.name + (down ? ".down.sql" : ".up.sql")
            let text = down ? migration.down : migration.up
            return "-- ==== \(file) ====\n\(text)\n"
        }.joined(separator: "\n")
    }

    /// Which migrations the database has, from the catalog.
    public func status(_ db: Database) async throws -> [(migration: Migration, applied: Bool)] {
        var result: [(Migration, Bool)] = []
        for migration in migrations {
            let rows = try await db.query("SELECT (\(migration.appliedWhen)) AS applied")
            result.append((migration, rows.first?.bool("applied") ?? false))
        }
        return result
    }

    /// Where the router's table is: found through the session's `search_path` (set on the
    /// role, in the conninfo's `options=-csearch_path=…`, or in `PGOPTIONS`), or not.
    public struct Table: Sendable, Equatable {
        /// `schema.sms_usage_logs`, nil when the search path does not lead to the table.
        public var qualifiedName: String?
        public var schema: String?
        public var searchPath: String
        public var user: String
    }

    /// Finds `sms_usage_logs` as every runtime statement will (unqualified, through the search path).
    public func table(_ db: Database) async throws -> Table {
        let row = try await db.query("""
            SELECT n.nspname AS schema, CASE WHEN c.oid IS NOT NULL THEN format('%I.%I', n.nspname, c.relname) END AS qualified,
                   current_setting('search_path') AS search_path, current_user AS who
            FROM (SELECT 1) AS one
            LEFT JOIN pg_class c ON c.oid = to_regclass('sms_usage_logs')
            LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
            """)[0]
        return Table(qualifiedName: row.string("qualified"), schema: row.string("schema"),
                     searchPath: row.string("search_path") ?? "", user: row.string("who") ?? "")
    }

    /// Applies every migration not yet applied, in order, to the router's `sms_usage_logs`. The
    /// table must exist: without it (a forgotten search path, the wrong database) nothing is
    /// created and `MigrationError.tableNotFound` names where it was looked for, unless
    /// `createTable` (a fresh database: the demo, tests), which lets 001 create an empty one.
    /// Everything sms-retry creates goes into the table's own schema: it comes first in this
    /// session's search path while the files run.
    public func up(_ db: Database, createTable: Bool = false) async throws -> [Step] {
        try await refuseUnsupportedServer(db)
        let found = try await table(db)
        if let schema = found.schema {
            try await db.query("SELECT set_config('search_path', quote_ident($1) || ', ' || current_setting('search_path'), false)",
                               [schema])
        } else if !createTable {
            throw MigrationError(message: """
                no table sms_usage_logs in search_path \(found.searchPath) (as role \(found.user)); nothing was created. \
                Point the search path at the table's schema (ALTER ROLE \(found.user) SET search_path = …, \
                options=-csearch_path=… in the conninfo, or PGOPTIONS=-csearch_path=…), or pass --create-table \
                to create an empty one for a new database
                """, tableNotFound: true)
        }
        var steps: [Step] = []
        for (migration, applied) in try await status(db) {
            if applied {
                steps.append(Step(version: migration.version, name: migration.name, action: .alreadyApplied, seconds: 0))
                continue
            }
            let seconds = try await run(migration.up, named: migration.name + ".up.sql", on: db)
            guard try await status(db).first(where: { $0.migration.version == migration.version })?.applied == true else {
                throw MigrationError(message: "\(migration.name).up.sql ran but its applied-when check is still false")
            }
            steps.append(Step(version: migration.version, name: migration.name, action: .applied, seconds: seconds))
        }
        return steps
    }

    /// A warning when the router's clock is left to the server's TimeZone and that is not UTC:
    /// routers often write created_at in UTC, and ages would then be read hours off.
    public func clockWarning(_ db: Database) async throws -> String? {
        let row = try await db.query("""
            SELECT current_setting('TimeZone') AS zone, current_database() AS db,
                   nullif(current_setting('sms_retry.created_at_time_zone', true), '') AS router_zone
            """)[0]
        guard row.string("router_zone") == nil, let zone = row.string("zone"), !["UTC", "Etc/UTC", "GMT", "Z", "UCT"].contains(zone)
        else { return nil }
        let db = row.string("db") ?? "…"
        return "warning: the database's TimeZone is \(zone) and sms_retry.created_at_time_zone is not set, so created_at is read as \(zone) time. If the router writes it in UTC (datetime.utcnow, most ORMs): ALTER DATABASE \(db) SET sms_retry.created_at_time_zone = 'UTC' (or --created-at-time-zone UTC)"
    }

    /// What the runtime commands need, one privilege on one object per entry, and whether `role`
    /// holds it: USAGE on the table's schema, SELECT and UPDATE on `sms_usage_logs` (sms-retry
    /// never inserts or deletes a row), SELECT on the analytics views, EXECUTE on sms-retry's
    /// functions (the claim and the views call them). The one list `grantRuntime` grants and
    /// `sms-retry check` checks.
    public struct RuntimePrivilege: Sendable {
        /// `USAGE`, `SELECT`, `UPDATE`, `EXECUTE`.
        public var privilege: String
        /// As GRANT names it: `SCHEMA public`, `public.sms_usage_logs`, `FUNCTION sms_retry_period()`.
        public var object: String
        public var held: Bool
        /// `SELECT on public.sms_retry_daily`.
        public var description: String {
            "\(privilege) on \(object.hasPrefix("SCHEMA ") ? "schema " + object.dropFirst(7) : object.hasPrefix("FUNCTION ") ? String(object.dropFirst(9)) : object)"
        }
    }

    public static func runtimePrivileges(_ db: Database, schema: String, role: String) async throws -> [RuntimePrivilege] {
        try await db.query("""
            SELECT p, o, ok FROM (
                SELECT 1 AS k, '' AS n, 'USAGE' AS p, format('SCHEMA %I', $1::text) AS o, has_schema_privilege($2::name, $1::text, 'USAGE') AS ok
                UNION ALL SELECT 2, '', x.p, format('%I.sms_usage_logs', $1::text),
                                 has_table_privilege($2::name, format('%I.sms_usage_logs', $1::text), x.p)
                          FROM (VALUES ('SELECT'), ('UPDATE')) AS x(p)
                UNION ALL SELECT 3, c.relname, 'SELECT', format('%I.%I', $1::text, c.relname), has_table_privilege($2::name, c.oid, 'SELECT')
                          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                          WHERE n.nspname = $1 AND c.relkind = 'v' AND c.relname LIKE 'sms\\_retry\\_%'
                UNION ALL SELECT 4, p.oid::regprocedure::text, 'EXECUTE', format('FUNCTION %s', p.oid::regprocedure),
                                 has_function_privilege($2::name, p.oid, 'EXECUTE')
                          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                          WHERE n.nspname = $1 AND p.proname LIKE 'sms\\_retry\\_%'
            ) AS needed ORDER BY k, n, p
            """, [schema, role]).all.map {
            RuntimePrivilege(privilege: $0.string("p") ?? "", object: $0.string("o") ?? "", held: $0.bool("ok") ?? false)
        }
    }

    /// Grants `role` exactly what the runtime commands need (`runtimePrivileges`), and nothing
    /// more. Rerunnable. Returns the statements run.
    public func grantRuntime(_ db: Database, to role: String) async throws -> [String] {
        guard try await db.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]).first != nil else {
            throw MigrationError(message: "no role \(role) (CREATE ROLE \(role) LOGIN, then grant)", tableNotFound: true)
        }
        guard let schema = try await table(db).schema else {
            throw MigrationError(message: "no table sms_usage_logs in the search path to grant on", tableNotFound: true)
        }
        // One GRANT per object, its privileges together (SELECT, UPDATE on the table).
        var grants: [(privileges: [String], object: String)] = []
        for needed in try await Self.runtimePrivileges(db, schema: schema, role: role) {
            if grants.last?.object == needed.object { grants[grants.count - 1].privileges.append(needed.privilege) }
            else { grants.append(([needed.privilege], needed.object)) }
        }
        let quoted = try await db.query("SELECT quote_ident($1) AS r", [role])[0].string("r") ?? role
        let statements = grants.map { "GRANT \($0.privileges.joined(separator: ", ")) ON \($0.object) TO \(quoted)" }
        for statement in statements { try await db.query(statement) }
        return statements
    }

    /// Reverts applied migrations above `target`, newest first. With no target, only the newest.
    public func down(_ db: Database, to target: Int? = nil) async throws -> [Step] {
        try await refuseUnsupportedServer(db)
        let applied = try await status(db).filter(\.applied).map(\.migration)
        let floor = target ?? (applied.dropLast().last?.version ?? 0)
        var steps: [Step] = []
        for migration in applied.reversed() where migration.version > floor {
            let seconds = try await run(migration.down, named: migration.name + ".down.sql", on: db)
            steps.append(Step(version: migration.version, name: migration.name, action: .reverted, seconds: seconds))
        }
        return steps
    }

    /// Stops an up or a down before it changes anything on a server older than
    /// `InstallationCheck.oldestPostgres`: the files use what 14 brought (`CREATE OR REPLACE
    /// TRIGGER`, TID range scans) and would fail halfway through.
    func refuseUnsupportedServer(_ db: Database) async throws {
        let row = try await db.query("""
            SELECT current_setting('server_version_num')::int AS num, current_setting('server_version') AS version
            """)[0]
        let number = row.int("num") ?? 0
        guard number < InstallationCheck.oldestPostgres * 10000 else { return }
        throw MigrationError(message: """
            PostgreSQL \(row.string("version") ?? String(number)) is not supported: sms-retry needs PostgreSQL \
            \(InstallationCheck.oldestPostgres) or later; nothing was changed
            """, unsupportedServer: true)
    }

    /// Runs one file's statements in autocommit; reruns the whole file (which is written to be
    /// rerun) when a lock wait times out.
    private func run(_ script: String, named name: String, on db: Database) async throws -> Double {
        let statements: [SQLScript.Statement]
        do { statements = try SQLScript.statements(script) } catch {
            throw MigrationError(message: "\(name): \(error)")
        }
        let start = db.clock.now
        var attempt = 0
        while true {
            do {
                let notices = self.notices
                try await db.withConnection { conn in
                    func run(_ sql: String) throws -> PGRows {
                        defer { for notice in conn.drainNotices() { notices?(notice) } }
                        return try conn.executeScript(sql)
                    }
                    for statement in statements {
                        let rows = try run(statement.sql)
                        // \gexec: each cell of the result, row by row, is the next statement.
                        guard statement.generates else { continue }
                        for row in rows.rows { for case let generated? in row { _ = try run(generated) } }
                    }
                }
                return (db.clock.now - start).seconds
            } catch let error as DatabaseError where error.isLockTimeout && attempt < lockRetries {
                attempt += 1
                logger.warning("lock timeout; retrying the file", metadata: ["migration.file": "\(name)", "migration.attempt": "\(attempt)"])
                _ = try? await db.query("ROLLBACK")
                try await db.clock.sleep(for: .milliseconds(500 * attempt))
            } catch let error as DatabaseError {
                throw MigrationError(message: "\(name): \(error)", underlying: error)
            }
        }
    }
}

public struct MigrationError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var underlying: DatabaseError?
    /// The router's table was not found: a configuration problem, nothing was changed.
    public var tableNotFound = false
    /// The server is older than sms-retry supports: nothing was changed.
    public var unsupportedServer = false
    init(message: String, underlying: DatabaseError? = nil, tableNotFound: Bool = false, unsupportedServer: Bool = false) {
        self.message = message
        self.underlying = underlying
        self.tableNotFound = tableNotFound
        self.unsupportedServer = unsupportedServer
    }
    public var description: String { "migration failed: \(message)" }
}
