import ArgumentParser
import SMSRetry

struct RetryNowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry-now",
        abstract: "Make a failed message due now (an exhausted, expired or canceled one gets one more attempt).",
        discussion: "Exit: 0 scheduled; 1 not possible (see the message); 2 usage; 3 database unreachable.")

    @OptionGroup var global: GlobalOptions
    @Option(parsing: .unconditional, help: "The sms_usage_logs id.") var logId: Int

    func validate() throws { try Bounds.check("--log-id", logId, Bounds.logID) }

    func run() async throws {
        let store = RetryStore(database: try await global.connect(.writes(command: "retry-now")), logger: global.makeLogger("sms-retry.retry-now"))
        let outcome: RetryStore.RetryNowOutcome
        do { outcome = try await store.retryNow(logID: logId) } catch let error as DatabaseError { throw databaseFailure(error) }
        switch outcome {
        case .scheduled(let attempt): print("due now log_id=\(logId) attempt=\(attempt)")
        case .rowNotFound: throw CLIFailure.noRow(logId)
        case .notOutbound: throw CLIFailure.notOutbound(logId)
        case .alreadySent: throw CLIFailure.alreadySent(logId)
        case .inFlight: throw CLIFailure.inFlight(logId)
        case .refused(let reason): throw CLIFailure(code: Exit.partial, message: "row \(logId) was closed as \(reason); a resend cannot fix that")
        }
    }
}
