import Foundation

/// The policy as the SQL report functions read it (migration 012's `sms_retry_policy()`): the
/// decision's inputs only (rules by code, transport, unlisted 3xxxx, cap, jitter, and since
/// migration 014 the pumping codes and their hold, `sms_retry_report_status`'s), as one JSON
/// object with sorted keys, so the text `migrate` writes and `check` compares is stable.
/// `sms_retry_decide(policy, error_code, attempts_made)` is `decide` over this object.
extension RetryPolicy {
    public var sqlJSON: String { SQLPolicyText(self).whole }
}

/// `RetryPolicy.sqlJSON` in pieces, rendered once (a store keeps one): the whole policy, or the
/// policy as the decision for one code reads it (`forCode`). The library passes the latter to
/// the report functions (migration 015), which parse it at every call: the whole built-in policy
/// is ~4.8 kB of JSON, ~35 µs of the server's time to parse per report; one code's is ~0.8 kB.
/// `sms_retry_decide` reads `codes -> code` and nothing else under `codes`, so both decide alike
/// (`SQLReportTests.decideAgrees` holds them equal).
struct SQLPolicyText: Sendable {
    /// Each listed code's rule, as JSON.
    let rules: [Int: String]
    /// The keys after `codes`: jitter, max_delay, pumping_codes, pumping_hold_seconds, transport,
    /// unknown_3xxxx.
    let rest: String

    init(_ policy: RetryPolicy) {
        func number(_ d: Double) -> String {
            d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
        }
        func rule(_ r: RetryRule) -> String {
            let meaning = String(data: try! JSONSerialization.data(withJSONObject: r.meaning, options: .fragmentsAllowed), encoding: .utf8)!
            return #"{"base_delay": \#(number(r.baseDelay)), "max_retries": \#(r.maxRetries), "meaning": \#(meaning), "retryable": \#(r.retryable), "strategy": "\#(r.strategy.rawValue)"}"#
        }
        rules = policy.codes.mapValues(rule)
        let pumping = policy.spend.pumpingCodes.sorted().map(String.init).joined(separator: ", ")
        rest = #""jitter": \#(number(policy.jitter)), "max_delay": \#(number(policy.maxDelay)), "pumping_codes": [\#(pumping)], "pumping_hold_seconds": \#(number(policy.spend.pumpingHold)), "transport": \#(rule(policy.transport)), "unknown_3xxxx": \#(rule(policy.unknown3xxxx))"#
    }

    var whole: String {
        #"{"codes": {\#(rules.keys.sorted().map { #""\#($0)": \#(rules[$0]!)"# }.joined(separator: ", "))}, \#(rest)}"#
    }

    /// The policy with only `code`'s rule under `codes` (none when `code` is nil or unlisted).
    func forCode(_ code: Int?) -> String {
        guard let code, let rule = rules[code] else { return #"{"codes": {}, \#(rest)}"# }
        return #"{"codes": {"\#(code)": \#(rule)}, \#(rest)}"#
    }
}
