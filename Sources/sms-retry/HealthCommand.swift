import ArgumentParser
import Foundation
import SMSRetry

/// For monitoring: the monitoring-plugin convention.
struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Print the retry system's health and why; exit 0 healthy, 1 warning, 2 critical, 3 unknown.",
        discussion: "3 also when the database cannot be reached or the views are missing. Thresholds default to the sms_retry.health_* settings.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policyOptions: PolicyOptions
    @Option(name: [.customLong("period"), .customLong("window")], parsing: .unconditional, help: "Period judged (sets sms_retry.period; default 24h). --window is its old name.")
    var period: DurationArgument?
    @Option(parsing: .unconditional, help: "Warning below this retry success rate (0-1).") var warnSuccessRate: Double?
    @Option(parsing: .unconditional, help: "Critical below this retry success rate (0-1).") var critSuccessRate: Double?
    @Option(parsing: .unconditional, help: "Warning above this many due rows.") var warnBacklog: Int?
    @Option(parsing: .unconditional, help: "Critical above this many due rows.") var critBacklog: Int?
    @Option(parsing: .unconditional, help: "Warning when the oldest due row has waited longer (e.g. 5m).") var warnDelay: DurationArgument?
    @Option(parsing: .unconditional, help: "Critical when the oldest due row has waited longer (e.g. 30m).") var critDelay: DurationArgument?

    func validate() throws {
        try period?.check("--period", 60...DurationArgument.longest)
        try Bounds.check("--warn-success-rate", warnSuccessRate, 0...1)
        try Bounds.check("--crit-success-rate", critSuccessRate, 0...1)
        try Bounds.check("--warn-backlog", warnBacklog, 0...2_000_000_000)
        try Bounds.check("--crit-backlog", critBacklog, 0...2_000_000_000)
        try warnDelay?.check("--warn-delay", 0...DurationArgument.longest)
        try critDelay?.check("--crit-delay", 0...DurationArgument.longest)
    }

    func run() async throws {
        let policy: RetryPolicy
        do { policy = try policyOptions.load() } catch let failure as CLIFailure {
            print("UNKNOWN: \(failure.message)")
            throw CLIFailure(code: 3, message: "")
        }
        let db: Database
        do { db = try await Database.connect(global.conninfo, settings: global.sessionSettings) } catch let error as DatabaseError {
            print("UNKNOWN: cannot reach the database: \(error.message.trimmingCharacters(in: .whitespacesAndNewlines))")
            throw CLIFailure(code: 3, message: "")
        }
        let analytics = Analytics(database: db)
        do {
            let settings: [(String, String?)] = [
                ("sms_retry.period", period.map { "\(Int($0.seconds)) seconds" }),
                ("sms_retry.health_warn_success_rate", warnSuccessRate.map { String($0) }),
                ("sms_retry.health_crit_success_rate", critSuccessRate.map { String($0) }),
                ("sms_retry.health_warn_backlog", warnBacklog.map { String($0) }),
                ("sms_retry.health_crit_backlog", critBacklog.map { String($0) }),
                ("sms_retry.health_warn_delay", warnDelay.map { "\(Int($0.seconds)) seconds" }),
                ("sms_retry.health_crit_delay", critDelay.map { "\(Int($0.seconds)) seconds" }),
            ]
            for case let (name, value?) in settings { try await analytics.set(name, value) }
            let health = try await analytics.health()
            // The spend guard's budget and held ranges (the policy file's spend keys): the worse of the two.
            // A monitoring role that may read only the views cannot count: said, not failed, when limits are set.
            let spend: (level: Int32, reasons: [String])
            do { spend = try await RetryStore(database: db, policy: policy).spendHealth() } catch let error as DatabaseError {
                spend = (0, policy.spend.needsFleetCount ? ["spend not checked: \(explained(error))"] : [])
            }
            let code = max(health.exitCode, spend.level)
            let status = code == 0 ? "HEALTHY" : code == 1 ? "WARNING" : "CRITICAL"
            let rate = health.retrySuccessRate.map { String(format: "%.1f%%", $0 * 100) } ?? "n/a"
            print("\(status): retry success rate \(rate) over \(health.finishedRetries) finished retries, "
                  + "\(health.backlog) due now, oldest due \(health.oldestDueSeconds) s")
            for reason in health.reasons + spend.reasons { print("- \(reason)") }
            if code != 0 { throw CLIFailure(code: code, message: "") }
        } catch let error as DatabaseError {
            print("UNKNOWN: \(explained(error))")
            if let limit = await ServerLimit.read(for: error, on: db) { print("- \(limit.line("the health view"))") }
            throw CLIFailure(code: 3, message: error.sqlState == "42P01" ? "the analytics views are missing: run sms-retry migrate" : "")
        }
    }
}
