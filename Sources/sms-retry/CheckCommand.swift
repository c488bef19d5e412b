import ArgumentParser
import Foundation
import SMSRetry

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check an installation before its first run: one line per check, ok / warning / problem and the fix.",
        discussion: """
            Checks that the database is reachable and supported, the table is found (schema.table), \
            every migration is applied, this role has the privileges the runtime commands need, \
            created_at is read in the right time zone, the policy file is valid, Twilio accepts the \
            credentials (a read-only request: nothing is sent), the sender is on the account, and \
            the status callback URL is set where serve-callbacks runs (--callbacks). \
            Exit: 0 all ok; 1 a warning; 2 a problem.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policyOptions: PolicyOptions
    @Option(help: "The role the router connects as: check it may call the SQL report functions (migrate --grant-router).")
    var routerRole: String?
    @Flag(help: "serve-callbacks runs for this installation: TWILIO_STATUS_CALLBACK_URL must be set.") var callbacks = false

    func run() async throws {
        let policy: Result<String?, PolicyError>
        var loaded: RetryPolicy? = .default
        if let path = policyOptions.path {
            do { loaded = try RetryPolicy.load(file: path); policy = .success(path) } catch let error as PolicyError { policy = .failure(error); loaded = nil }
        } else {
            policy = .success(nil)
        }
        let twilio: Result<TwilioConfig, ConfigurationError>
        do { twilio = .success(try TwilioConfig.fromEnvironment()) } catch { twilio = .failure(error) }
        let http = HTTPClient()
        var inputs = InstallationCheck.Inputs(conninfo: global.conninfo, settings: global.sessionSettings, twilio: twilio,
                                              policy: policy, callbacks: callbacks, http: http)
        inputs.loadedPolicy = loaded
        inputs.routerRole = routerRole
        let lines = await InstallationCheck.run(inputs)
        for line in lines { print(line.text) }
        let code = CheckLine.exitCode(lines)
        if code != 0 { throw ExitCode(code) }
    }
}
