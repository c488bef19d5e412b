import ArgumentParser
import Foundation
import SMSRetry

struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Ask Twilio what became of sends whose fate is unknown, and of accepted messages with no final status.",
        discussion: """
            Rows whose last send may have reached Twilio unrecorded (a run killed between claim and \
            record, a timeout, a 5xx) are looked up in Twilio's message list: found ones are recorded \
            as sent, never resent; the rest are left due for the next run. Then the sweep: outbound \
            messages Twilio accepted (the router's first sends and sms-retry's resends) with no final \
            status after --settle, younger than --window, are asked about through Twilio's message \
            list or by SID, whichever asks less; undelivered and failed ones are scheduled or closed \
            as the policy says, delivered ones confirmed, the rest asked again next time. \
            Prints one summary line. Exit: 0 done, 1 some questions went unanswered (asked again \
            later), 2 usage or configuration (Twilio refused the credentials), 3 database error (unreachable, or a DBA's time limit: a line names the setting).
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policyOptions: PolicyOptions

    @Option(name: [.customLong("settle"), .customLong("confirm-after")], parsing: .unconditional,
            help: "Ask about an accepted message after this long without a final status (90s, 15m, 24h).")
    var confirmAfter = DurationArgument(seconds: 900)
    @Option(name: [.customLong("window"), .customLong("max-age")], parsing: .unconditional,
            help: "Stop asking about messages older than this (90s, 15m, 24h, 7d).")
    var maxAge = DurationArgument(seconds: 86_400)
    @Option(help: ArgumentHelp("Where the router keeps a message's SID in sms_metadata when twilio_message_sid is empty, dotted (twilio.sid); default SMS_RETRY_SID_METADATA_KEY.",
                               valueName: "key.path"))
    var sidMetadataKey: String?
    @Option(help: "Ask through Twilio's message list, by SID, or whichever asks less (auto).") var sweepBy = "auto"
    @Option(help: "Write Prometheus metrics here for node_exporter's textfile collector (temp file + rename).")
    var metricsFile: String?
    @Option(parsing: .unconditional, help: "Requests to Twilio in flight at once.") var concurrency = 8

    func validate() throws {
        try Bounds.check("--concurrency", concurrency, 1...256)
        try confirmAfter.check("--settle", 1...DurationArgument.longest)
        try maxAge.check("--window", 60...DurationArgument.longest)
        guard maxAge.seconds > confirmAfter.seconds else { throw ValidationError("--window \(maxAge.text) must be longer than --settle \(confirmAfter.text)") }
        guard Sweep.Way(rawValue: sweepBy) != nil else { throw ValidationError("--sweep-by \(sweepBy): must be auto, list or sid") }
        if let path = sidMetadataKey, path.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) {
            throw ValidationError("--sid-metadata-key \(path): must be keys joined by dots, e.g. twilio.sid")
        }
    }

    func run() async throws {
        let logger = global.makeLogger("sms-retry.reconcile")
        let policy = try policyOptions.load()
        let config = try twilioConfig()
        let db = try await global.connect(.writes(command: "reconcile"))
        var options = Reconciler.Options()
        options.confirmAfter = confirmAfter.seconds
        options.maxAge = maxAge.seconds
        options.concurrency = concurrency
        options.sweepBy = Sweep.Way(rawValue: sweepBy) ?? .auto
        let keyPath = sidMetadataKey ?? ProcessInfo.processInfo.environment["SMS_RETRY_SID_METADATA_KEY"] ?? ""
        options.sidKeyPath = keyPath.split(separator: ".").map(String.init)
        let http = HTTPClient()
        defer { http.shutdown() }
        let reconciler = Reconciler(store: RetryStore(database: db, policy: policy, logger: logger),
                                    twilio: TwilioClient(config: config, http: http), options: options, logger: logger)
        do {
            let started = db.clock.now
            let summary = try await reconciler.run()
            print(summary.description)
            if let path = metricsFile {
                let elapsed = db.clock.now - started
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                do {
                    try RunMetrics.write(ReconcileMetrics.text(summary, exitCode: summary.exitCode, seconds: seconds), to: path)
                } catch {
                    logger.error("cannot write the metrics file", metadata: ["metrics.path": "\(path)"])
                }
            }
            if let error = summary.databaseError {
                throw CLIFailure(code: Exit.database, message: explained(error) + (summary.databaseLimit.map { "\nsms-retry: " + $0 } ?? ""))
            }
            if summary.unauthorized {
                throw CLIFailure(code: Exit.usage, message: "Twilio refused the credentials; check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN or the API key")
            }
            if summary.exitCode != 0 { throw CLIFailure(code: summary.exitCode, message: "") }
        } catch let error as DatabaseError {
            throw await databaseFailure(error, on: db, what: "a statement of reconcile")
        }
    }
}
