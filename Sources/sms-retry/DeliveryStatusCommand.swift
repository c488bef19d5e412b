import ArgumentParser
import SMSRetry

/// `recordDeliveryStatus` for routers that receive Twilio's callbacks themselves.
struct DeliveryStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delivery-status",
        abstract: "Apply a Twilio delivery status (a status callback's MessageSid, MessageStatus, ErrorCode).",
        discussion: """
            delivered ends the retries; undelivered/failed with a retryable code schedules one; \
            queued/accepted/sending/sent are progress. A status older than what the row knows, or the \
            same one again, changes nothing. Exit: 0 applied or unchanged, 1 no row has this SID or it \
            is not outbound, 2 usage (an unknown status), 3 database unreachable.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policyOptions: PolicyOptions

    @Option(help: "Twilio's message SID (MessageSid).") var sid: String
    @Option(help: "Twilio's status (MessageStatus): \(DeliveryStatus.allCases.map(\.rawValue).joined(separator: ", ")).")
    var status: String
    @Option(parsing: .unconditional, help: "Twilio's error code (ErrorCode), for undelivered and failed.") var errorCode: Int?

    func validate() throws {
        try Bounds.check("--error-code", errorCode, Bounds.errorCode)
        guard DeliveryStatus(rawValue: status.trimmingCharacters(in: .whitespaces).lowercased()) != nil else {
            throw ValidationError("--status '\(status.prefix(40))' is not a Twilio message status; expected one of \(DeliveryStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() async throws {
        let store = RetryStore(database: try await global.connect(.writes(command: "delivery-status")), policy: try policyOptions.load(),
                               logger: global.makeLogger("sms-retry.delivery-status"))
        do {
            let outcome = try await store.recordDeliveryStatus(messageSID: sid, status: status, errorCode: errorCode)
            switch outcome {
            case .delivered(let id): print("delivered log_id=\(id) sid=\(sid)")
            case .progress(let id, let status): print("\(status) log_id=\(id) sid=\(sid)")
            case .scheduled: print(outcome)
            case .closed(let id, let reason): print("closed log_id=\(id) reason=\(reason)")
            case .unchanged(let id, let current): print("unchanged log_id=\(id) current=\(current)")
            case .unknownMessage: throw CLIFailure(code: Exit.partial, message: "no sms_usage_logs row has twilio_message_sid \(sid.prefix(64))")
            case .notOutbound(let id): throw CLIFailure.notOutbound(id)
            case .unknownStatus(let s): throw CLIFailure(code: Exit.usage, message: "'\(s.prefix(40))' is not a Twilio message status")
            }
        } catch let error as DatabaseError {
            throw databaseFailure(error)
        }
    }
}
