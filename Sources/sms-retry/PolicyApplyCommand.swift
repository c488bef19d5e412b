import ArgumentParser
import Foundation
import SMSRetry

/// `policy apply FILE`: the SQL report functions read this policy from now on (`sms_retry_policy()`,
/// migration 012), as `run --policy FILE` does.
struct PolicyApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Make the SQL report functions read this policy file (the one run reads through --policy or $SMS_RETRY_POLICY).",
        discussion: "Checks the file, then redefines sms_retry_policy() in the database. Exit: 0 applied; 2 the file is not a valid policy, or migration 012 is not applied; 3 database unreachable.")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The policy file (JSON).") var file: String

    func run() async throws {
        let policy: RetryPolicy
        do { policy = try RetryPolicy.load(file: file) } catch let error as PolicyError {
            throw CLIFailure(code: Exit.usage, message: error.description)
        }
        let db = try await global.connect(.writes(command: "policy apply"))
        do {
            guard try await db.query("SELECT to_regprocedure('sms_retry_policy()') IS NOT NULL AS made")[0].bool("made") == true else {
                throw CLIFailure(code: Exit.usage, message: "policy apply: migration 012 is not applied (sms-retry migrate)")
            }
            try await SQLPolicy.install(policy, on: db)
            print("policy: \(file) installed for the SQL report functions")
        } catch let error as DatabaseError {
            throw databaseFailure(error)
        }
    }
}
