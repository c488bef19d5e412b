import ArgumentParser
import SMSRetry

struct RetryNowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry-now",
        abstract: "Make a failed message due now (an exhausted, expired or canceled one gets one more attempt).",
        discussion: "Exit: 0 scheduled; 1 not possible (see the message); 2 usage; 3 database unreachable.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "The sms_usage_logs id.") var logId: Int

    func run() async throws {
        let store = RetryStore(database: try await global.connect(), logger: global.makeLogger("sms-retry.retry-now"))
        let outcome: RetryStore.RetryNowOutcome
        do { outcome = try await store.retryNow(logID: logId) } catch let error as DatabaseError { throw databaseFailure(error) }
        switch outcome {
        case .scheduled(let attempt): print("due now log_id=\(logId) attempt=\(attempt)")
        case .rowNotFound: throw CLIFailure(code: Exit.partial, message: "no sms_usage_logs row with id \(logId)")
        case .notOutbound: throw CLIFailure(code: Exit.partial, message: "row \(logId) is not an outbound message")
        case .alreadySent: throw CLIFailure(code: Exit.partial, message: "row \(logId) was already sent")
        case .inFlight: throw CLIFailure(code: Exit.partial, message: "row \(logId) is being sent by a run right now; try again when its lease ends")
        case .refused(let reason): throw CLIFailure(code: Exit.partial, message: "row \(logId) was closed as \(reason); a resend cannot fix that")
        }
    }
}

struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a pending retry (the row is kept, closed as canceled).",
        discussion: "Exit: 0 canceled; 1 not possible (see the message); 2 usage; 3 database unreachable.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "The sms_usage_logs id.") var logId: Int
    @Option(help: "Why, kept in sms_metadata.retry.note.") var reason: String?

    func run() async throws {
        let store = RetryStore(database: try await global.connect(), logger: global.makeLogger("sms-retry.cancel"))
        let outcome: RetryStore.CancelOutcome
        do { outcome = try await store.cancel(logID: logId, note: reason) } catch let error as DatabaseError { throw databaseFailure(error) }
        switch outcome {
        case .canceled: print("canceled log_id=\(logId)")
        case .rowNotFound: throw CLIFailure(code: Exit.partial, message: "no sms_usage_logs row with id \(logId)")
        case .notOutbound: throw CLIFailure(code: Exit.partial, message: "row \(logId) is not an outbound message")
        case .alreadySent: throw CLIFailure(code: Exit.partial, message: "row \(logId) was already sent")
        case .notPending: throw CLIFailure(code: Exit.partial, message: "row \(logId) has no pending retry")
        case .inFlight: throw CLIFailure(code: Exit.partial, message: "row \(logId) is being sent by a run right now; try again when its lease ends")
        }
    }
}

struct ExpireCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "expire",
        abstract: "Close pending retries of messages older than --max-age (reason expired). Rows are never deleted.",
        discussion: "Exit: 0; 2 usage; 3 database unreachable.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Age of the message (90s, 15m, 24h, 7d).") var maxAge = DurationArgument(seconds: 86_400)

    func run() async throws {
        let store = RetryStore(database: try await global.connect(), logger: global.makeLogger("sms-retry.expire"))
        do {
            let closed = try await store.expire(olderThan: maxAge.seconds)
            print("expired=\(closed)")
        } catch let error as DatabaseError {
            throw databaseFailure(error)
        }
    }
}
