import Foundation

/// Why the spend guard closed or held a row (`sms_retry.reason`, the history entry's label).
public enum SpendReason: String, Sendable, CaseIterable {
    /// The recipient's country is not in `resend_countries`: closed unsent.
    case countryNotAllowed = "country_not_allowed"
    /// The fleet's daily resends or their estimated cost reached the budget: held to the next day.
    case budget = "budget_held"
    /// The range's resends in the last hour reached `max_resends_per_prefix_per_hour`: held.
    case prefixVelocity = "prefix_held"
    /// Twilio's SMS pumping protection (30450) blocked it, or the run stopped its range: held.
    case pumping = "pumping_held"
}

/// What the fleet has resent so far, counted from the table at a claim: today's resends (in
/// the budget's zone) and their estimated cost, and each range's resends in the last hour.
public struct SpendSoFar: Sendable, Equatable {
    public var resends = 0
    public var cost = 0.0
    public var rangeLastHour: [String: Int] = [:]

    public init(resends: Int = 0, cost: Double = 0, rangeLastHour: [String: Int] = [:]) {
        self.resends = resends
        self.cost = cost
        self.rangeLastHour = rangeLastHour
    }
}

/// What may be spent on one resend, as pure logic: given the policy, what the fleet has spent
/// so far and a row's number and segments, send it, hold it (until when, why) or close it.
/// A guard decides a claimed batch in order; each send it allows counts toward the next rows.
public struct SpendGuard: Sendable {
    public enum Verdict: Sendable, Equatable {
        /// Send; `cost` is its estimate (segments × the country's price), `range` its range.
        case send(country: String?, range: String?, cost: Double)
        /// Held, uncounted, until `until`.
        case hold(SpendReason, until: Date, why: String)
        /// Closed unsent.
        case close(SpendReason, why: String)
    }

    public let policy: SpendPolicy
    public let now: Date
    public private(set) var soFar: SpendSoFar

    public init(policy: SpendPolicy, soFar: SpendSoFar = SpendSoFar(), now: Date) {
        self.policy = policy
        self.soFar = soFar
        self.now = now
    }

    /// Whether `number` may be resent to at all (`resend_countries`): nil when it may, else the
    /// verdict that closes the row. A number whose country is unknown is outside any list.
    public static func countryVerdict(_ number: String, policy: SpendPolicy) -> Verdict? {
        guard let allowed = policy.countries else { return nil }
        let country = RecipientCountries.country(number)
        if let country, allowed.contains(country) { return nil }
        return .close(.countryNotAllowed, why: "recipient's country \(country ?? "unknown") is not in resend_countries (\(allowed.sorted().joined(separator: ", ")))")
    }

    /// The decision for a resend of `segments` segments to `number`; a send is counted into
    /// `soFar` so the batch's later rows see it.
    public mutating func decide(number: String, segments: Int) -> Verdict {
        if let closed = Self.countryVerdict(number, policy: policy) { return closed }
        let country = RecipientCountries.country(number)
        let range = RecipientCountries.range(number, digits: policy.prefixDigits)
        let cost = Double(max(segments, 1)) * policy.price(country)
        if let cap = policy.maxResendsPerDay, soFar.resends + 1 > cap {
            return .hold(.budget, until: nextDay, why: "the fleet's \(soFar.resends) resends today reached max_resends_per_day \(cap)")
        }
        if let cap = policy.maxCostPerDay, soFar.cost + cost > cap + 1e-9 {
            return .hold(.budget, until: nextDay, why: "the fleet's resends today cost an estimated \(Self.money(soFar.cost)); this one (\(Self.money(cost))) would pass max_resend_cost_per_day \(Self.money(cap))")
        }
        if let cap = policy.maxPerRangePerHour, let range, soFar.rangeLastHour[range, default: 0] + 1 > cap {
            return .hold(.prefixVelocity, until: now.addingTimeInterval(3600),
                         why: "range \(range) had \(soFar.rangeLastHour[range, default: 0]) resends in the last hour, max_resends_per_prefix_per_hour \(cap)")
        }
        soFar.resends += 1
        soFar.cost += cost
        if let range { soFar.rangeLastHour[range, default: 0] += 1 }
        return .send(country: country, range: range, cost: cost)
    }

    /// The start of today in the budget's zone.
    public var dayStart: Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = policy.dayZone
        return calendar.startOfDay(for: now)
    }

    /// The start of tomorrow in the budget's zone: when a held row may go.
    public var nextDay: Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = policy.dayZone
        return calendar.date(byAdding: .day, value: 1, to: dayStart) ?? now.addingTimeInterval(86_400)
    }

    /// How much of the daily budget is used (the larger of count and cost), nil without one.
    public static func used(_ soFar: SpendSoFar, policy: SpendPolicy) -> Double? {
        var parts: [Double] = []
        if let cap = policy.maxResendsPerDay { parts.append(cap == 0 ? 1 : Double(soFar.resends) / Double(cap)) }
        if let cap = policy.maxCostPerDay { parts.append(cap == 0 ? 1 : soFar.cost / cap) }
        return parts.max()
    }

    /// The hold of a row Twilio's pumping protection blocked (`code`): at least `pumpingHold`
    /// seconds, or as long as the code's own rule says when longer.
    public static func pumpingHold(policy: SpendPolicy, ruleDelay: Double) -> Double { max(policy.pumpingHold, ruleDelay) }

    /// The reason of a hold or a close, nil for a send.
    public static func reason(of verdict: Verdict) -> SpendReason? {
        switch verdict {
        case .send: nil
        case .hold(let reason, _, _), .close(let reason, _): reason
        }
    }

    static func money(_ amount: Double) -> String { String(format: "%.4f", amount) }
}
