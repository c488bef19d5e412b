import ArgumentParser
import Foundation
import SMSRetry

/// Prints the effective retry policy (the default table plus any override file).
struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Print the effective retry policy; with --policy FILE, check the file first.",
        subcommands: [PolicyApplyCommand.self])

    @OptionGroup var policyOptions: PolicyOptions
    @OptionGroup var log: LogOptions

    func run() throws {
        let policy = try policyOptions.load()
        func describe(_ rule: RetryRule) -> String {
            guard rule.retryable else { return "never" }
            return "\(rule.strategy.rawValue) \(rule.maxRetries)×\(Int(rule.baseDelay)) s"
        }
        print("code   retry                   meaning")
        for code in policy.codes.keys.sorted() {
            let rule = policy.codes[code]!
            print(String(code).padding(toLength: 7, withPad: " ", startingAt: 0)
                  + describe(rule).padding(toLength: 24, withPad: " ", startingAt: 0) + rule.meaning)
        }
        print("5xx/transport  \(describe(policy.transport))")
        print("other 3xxxx    \(describe(policy.unknown3xxxx)); other 2xxxx and other codes: never")
        print("20429 throttled and 20003 authentication: retried later, no attempt counted")
        print("max delay \(Int(policy.maxDelay)) s, jitter ±\(Int(policy.jitter * 100))%")
    }
}
