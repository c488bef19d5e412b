import Foundation

/// What resends may cost (the policy file's spend keys). Every limit is off by default: a policy
/// file without them resends as before. Pure data; `SpendGuard` makes the decisions.
public struct SpendPolicy: Sendable, Equatable {
    /// `resend_countries`: the ISO 3166-1 alpha-2 countries resends may go to (the recipient's,
    /// from the number); nil: every country.
    public var countries: Set<String>? = nil
    /// `max_resends_per_day`: resends the whole fleet may make in a day; nil: no limit.
    public var maxResendsPerDay: Int? = nil
    /// `max_resend_cost_per_day`: the estimated cost of a day's resends, in the account's
    /// currency (segments × `prices`); nil: no limit.
    public var maxCostPerDay: Double? = nil
    /// `resend_prices`: price per segment by country; `defaultPrice` (`"default"`) for the others.
    public var prices: [String: Double] = ["US": 0.0083, "CA": 0.0083]
    public var defaultPrice = 0.05
    /// `max_resends_per_prefix_per_hour`: resends to one number range (`prefixDigits` after the
    /// calling code) in the last hour, fleet-wide; nil: no limit.
    public var maxPerRangePerHour: Int? = nil
    /// `prefix_digits`: the digits after the calling code that name a range (6: `+44 770090`).
    public var prefixDigits = 6
    /// `budget_time_zone`: where a day starts and ends for the daily limits (UTC by default).
    public var dayZone = TimeZone(identifier: "UTC")!
    /// `pumping_codes`: Twilio's SMS pumping protection (30450): the row is held, uncounted, for
    /// at least `pumpingHold` seconds (Twilio lifts the block after 15–30 minutes).
    public var pumpingCodes: Set<Int> = [30450]
    public var pumpingHold: Double = 1800
    /// A run that meets this many pumping answers for one range stops that range for the run.
    public var pumpingStopAfter = 3

    public init() {}

    /// Whether a limit needs the fleet's spend so far (counted from the table at each claim).
    public var needsFleetCount: Bool { maxResendsPerDay != nil || maxCostPerDay != nil || maxPerRangePerHour != nil }

    /// The price of one segment to `country` (nil: unknown country, the default price).
    public func price(_ country: String?) -> Double { country.flatMap { prices[$0] } ?? defaultPrice }

    /// The keys, for the unknown-key message and README.
    static let keys = ["resend_countries", "max_resends_per_day", "max_resend_cost_per_day", "resend_prices",
                       "max_resends_per_prefix_per_hour", "prefix_digits", "budget_time_zone", "pumping_codes",
                       "pumping_hold_seconds", "pumping_stop_after"]
}

extension RetryPolicy {
    /// Parses one spend key of a policy file into `spend`; false when `key` is not one.
    static func spendKey(_ key: String, _ value: JSONValue, into spend: inout SpendPolicy, _ source: String) throws -> Bool {
        func fail(_ name: String, _ problem: String) -> PolicyError { PolicyError(source: source, key: name, problem: problem) }
        func whole(_ value: JSONValue, _ name: String, in range: ClosedRange<Int>) throws -> Int {
            guard case .number(let n) = value, n == n.rounded(), abs(n) < 1e15 else { throw fail(name, "must be a whole number") }
            guard range.contains(Int(n)) else { throw fail(name, "\(Int(n)) is out of range \(range.lowerBound)–\(range.upperBound)") }
            return Int(n)
        }
        func amount(_ value: JSONValue, _ name: String) throws -> Double {
            guard case .number(let n) = value, n.isFinite else { throw fail(name, "must be a number") }
            guard n >= 0, n <= 1_000_000 else { throw fail(name, "\(n) is out of range 0–1000000") }
            return n
        }
        func country(_ text: String, _ name: String) throws -> String {
            guard text.count == 2, text.unicodeScalars.allSatisfy({ ("A"..."Z").contains($0) }) else {
                throw fail(name, "\"\(text)\" is not an ISO 3166-1 alpha-2 country code in capitals such as \"GB\"")
            }
            return text
        }
        switch key {
        case "resend_countries":
            if case .null = value { spend.countries = nil; return true }
            guard case .array(let items) = value else { throw fail(key, "must be a list of ISO country codes such as [\"US\", \"CA\"] (or null for every country)") }
            guard !items.isEmpty else { throw fail(key, "is empty: no resend could go anywhere (leave the key out, or null, for every country)") }
            spend.countries = Set(try items.map {
                guard case .string(let text) = $0 else { throw fail(key, "must be a list of ISO country codes such as [\"US\", \"CA\"]") }
                return try country(text, key)
            })
        case "max_resends_per_day":
            if case .null = value { spend.maxResendsPerDay = nil; return true }
            spend.maxResendsPerDay = try whole(value, key, in: 0...100_000_000)
        case "max_resend_cost_per_day":
            if case .null = value { spend.maxCostPerDay = nil; return true }
            spend.maxCostPerDay = try amount(value, key)
        case "resend_prices":
            guard case .object(let prices) = value else { throw fail(key, "must be an object of country → price per segment, with \"default\" for the others") }
            for (name, priceValue) in prices {
                let price = try amount(priceValue, "\(key).\(name)")
                if name == "default" { spend.defaultPrice = price } else { spend.prices[try country(name, "\(key).\(name)")] = price }
            }
        case "max_resends_per_prefix_per_hour":
            if case .null = value { spend.maxPerRangePerHour = nil; return true }
            spend.maxPerRangePerHour = try whole(value, key, in: 1...1_000_000)
        case "prefix_digits":
            spend.prefixDigits = try whole(value, key, in: 1...10)
        case "budget_time_zone":
            guard case .string(let name) = value, let zone = TimeZone(identifier: name) else {
                throw fail(key, "must be an IANA time zone such as \"UTC\" or \"Europe/London\"")
            }
            spend.dayZone = zone
        case "pumping_codes":
            guard case .array(let items) = value else { throw fail(key, "must be a list of Twilio error codes such as [30450]") }
            spend.pumpingCodes = Set(try items.map { try whole($0, key, in: 10000...99999) })
        case "pumping_hold_seconds":
            guard case .number(let n) = value, n.isFinite else { throw fail(key, "must be a number") }
            guard (1800...86_400).contains(n) else { throw fail(key, "\(n) is out of range 1800–86400 (Twilio lifts its block after 15–30 minutes)") }
            spend.pumpingHold = n
        case "pumping_stop_after":
            spend.pumpingStopAfter = try whole(value, key, in: 1...1000)
        default:
            return false
        }
        return true
    }
}
