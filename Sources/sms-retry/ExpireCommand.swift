import ArgumentParser
import SMSRetry

struct ExpireCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "expire",
        abstract: "Close pending retries of messages older than --max-age (reason expired). Rows are never deleted.",
        discussion: """
            Prints a line per row closed (expired log_id=… created_at=… attempts=…/…), then expired=N; \
            --dry-run prints the rows it would close and changes nothing. --max-age under 1m is refused. \
            Exit: 0; 2 usage; 3 database error (unreachable, or a DBA's time limit: a line names the setting). \
            Closes 500 rows per transaction.
            """)

    @OptionGroup var global: GlobalOptions
    @Option(parsing: .unconditional, help: "Age of the message (90s, 15m, 24h, 7d; at least 1m).")
    var maxAge = DurationArgument(seconds: 86_400)
    @Flag(help: "List the rows that would be closed; change nothing.") var dryRun = false

    func validate() throws {
        try maxAge.check("--max-age", 60...DurationArgument.longest)
    }

    func run() async throws {
        // A dry run only reads: it works on a standby too.
        let use: GlobalOptions.Use = dryRun ? .reads : .writes(command: "expire")
        let db = try await global.connect(use)
        let store = RetryStore(database: db, logger: global.makeLogger("sms-retry.expire"))
        do {
            if dryRun {
                let rows = try await store.expireCandidates(olderThan: maxAge.seconds)
                for row in rows { print("would expire \(Self.describe(row))") }
                print("dry-run: \(rows.count) pending retr\(rows.count == 1 ? "y" : "ies") older than \(maxAge.text) would be expired; nothing changed")
                return
            }
            let rows = try await store.expireRows(olderThan: maxAge.seconds)
            for row in rows { print("expired \(Self.describe(row))") }
            print("expired=\(rows.count)")
        } catch let error as DatabaseError {
            throw await databaseFailure(error, on: store.database, what: dryRun ? "the list of rows to expire" : "the expiry of a batch of rows")
        }
    }

    static func describe(_ row: RetryStore.StaleRow) -> String {
        "log_id=\(row.id) created_at=\"\(row.createdAt)\" attempts=\(row.retryCount)/\(row.maxRetries)"
    }
}
