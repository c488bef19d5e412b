import ArgumentParser
import SMSRetry

struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a pending retry (the row is kept, closed as canceled).",
        discussion: "Exit: 0 canceled; 1 not possible (see the message); 2 usage; 3 database unreachable.")

    @OptionGroup var global: GlobalOptions
    @Option(parsing: .unconditional, help: "The sms_usage_logs id.") var logId: Int
    @Option(help: "Why, kept in sms_metadata.retry.note.") var reason: String?

    func validate() throws { try Bounds.check("--log-id", logId, Bounds.logID) }

    func run() async throws {
        let store = RetryStore(database: try await global.connect(.writes(command: "cancel")), logger: global.makeLogger("sms-retry.cancel"))
        let outcome: RetryStore.CancelOutcome
        do { outcome = try await store.cancel(logID: logId, note: reason) } catch let error as DatabaseError { throw databaseFailure(error) }
        switch outcome {
        case .canceled: print("canceled log_id=\(logId)")
        case .rowNotFound: throw CLIFailure.noRow(logId)
        case .notOutbound: throw CLIFailure.notOutbound(logId)
        case .alreadySent: throw CLIFailure.alreadySent(logId)
        case .notPending: throw CLIFailure(code: Exit.partial, message: "row \(logId) has no pending retry")
        case .inFlight: throw CLIFailure.inFlight(logId)
        }
    }
}
