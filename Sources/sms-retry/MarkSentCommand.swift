import ArgumentParser
import SMSRetry

/// `recordSent` for routers not written in Swift.
struct MarkSentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mark-sent",
        abstract: "Record that a send was accepted by Twilio (stores the message SID).",
        discussion: "Exit: 0 recorded, 1 row not found or not outbound, 2 usage, 3 database unreachable.")

    @OptionGroup var global: GlobalOptions

    @Option(parsing: .unconditional, help: "The sms_usage_logs id.") var logId: Int
    @Option(help: "Twilio's message SID (SM…).") var sid: String

    func validate() throws {
        try Bounds.check("--log-id", logId, Bounds.logID)
        guard sid.hasPrefix("SM") || sid.hasPrefix("MM"), sid.count == 34 else {
            throw ValidationError("--sid must be a Twilio message SID: SM or MM followed by 32 hex digits")
        }
    }

    func run() async throws {
        let store = RetryStore(database: try await global.connect(.writes(command: "mark-sent")), logger: global.makeLogger("sms-retry.mark-sent"))
        do {
            switch try await store.recordSent(logID: logId, messageSID: sid) {
            case .recorded: print("sent log_id=\(logId) sid=\(sid)")
            case .rowNotFound: throw CLIFailure.noRow(logId)
            case .notOutbound: throw CLIFailure.notOutbound(logId)
            }
        } catch let error as DatabaseError {
            throw databaseFailure(error)
        }
    }
}
