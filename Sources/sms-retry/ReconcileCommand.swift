import ArgumentParser
import Foundation
import SMSRetry

struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Ask Twilio what became of sends whose fate is unknown, and of resends with no final status.",
        discussion: """
            Rows whose last send may have reached Twilio unrecorded (a run killed between claim and \
            record, a timeout, a 5xx) are looked up in Twilio's message list: found ones are recorded \
            as sent, never resent; the rest are left due for the next run. Resends with no final status \
            after --confirm-after are fetched by SID and their status applied as a callback would. \
            Prints one summary line. Exit: 0 done, 1 some questions went unanswered (asked again \
            later), 2 usage or configuration (Twilio refused the credentials), 3 database error (unreachable, or a DBA's time limit: a line names the setting).
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policyOptions: PolicyOptions

    @Option(parsing: .unconditional, help: "Ask about an accepted resend after this long without a final status (90s, 15m, 24h).")
    var confirmAfter = DurationArgument(seconds: 900)
    @Option(parsing: .unconditional, help: "Stop asking about messages older than this (90s, 15m, 24h, 7d).") var maxAge = DurationArgument(seconds: 86_400)
    @Option(parsing: .unconditional, help: "Requests to Twilio in flight at once.") var concurrency = 8

    func validate() throws {
        try Bounds.check("--concurrency", concurrency, 1...256)
        try confirmAfter.check("--confirm-after", 1...DurationArgument.longest)
        try maxAge.check("--max-age", 60...DurationArgument.longest)
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
        let http = HTTPClient()
        defer { http.shutdown() }
        let reconciler = Reconciler(store: RetryStore(database: db, policy: policy, logger: logger),
                                    twilio: TwilioClient(config: config, http: http), options: options, logger: logger)
        do {
            let summary = try await reconciler.run()
            print(summary.description)
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
