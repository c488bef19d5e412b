import ArgumentParser
import SMSRetry

struct ExpireCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "expire",
        abstract: "Close pending retries of messages older than --max-age (reason expired). Rows are never deleted.",
        discussion: "Exit: 0; 2 usage; 3 database error (unreachable, or a DBA's time limit: a line names the setting). Closes 500 rows per transaction.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Age of the message (90s, 15m, 24h, 7d).") var maxAge = DurationArgument(seconds: 86_400)

    func run() async throws {
        let store = RetryStore(database: try await global.connect(.writes(command: "expire")), logger: global.makeLogger("sms-retry.expire"))
        do {
            let closed = try await store.expire(olderThan: maxAge.seconds)
            print("expired=\(closed)")
        } catch let error as DatabaseError {
            throw await databaseFailure(error, on: store.database, what: "the expiry of 1 row")
        }
    }
}
