import Foundation

/// What `health` says of spending, as pure logic: WARNING from 80% of the daily budget or while
/// a range is held (named), CRITICAL once the budget is spent and rows wait for the next day.
public enum SpendHealth {
    /// 0 healthy, 1 warning, 2 critical (the monitoring-plugin convention), and why.
    public static func judge(soFar: SpendSoFar?, policy: SpendPolicy,
                             held: [(reason: SpendReason, range: String, rows: Int)]) -> (level: Int32, reasons: [String]) {
        var level: Int32 = 0
        var reasons: [String] = []
        let budgetHeld = held.filter { $0.reason == .budget }.reduce(0) { $0 + $1.rows }
        let spent = soFar.map { describe($0, policy: policy) } ?? ""
        if budgetHeld > 0 {
            level = 2
            reasons.append("daily resend budget spent: \(budgetHeld) resend(s) held to the next day\(spent)")
        } else if let soFar, let used = SpendGuard.used(soFar, policy: policy), used >= 0.8 {
            level = 1
            reasons.append("daily resend budget \(Int((used * 100).rounded(.down)))% used\(spent)")
        }
        for (reason, label) in [(SpendReason.prefixVelocity, "held at their range's hourly cap (max_resends_per_prefix_per_hour)"),
                                (SpendReason.pumping, "held for Twilio's SMS pumping protection (30450)")] {
            var byRange: [String: Int] = [:]
            for h in held where h.reason == reason { byRange[h.range, default: 0] += h.rows }
            guard !byRange.isEmpty else { continue }
            level = max(level, 1)
            let top = byRange.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.prefix(5)
                .map { "\($0.key.isEmpty ? "unknown range" : $0.key) (\($0.value))" }
            reasons.append("resends \(label): \(top.joined(separator: ", "))\(byRange.count > 5 ? " and \(byRange.count - 5) more ranges" : "")")
        }
        return (level, reasons)
    }

    static func describe(_ soFar: SpendSoFar, policy: SpendPolicy) -> String {
        var parts: [String] = []
        if let cap = policy.maxResendsPerDay { parts.append("\(soFar.resends) of max_resends_per_day \(cap)") }
        if let cap = policy.maxCostPerDay { parts.append("an estimated \(SpendGuard.money(soFar.cost)) of max_resend_cost_per_day \(SpendGuard.money(cap))") }
        return parts.isEmpty ? "" : " (\(parts.joined(separator: ", ")))"
    }
}

/// `check`'s question about countries, as pure logic: to how many countries the table's recent
/// messages went (most messages first), and how many is more than a handful.
public enum CountryCheck {
    public static let handful = 5

    /// The countries of `numbers`, the most frequent first (unknown numbers left out).
    public static func countries(_ numbers: [String]) -> [String] {
        var counts: [String: Int] = [:]
        for number in numbers { if let country = RecipientCountries.country(number) { counts[country, default: 0] += 1 } }
        return counts.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map(\.key)
    }
}
