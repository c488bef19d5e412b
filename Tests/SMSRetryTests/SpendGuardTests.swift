import Foundation
import Testing
@testable import SMSRetry

/// The spend guard's rules without a database: countries, the daily budget in count and cost,
/// a range's hourly cap, pumping holds, and the policy file's spend keys.
@Suite struct SpendGuardTests {
    static let noon = ISO8601DateFormatter().date(from: "2027-03-10T12:00:00Z")!
    static let tomorrow = ISO8601DateFormatter().date(from: "2027-03-11T00:00:00Z")!

    @Test("the country and range of a number, from libphonenumber's data")
    func countries() {
        #expect(RecipientCountries.country("+14155550100") == "US")
        #expect(RecipientCountries.country("+14165550100") == "CA")
        #expect(RecipientCountries.country("+12425550100") == "BS")
        #expect(RecipientCountries.country("+447700900123") == "GB")
        #expect(RecipientCountries.country("+37369123456") == "MD")
        #expect(RecipientCountries.country("+77012345678") == "KZ")
        #expect(RecipientCountries.country("+79161234567") == "RU")
        #expect(RecipientCountries.country("4155550100") == nil && RecipientCountries.country("+") == nil)
        #expect(RecipientCountries.range("+447700900123", digits: 6) == "+44 770090")
        #expect(RecipientCountries.range("+37369123456", digits: 4) == "+373 6912")
        #expect(RecipientCountries.range("+14155550100", digits: 6) == "+1 415555")
    }

    @Test("resend_countries: a number outside the list, or of no known country, is closed; no list sends everywhere")
    func countryList() {
        var policy = SpendPolicy()
        #expect(SpendGuard.countryVerdict("+37369123456", policy: policy) == nil)
        policy.countries = ["US", "CA"]
        #expect(SpendGuard.countryVerdict("+14155550100", policy: policy) == nil)
        guard case .close(.countryNotAllowed, let why)? = SpendGuard.countryVerdict("+37369123456", policy: policy) else {
            Issue.record("Moldova is outside US, CA"); return
        }
        #expect(why.contains("MD") && why.contains("CA, US"), "\(why)")
        if case .close(.countryNotAllowed, _)? = SpendGuard.countryVerdict("+999123", policy: policy) {} else { Issue.record("unknown country") }
    }

    @Test("the daily count: sends up to max_resends_per_day, counting the batch's own sends, then holds to the next day")
    func dailyCount() {
        var policy = SpendPolicy()
        policy.maxResendsPerDay = 10
        var guardian = SpendGuard(policy: policy, soFar: SpendSoFar(resends: 8), now: Self.noon)
        #expect(guardian.decide(number: "+14155550100", segments: 1) == .send(country: "US", range: "+1 415555", cost: 0.0083))
        if case .send = guardian.decide(number: "+14155550101", segments: 1) {} else { Issue.record("the 10th goes") }
        guard case .hold(.budget, let until, let why) = guardian.decide(number: "+14155550102", segments: 1) else {
            Issue.record("the 11th is held"); return
        }
        #expect(until == Self.tomorrow && why.contains("10 resends today"), "\(why)")
        #expect(guardian.soFar.resends == 10)
    }

    @Test("the daily cost: segments × the country's price (or the default), held when it would pass the budget")
    func dailyCost() {
        var policy = SpendPolicy()
        policy.maxCostPerDay = 1.0
        policy.prices["MD"] = 0.30
        var guardian = SpendGuard(policy: policy, soFar: SpendSoFar(cost: 0.35), now: Self.noon)
        #expect(guardian.decide(number: "+37369123456", segments: 2) == .send(country: "MD", range: "+373 691234", cost: 0.60))
        if case .hold(.budget, _, _) = guardian.decide(number: "+37369123457", segments: 1) {} else { Issue.record("0.95 + 0.30 > 1") }
        // A cheaper message still fits: 0.95 + 0.05 (the default price, GB unpriced) = 1.
        #expect(guardian.decide(number: "+447700900123", segments: 1) == .send(country: "GB", range: "+44 770090", cost: 0.05))
    }

    @Test("a budget day in another zone: Honolulu's day starts at 10:00 UTC")
    func dayZone() {
        var policy = SpendPolicy()
        policy.dayZone = TimeZone(identifier: "Pacific/Honolulu")!
        let guardian = SpendGuard(policy: policy, now: Self.noon)
        #expect(guardian.dayStart == ISO8601DateFormatter().date(from: "2027-03-10T10:00:00Z")!)
        #expect(guardian.nextDay == ISO8601DateFormatter().date(from: "2027-03-11T10:00:00Z")!)
    }

