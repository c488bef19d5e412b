import ArgumentParser
import Foundation
import SMSRetry

/// `recordFailure` for routers not written in Swift.
struct ScheduleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Record that a send failed; schedule a retry by the policy or close the row.",
        discussion: "Prints the decision. Exit: 0 recorded (scheduled or closed), 1 row not found, not outbound or already sent (success = true), 2 usage, 3 database unreachable.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policyOptions: PolicyOptions

    @Option(parsing: .unconditional, help: "The sms_usage_logs id of the failed send.") var logId: Int
    @Option(parsing: .unconditional, help: "Twilio's error code (1 to 99999), or 'transport' for an HTTP 5xx / timeout / connection error.")
    var errorCode: String
    @Option(help: "The error text to keep with the row.") var errorMessage: String?

    func validate() throws {
        try Bounds.check("--log-id", logId, Bounds.logID)
        guard errorCode == "transport" || Int(errorCode) != nil else {
            throw ValidationError("--error-code must be a Twilio error code (a number) or 'transport'")
        }
        try Bounds.check("--error-code", Int(errorCode), Bounds.errorCode)
    }

    func run() async throws {
        let store = RetryStore(database: try await global.connect(.writes(command: "schedule")), policy: try policyOptions.load(),
                               logger: global.makeLogger("sms-retry.schedule"))
        do {
            let outcome = try await store.recordFailure(logID: logId, errorCode: Int(errorCode), errorMessage: errorMessage)
            switch outcome {
            case .scheduled(let attempt, let at):
                print("scheduled log_id=\(logId) attempt=\(attempt) at=\(ISO8601DateFormatter().string(from: at))")
            case .held(let until, let reason):
                print("held log_id=\(logId) reason=\(reason) until=\(ISO8601DateFormatter().string(from: until)) counted=false")
            case .notRetryable(let code, let meaning):
                print("closed log_id=\(logId) reason=not_retryable code=\(code.map(String.init) ?? "transport") meaning=\"\(meaning)\"")
            case .exhausted(let attempts):
                print("closed log_id=\(logId) reason=exhausted attempts=\(attempts)")
            case .rowNotFound:
                throw CLIFailure.noRow(logId)
            case .notOutbound:
                throw CLIFailure.notOutbound(logId)
            case .alreadySent:
                throw CLIFailure(code: Exit.partial, message: "log_id \(logId) has success = true (the message was sent): nothing scheduled, nothing changed")
            }
        } catch let error as DatabaseError {
            throw databaseFailure(error)
        }
    }
}
