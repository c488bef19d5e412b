import ArgumentParser
import Foundation
import SMSRetry

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the SQL migrations in order (or revert with --down).",
        discussion: """
            Runs each file statement by statement in autocommit, as psql -f does, so CREATE INDEX \
            CONCURRENTLY runs outside a transaction; a file is rerun when a lock_timeout expires. \
            The applied state is read from the catalog: no table of its own. The router's \
            sms_usage_logs must exist, found through the search path as every command finds it; \
            everything sms-retry creates goes into its schema. Exit: 0 done; 1 a statement failed; \
            2 usage, the table not found or a server older than PostgreSQL 14 (nothing changed); 3 database unreachable.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "Folder holding NNN_name.up.sql / NNN_name.down.sql instead of the migrations built into this binary (default: $SMS_RETRY_MIGRATIONS when set).")
    var dir: String?
    @Flag(name: .customLong("print"), help: "Write the SQL instead of running it (every up from 002, oldest first, from 001 with --create-table; with --down the downs it would run, newest first), for psql -v ON_ERROR_STOP=1 -f. Needs no database.")
    var printSQL = false
    @Flag(help: "Revert instead: the newest applied migration, or all above --to.") var down = false
    @Option(parsing: .unconditional, help: "With --down: revert every migration above this version (0 = all).") var to: Int?
    @Flag(help: "Only show which migrations are applied.") var status = false
    @Option(help: "Then grant this role what every runtime command needs (SELECT/UPDATE on the table, SELECT on the views, EXECUTE on their functions) and nothing more. Rerunnable.")
    var grantRuntime: String?
    @Option(help: "Then grant this role, the one the router connects as, what reporting in SQL needs (USAGE on the schema, EXECUTE on the sms_retry_report_* functions, sms_retry_cancel, sms_retry_retry_now, sms_retry_state) and nothing more. Rerunnable.")
    var grantRouter: String?
    @OptionGroup var policyOptions: PolicyOptions
    @Flag(help: "Create an empty sms_usage_logs when there is none (a new database: demos, tests). Without it, a missing table stops migrate before anything is created.")
    var createTable = false

    func validate() throws {
        if to != nil && !down { throw ValidationError("--to goes with --down") }
        try Bounds.check("--to", to, 0...999)
        if grantRuntime != nil && down { throw ValidationError("--grant-runtime goes with an up migration") }
        if grantRouter != nil && down { throw ValidationError("--grant-router goes with an up migration") }
        if printSQL && (status || grantRuntime != nil || grantRouter != nil) {
            throw ValidationError("--print writes the SQL only: not with --status or --grant-runtime")
        }
    }

    func run() async throws {
        let logger = global.makeLogger("sms-retry.migrate")
        let policy = try policyOptions.load()
        var migrator: Migrator
        let folder = dir ?? ProcessInfo.processInfo.environment["SMS_RETRY_MIGRATIONS"]
        do { migrator = try folder.map { try Migrator(directory: $0, logger: logger) } ?? Migrator.embedded(logger: logger) }
        catch let error as MigrationError {
            throw CLIFailure(code: Exit.usage, message: error.description)
        }
        if printSQL {
            print(migrator.script(down: down, to: to, createTable: createTable), terminator: "")
            return
        }
        // As psql: the server's notices on stderr, as they come.
        migrator.notices = { FileHandle.standardError.write(Data(($0.hasSuffix("\n") ? $0 : $0 + "\n").utf8)) }
        let db = try await global.connect(status ? .reads : .writes(command: "migrate"))
        do {
            let table = try await migrator.table(db)
            print("table: \(table.qualifiedName ?? "sms_usage_logs not found in search_path \(table.searchPath)")")
            if status {
                for (migration, applied) in try await migrator.status(db) {
                    print("\(migration.name): \(applied ? "applied" : "pending")")
                }
                return
            }
            if !db.pooling.keepsSession {
                throw CLIFailure(code: Exit.usage, message: "migrate: the database connection goes through a pooler in transaction mode (PgBouncer pool_mode = transaction), where the migrations' SET lock_timeout and search path would not hold from one statement to the next and would stay behind on pooled server connections; run migrate straight to PostgreSQL or through a session-mode pool")
            }
            let steps = down ? try await migrator.down(db, to: to) : try await migrator.up(db, createTable: createTable)
            for step in steps {
                let time = step.action == .alreadyApplied ? "" : String(format: " (%.2f s)", step.seconds)
                print("\(step.name): \(step.action.rawValue)\(time)")
            }
            if steps.isEmpty { print("nothing to do") }
            if !down, let warning = try await migrator.clockWarning(db) {
                FileHandle.standardError.write(Data((warning + "\n").utf8))
            }
            if !down, try await migrator.status(db).allSatisfy(\.applied) {
                // The SQL report functions read the policy run loads (migration 012).
                try await SQLPolicy.install(policy, on: db)
                print("policy: \(policyOptions.path ?? "the built-in policy") installed for the SQL report functions")
            }
            if let role = grantRuntime, !down {
                for statement in try await migrator.grantRuntime(db, to: role) { print(statement) }
            }
            if let role = grantRouter, !down {
                for statement in try await migrator.grantRouter(db, to: role) { print(statement) }
            }
        } catch let error as MigrationError {
            throw CLIFailure(code: error.tableNotFound || error.unsupportedServer ? Exit.usage : error.underlying?.isConnectionLoss == true ? Exit.database : Exit.partial,
                             message: error.description)
        } catch let error as DatabaseError {
            throw databaseFailure(error)
        }
    }
}
