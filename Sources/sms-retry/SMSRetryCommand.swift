import ArgumentParser
import Foundation
import SMSRetry

@main
struct SMSRetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sms-retry",
        abstract: "Makes failed outbound SMS recover by themselves, in place on sms_usage_logs.",
        discussion: """
            Exit codes: 0 done; 1 some rows could not be processed; 2 usage or configuration \
            error (a command that writes pointed at a read-only standby included); 3 database error (unreachable, or a DBA's time limit); 4 (run) Twilio outage, sending stopped.
            """,
        version: "sms-retry \(SMSRetryVersion.description)",
        subcommands: [RunCommand.self, CheckCommand.self, MigrateCommand.self, ScheduleCommand.self, MarkSentCommand.self,
                      StatsCommand.self, HealthCommand.self, RetryNowCommand.self, CancelCommand.self,
                      ExpireCommand.self, PolicyCommand.self, DeliveryStatusCommand.self,
                      ServeCallbacksCommand.self, ReconcileCommand.self])

    /// Parses, runs, and maps every ending onto the documented exit codes (ArgumentParser's own
    /// usage errors would exit 64; cron users were promised 2).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let error as CLIFailure {
            if !error.message.isEmpty { FileHandle.standardError.write(Data("sms-retry: \(error.message)\n".utf8)) }
            Foundation.exit(error.code)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            if let exit = error as? ExitCode { Foundation.exit(exit.rawValue) }
            // A usage error is one line naming the flag, the value and what it takes (the
            // usage summary is in --help).
            let line = message(for: error).split(separator: "\n").first.map(String.init) ?? "usage error"
            FileHandle.standardError.write(Data("sms-retry: \(line)\n".utf8))
            // health follows the monitoring-plugin convention, where 2 means critical: a usage
            // error there is UNKNOWN (3).
            Foundation.exit(CommandLine.arguments.dropFirst().first == "health" ? 3 : Exit.usage)
        }
    }
}

/// The exit codes cron and monitoring read.
enum Exit {
    static let ok: Int32 = 0
    static let partial: Int32 = 1
    static let usage: Int32 = 2
    static let database: Int32 = 3
    /// `run` only: the outage breaker opened; unsent rows were handed back uncounted.
    static let outage: Int32 = 4
}

/// An ending with a message for stderr and a documented exit code.
struct CLIFailure: Error {
    var code: Int32
    var message: String

    // The row problems several commands report, worded once.
    static func noRow(_ id: Int) -> CLIFailure { CLIFailure(code: Exit.partial, message: "no sms_usage_logs row with id \(id)") }
    static func notOutbound(_ id: Int) -> CLIFailure { CLIFailure(code: Exit.partial, message: "row \(id) is not an outbound message") }
    static func alreadySent(_ id: Int) -> CLIFailure { CLIFailure(code: Exit.partial, message: "row \(id) was already sent") }
    static func inFlight(_ id: Int) -> CLIFailure {
        CLIFailure(code: Exit.partial, message: "row \(id) is being sent by a run right now; try again when its lease ends")
    }
}