    @Test("a range's hourly cap: the burst to one range is held for an hour, other ranges go on")
    func rangeCap() {
        var policy = SpendPolicy()
        policy.maxPerRangePerHour = 3
        var guardian = SpendGuard(policy: policy, soFar: SpendSoFar(rangeLastHour: ["+373 691234": 2]), now: Self.noon)
        if case .send = guardian.decide(number: "+37369123400", segments: 1) {} else { Issue.record("the 3rd goes") }
        guard case .hold(.prefixVelocity, let until, let why) = guardian.decide(number: "+37369123401", segments: 1) else {
            Issue.record("the 4th is held"); return
        }
        #expect(until == Self.noon.addingTimeInterval(3600) && why.contains("+373 691234"), "\(why)")
        if case .send = guardian.decide(number: "+37369999999", segments: 1) {} else { Issue.record("another range goes") }
    }

    @Test("budget use: the larger of count and cost; pumping holds at least 30 minutes")
    func usedAndPumping() {
        var policy = SpendPolicy()
        #expect(SpendGuard.used(SpendSoFar(resends: 5), policy: policy) == nil)
        policy.maxResendsPerDay = 100
        policy.maxCostPerDay = 10
        #expect(SpendGuard.used(SpendSoFar(resends: 50, cost: 8.5), policy: policy) == 0.85)
        #expect(SpendGuard.pumpingHold(policy: policy, ruleDelay: 1200) == 1800)
        #expect(SpendGuard.pumpingHold(policy: policy, ruleDelay: 2400) == 2400)
    }

    @Test("a pumping answer (30450) holds the row uncounted for at least 30 minutes and signals the run")
    func pumpingAnswer() {
        let row = RetryStore.ClaimedRow(id: 7, phoneNumber: "+37369123456", direction: "outbound", content: "code 1", retryCount: 0,
                                        maxRetries: 3, leaseUntil: "l", previousLease: nil, doubt: nil, sid: nil, ageSeconds: 60)
        let message = OutboundMessage(to: row.phoneNumber, body: "code 1", from: "+15005550006")
        let (outcome, signals) = AnswerOutcome.map(.rejected(code: 30450, message: "blocked", httpStatus: 400, seconds: 0.1), row: row, message: message,
                                                   policy: .default, started: Self.noon, now: Self.noon, handBack: 30)
        // The default rule for 30450 (linear 1200 s) says 2400 s at the first resend: longer than 30 min, kept.
        #expect(signals.pumping && outcome.kind == .release && !outcome.counted && outcome.delay == 2400)
        #expect(outcome.reason == .pumpingHeld && outcome.outcome == .pumpingHeld && outcome.errorCode == 30450 && outcome.spendReason == .pumping)
        let (ordinary, plain) = AnswerOutcome.map(.rejected(code: 30003, message: "unreachable", httpStatus: 400, seconds: 0.1), row: row,
                                                  message: message, policy: .default, started: Self.noon, now: Self.noon, handBack: 30)
        #expect(!plain.pumping && ordinary.kind == .retry && ordinary.counted)
    }

    @Test("a pumping code in a delivery status (callback, reconcile) holds the row as at the create call: never closed, not stepped")
    func pumpingStatus() {
        // 2 resends made: the 30450 rule (2 attempts) would close the row as exhausted.
        let held = Outcome.status(id: 7, sid: "SM1", status: .undelivered, errorCode: 30450, attemptsMade: 2, counted: false,
                                  policy: .default, now: Self.noon)
        #expect(held.kind == .retry && !held.counted && held.delay == 3600 && held.maxRetries == nil)
        #expect(held.reason == .pumpingHeld && held.outcome == .pumpingHeld && held.errorCode == 30450 && held.finalStatus == .undelivered)
        #expect(held.note == "Twilio 30450 (SMS pumping protection); held 60 min")
        let first = Outcome.status(id: 7, sid: "SM1", status: .failed, errorCode: 30450, attemptsMade: 0, counted: false,
                                   policy: .default, now: Self.noon)
        #expect(first.delay == 1800 && first.reason == .pumpingHeld, "at least pumping_hold_seconds, over the rule's 1200 s")
        var other = RetryPolicy.default
        other.spend.pumpingCodes = []
        let ruled = Outcome.status(id: 7, sid: "SM1", status: .undelivered, errorCode: 30450, attemptsMade: 2, counted: false,
                                   policy: other, now: Self.noon)
        #expect(ruled.kind == .failed && ruled.reason == .exhausted, "not listed: the code's own rule")
    }

    @Test("triage closes a row outside resend_countries, and applies the claim's hold")
    func triage() {
        var policy = RetryPolicy.default
        policy.spend.countries = ["US"]
        var row = RetryStore.ClaimedRow(id: 7, phoneNumber: "+37369123456", direction: "outbound", content: "code 1", retryCount: 0,
                                        maxRetries: 3, leaseUntil: "l", previousLease: nil, doubt: nil, sid: nil, ageSeconds: 60)
        let sender = TwilioConfig.Sender.from("+15005550006")
        if case .spend(let o, .countryNotAllowed, _) = Triage.verdict(row, policy: policy, maxAge: 86_400, now: Self.noon, sender: sender) {
            #expect(o.kind == .failed && o.reason == .countryNotAllowed && o.outcome == .countryNotAllowed && !o.counted)
        } else { Issue.record("closed") }
        row.phoneNumber = "+14155550100"
        row.spend = .hold(.budget, until: Self.tomorrow, why: "spent")
        if case .spend(let o, .budget, _) = Triage.verdict(row, policy: policy, maxAge: 86_400, now: Self.noon, sender: sender) {
            #expect(o.kind == .release && o.delay == 12 * 3600 && o.reason == .budgetHeld && !o.counted)
        } else { Issue.record("held") }
    }

