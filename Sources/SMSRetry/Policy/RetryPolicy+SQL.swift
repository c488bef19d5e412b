import Foundation

/// The policy as the SQL report functions read it (migration 012's `sms_retry_policy()`): the
/// decision's inputs only (rules by code, transport, unlisted 3xxxx, cap, jitter, and since
/// migration 014 the pumping codes and their hold, `sms_retry_report_status`'s), as one JSON
/// object with sorted keys, so the text `migrate` writes and `check` compares is stable.
/// `sms_retry_decide(policy, error_code, attempts_made)` is `decide` over this object.
extension RetryPolicy {
    public var sqlJSON: String {
        func rule(_ r: RetryRule) -> String {
            let meaning = String(data: try! JSONSerialization.data(withJSONObject: r.meaning, options: .fragmentsAllowed), encoding: .utf8)!
            return #"{"base_delay": \#(number(r.baseDelay)), "max_retries": \#(r.maxRetries), "meaning": \#(meaning), "retryable": \#(r.retryable), "strategy": "\#(r.strategy.rawValue)"}"#
        }
        let codes = self.codes.keys.sorted().map { #""\#($0)": \#(rule(self.codes[$0]!))"# }.joined(separator: ", ")
        let pumping = spend.pumpingCodes.sorted().map(String.init).joined(separator: ", ")
        return #"{"codes": {\#(codes)}, "jitter": \#(number(jitter)), "max_delay": \#(number(maxDelay)), "pumping_codes": [\#(pumping)], "pumping_hold_seconds": \#(number(spend.pumpingHold)), "transport": \#(rule(transport)), "unknown_3xxxx": \#(rule(unknown3xxxx))}"#
    }

    private func number(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
    }
}