    func parse(_ text: String) throws -> RetryPolicy { try RetryPolicy.parse(Data(text.utf8), source: "p.json") }
    func problem(_ text: String) -> String {
        do { _ = try parse(text); return "" } catch { return "\(error)" }
    }

    @Test("the policy file's spend keys, and one clear line naming a bad one")
    func policyFile() throws {
        let p = try parse("""
            { "resend_countries": ["US", "CA"], "max_resends_per_day": 5000, "max_resend_cost_per_day": 50,
              "resend_prices": { "default": 0.1, "GB": 0.04 }, "max_resends_per_prefix_per_hour": 20, "prefix_digits": 5,
              "budget_time_zone": "America/New_York", "pumping_stop_after": 2 }
            """)
        #expect(p.spend.countries == ["US", "CA"] && p.spend.maxResendsPerDay == 5000 && p.spend.maxCostPerDay == 50)
        #expect(p.spend.price("GB") == 0.04 && p.spend.price("MD") == 0.1 && p.spend.price("US") == 0.0083)
        #expect(p.spend.maxPerRangePerHour == 20 && p.spend.prefixDigits == 5 && p.spend.dayZone.identifier == "America/New_York")
        #expect(p.spend.pumpingStopAfter == 2 && p.spend.needsFleetCount)
        #expect(!RetryPolicy.default.spend.needsFleetCount && RetryPolicy.default.spend.countries == nil)
        #expect(problem(#"{"resend_countries": ["us"]}"#) == #"policy p.json: resend_countries: "us" is not an ISO 3166-1 alpha-2 country code in capitals such as "GB""#)
        #expect(problem(#"{"resend_countries": []}"#).hasPrefix("policy p.json: resend_countries: is empty"))
        #expect(problem(#"{"max_resends_per_day": 1.5}"#) == "policy p.json: max_resends_per_day: must be a whole number")
        #expect(problem(#"{"max_resend_cost_per_day": -1}"#) == "policy p.json: max_resend_cost_per_day: -1.0 is out of range 0–1000000")
        #expect(problem(#"{"resend_prices": {"gb": 0.1}}"#).hasPrefix("policy p.json: resend_prices.gb: \"gb\" is not"))
        #expect(problem(#"{"budget_time_zone": "Mars/Olympus"}"#).hasPrefix("policy p.json: budget_time_zone: must be an IANA time zone"))
        #expect(problem(#"{"pumping_hold_seconds": 60}"#).hasPrefix("policy p.json: pumping_hold_seconds: 60.0 is out of range 1800–86400"))
        #expect(problem(#"{"max_resends_per_hour": 5}"#).contains("unknown key (expected") && problem(#"{"max_resends_per_hour": 5}"#).contains("resend_countries"))
    }

    @Test("health: WARNING from 80% of the budget or while a range is held (named), CRITICAL once rows wait for the next day")
    func health() {
        var policy = SpendPolicy()
        policy.maxResendsPerDay = 100
        #expect(SpendHealth.judge(soFar: SpendSoFar(resends: 79), policy: policy, held: []).level == 0)
        let warning = SpendHealth.judge(soFar: SpendSoFar(resends: 80), policy: policy, held: [])
        #expect(warning.level == 1 && warning.reasons == ["daily resend budget 80% used (80 of max_resends_per_day 100)"], "\(warning)")
        let critical = SpendHealth.judge(soFar: SpendSoFar(resends: 100), policy: policy, held: [(.budget, "+1 415555", 12)])
        #expect(critical.level == 2 && critical.reasons.first?.hasPrefix("daily resend budget spent: 12 resend(s) held to the next day") == true)
        let ranges = SpendHealth.judge(soFar: nil, policy: SpendPolicy(),
                                       held: [(.prefixVelocity, "+373 691200", 160), (.prefixVelocity, "+252 901200", 140), (.pumping, "+373 691200", 40)])
        #expect(ranges.level == 1 && ranges.reasons == [
            "resends held at their range's hourly cap (max_resends_per_prefix_per_hour): +373 691200 (160), +252 901200 (140)",
            "resends held for Twilio's SMS pumping protection (30450): +373 691200 (40)"], "\(ranges)")
    }

    @Test("check's countries: the recent messages' countries, most frequent first; more than 5 is more than a handful")
    func countryCheck() {
        let numbers = ["+14155550100", "+14155550101", "+447700900123", "+37369123456", "+25290123456", "+99890123456", "+4915112345678", "nonsense"]
        #expect(CountryCheck.countries(numbers) == ["US", "DE", "GB", "MD", "SO", "UZ"])
        #expect(CountryCheck.countries(numbers).count > CountryCheck.handful)
    }
}
