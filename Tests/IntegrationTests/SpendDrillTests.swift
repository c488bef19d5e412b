import Foundation
import Testing
@testable import SMSRetry
import TwilioStandIn

/// The spend guard's drill: an SMS pumping burst (hundreds of failed OTP sends to a few ranges
/// abroad, Twilio answering 30450 and 30003) mixed into ordinary domestic failures, worked by 3
/// `sms-retry run` processes at once on one table.
@Suite(.serialized) struct SpendDrillTests {
    /// Moldova, Somalia, Uzbekistan: one range each (`+373 691200`, …), 200 rows each.
    static let abroad = ["+3736912", "+2529012", "+9989012"]

    /// 300 domestic failures in 10 ranges of 30 (`+1 415700` … `+1 415709`), and the burst abroad,
    /// fallen due first (the burst is what the claims meet first).
    func seed(_ t: TestDatabase) async throws {
        for i in 0..<10 { try await t.seedDue(30, prefix: "+141570\(i)") }
        for prefix in Self.abroad { try await t.seedDue(200, prefix: prefix) }
        try await t.query("""
            UPDATE sms_usage_logs SET sms_metadata = '{"campaign": "drill", "category": "otp"}', next_retry_at = now() - interval '10 seconds'
            WHERE phone_number NOT LIKE '+1%'
            """)
    }

    func policyFile(_ json: String) throws -> String {
        let path = NSTemporaryDirectory() + "spend-\(UUID().uuidString).json"
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func threeRuns(_ t: TestDatabase, _ twilio: StandIn, policy: String) async throws -> [(code: Int32, out: String, err: String)] {
        try await withThrowingTaskGroup(of: (code: Int32, out: String, err: String).self) { group in
            for _ in 0..<3 {
                group.addTask {
                    try await runCLI(["run", "--database-url", t.conninfo, "--policy", policy, "--batch-size", "20", "--concurrency", "4"],
                                     environment: twilio.environment)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }

    /// Create requests per range (`+CC` and 6 digits), as the stand-in received them.
    func requestsPerRange(_ twilio: StandIn) async -> [String: Int] {
        var counts: [String: Int] = [:]
        for r in await twilio.server.received { counts[RecipientCountries.range(r.to, digits: 6) ?? "?", default: 0] += 1 }
        return counts
    }

    @Test("a pumping burst abroad among domestic failures, 3 runs at once: 0 resends abroad with a country list; per-range ≤ cap; the day's resends ≤ the budget; domestic rows resent as before")
    func pumpingBurst() async throws {
        // 1. A country list: nothing goes abroad, every domestic row is resent as before.
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        try await seed(t)
        let listed = try policyFile(#"{ "resend_countries": ["US", "CA"], "max_resends_per_prefix_per_hour": 40 }"#)
        let dry = try await runCLI(["run", "--dry-run", "--database-url", t.conninfo, "--policy", listed, "--limit", "1000"], environment: twilio.environment)
        #expect(dry.code == 0 && dry.out.components(separatedBy: "would close unsent as country_not_allowed: recipient's country MD is not in resend_countries (CA, US)").count - 1 == 200,
                "\(dry.code) \(dry.out.prefix(600)) \(dry.err.prefix(300))")
        #expect(dry.out.components(separatedBy: "would send").count - 1 == 300)
        let first = try await threeRuns(t, twilio, policy: listed)
        let received = await twilio.server.received
        let abroadSent = received.filter { !$0.to.hasPrefix("+1") }.count
        #expect(abroadSent == 0, "\(abroadSent) resends abroad")
        #expect(received.count == 300 && Set(received.map(\.to)).count == 300, "\(received.count)")
        #expect(first.map { summaryValue($0.out, "country_not_allowed") }.reduce(0, +) == 600, "\(first.map(\.out))")
        #expect(first.allSatisfy { $0.code == 0 }, "\(first.map { ($0.code, $0.err.suffix(300)) })")
        #expect(try await t.count("sms_retry ->> 'reason' = 'country_not_allowed' AND final_status = 'failed' AND retry_count = 0 AND next_retry_at IS NULL") == 600)
        #expect(try await t.count("phone_number LIKE '+1%' AND success AND retry_count = 1") == 300)

        // 2. No list: the ranges' hourly cap, Twilio's pumping block and the daily budget, shared by 3 runs.
        let u = try await TestDatabase.make()
        let pumped = try await StandIn.start()
        defer { Task { await pumped.stop() } }
        try await seed(u)
        await pumped.server.setChooser { _, to in
            to.hasPrefix("+3736912") ? .fail(code: 30450) : to.hasPrefix("+2529012") || to.hasPrefix("+9989012") ? .fail(code: 30003) : .accept
        }
        let capped = try policyFile(#"{ "max_resends_per_prefix_per_hour": 40, "max_resends_per_day": 250, "pumping_stop_after": 3 }"#)
        // The dry run says which rows the budget and the caps would hold now, and reserves nothing:
        // 250 would go (each range's first 40 at most), the 650 others held, whichever come first.
        let before = try await u.query("SELECT md5(string_agg(id || ':' || coalesce(sms_retry::text, '') || next_retry_at::text, ',' ORDER BY id)) AS h FROM sms_usage_logs")[0].string("h")
        let preview = try await runCLI(["run", "--dry-run", "--database-url", u.conninfo, "--policy", capped, "--limit", "1000"], environment: pumped.environment)
        let wouldSend = preview.out.split(separator: "\n").filter { $0.hasPrefix("would send ") }
        let previewIDs = wouldSend.compactMap { line in line.split(separator: " ").first { $0.hasPrefix("log_id=") }.map { String($0.dropFirst(7)) } }
        let previewNumbers = try await u.query("SELECT phone_number FROM sms_usage_logs WHERE id = ANY($1::bigint[])",
                                                [PGArray.literal(previewIDs)]).all.compactMap { $0.string("phone_number") }
        let previewRanges = Dictionary(grouping: previewNumbers) { RecipientCountries.range($0, digits: 6) ?? "?" }
        let previewBudget = summaryValue(preview.out, "budget_held"), previewPrefix = summaryValue(preview.out, "prefix_held")
        #expect(preview.code == 0 && wouldSend.count == 250 && previewBudget + previewPrefix == 650 && previewBudget > 0 && previewPrefix > 0,
                "\(preview.code) sends \(wouldSend.count) budget_held=\(previewBudget) prefix_held=\(previewPrefix) \(preview.out.suffix(300)) \(preview.err.prefix(300))")
        #expect(preview.out.components(separatedBy: "would hold as budget_held until ").count - 1 == previewBudget
                && preview.out.components(separatedBy: "would hold as prefix_held until ").count - 1 == previewPrefix
                && preview.out.contains("reached max_resends_per_day 250") && preview.out.contains("max_resends_per_prefix_per_hour 40"), "\(preview.out.prefix(600))")
        #expect(previewRanges.values.allSatisfy { $0.count <= 40 }, "\(previewRanges.mapValues(\.count))")
        let after = try await u.query("SELECT md5(string_agg(id || ':' || coalesce(sms_retry::text, '') || next_retry_at::text, ',' ORDER BY id)) AS h FROM sms_usage_logs")[0].string("h")
        let sentByPreview = await pumped.server.received.count
        #expect(before == after && sentByPreview == 0, "the dry run wrote, reserved or sent")
        let clock = ContinuousClock()
        let started = clock.now
        let second = try await threeRuns(u, pumped, policy: capped)
        let elapsed = clock.now - started
        let perRange = await requestsPerRange(pumped)
        let total = perRange.values.reduce(0, +)
        let budgetHeld = second.map { summaryValue($0.out, "budget_held") }.reduce(0, +)
        let prefixHeld = second.map { summaryValue($0.out, "prefix_held") }.reduce(0, +)
        let pumpingHeld = second.map { summaryValue($0.out, "pumping_held") }.reduce(0, +)
        #expect(total <= 250, "the day's resends \(total) over the budget 250: \(perRange)")
        #expect(perRange.values.allSatisfy { $0 <= 40 }, "\(perRange)")
        // Each run stops the pumped range at its 3rd block; up to 3 more of its sends (concurrency 4) were already out.
        #expect((perRange["+373 691200"] ?? 0) <= 3 * (3 + 3), "the pumped range stopped after 3 blocks per run: \(perRange)")
        #expect(budgetHeld > 0 && second.contains { $0.code == 1 }, "\(second.map(\.out))")
        #expect(second.allSatisfy { $0.code == 0 || $0.code == 1 }, "\(second.map { ($0.code, $0.err.suffix(300)) })")
        // Held rows are uncounted and wait: the budget's until the next day, the pumping block ≥ 30 minutes.
        #expect(try await u.count("sms_retry ->> 'reason' = 'budget_held' AND (retry_count <> 0 OR next_retry_at < date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 day')") == 0)
        #expect(try await u.count("sms_retry ->> 'reason' = 'pumping_held' AND (retry_count <> 0 OR next_retry_at < now() + interval '29 minutes')") == 0)
        let soFar = try await u.store(policyWith(capped)).spendSoFar()
        #expect(soFar.resends == total, "counted from the table: \(soFar.resends), requests \(total)")
        // The analytics: spend per day and country, the held rows by reason (migration 013).
        let spent = try await u.query("SELECT country, resends, accepted FROM sms_retry_spend_daily").all
        let byCountry = Dictionary(uniqueKeysWithValues: spent.map { ($0.string("country") ?? "", $0.int("resends") ?? 0) })
        #expect(byCountry.values.reduce(0, +) == total && byCountry["US"] == domesticSent(perRange) && (byCountry["SO"] ?? 0) <= 40, "\(byCountry)")
        #expect(spent.first { $0.string("country") == "US" }?.int("accepted") == domesticSent(perRange))
        let held = Dictionary(uniqueKeysWithValues: try await u.query("SELECT reason, rows FROM sms_retry_held").all.map { ($0.string("reason") ?? "", $0.int("rows") ?? 0) })
        #expect(held["budget_held"] == budgetHeld && held["prefix_held"] == prefixHeld && held["pumping_held"] == pumpingHeld, "\(held)")
        // health: CRITICAL while rows wait for the next day, and it names the held ranges.
        let health = try await runCLI(["health", "--database-url", u.conninfo, "--policy", capped])
        #expect(health.code == 2 && health.out.hasPrefix("CRITICAL") && health.out.contains("daily resend budget spent")
                && health.out.contains("+252 901200"), "\(health)")
        let domesticSent = try await u.count("phone_number LIKE '+1%' AND success AND retry_count = 1")
        let ranges = perRange.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        figure("spendGuard", "900 due rows (300 domestic in 10 ranges, 600 OTP abroad in 3 ranges); with resend_countries [US, CA]: resends abroad \(abroadSent), domestic resent 300 of 300, closed country_not_allowed 600; without a list, cap 40/range/hour, budget 250/day, 3 runs at once: \(total) resends (\(domesticSent) domestic), per range max \(perRange.values.max() ?? 0) [\(ranges)], budget_held=\(budgetHeld) prefix_held=\(prefixHeld) pumping_held=\(pumpingHeld), counted from the table \(soFar.resends) (\(elapsed.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1)))))")
    }

    @Test("check warns when the table's messages went to more than a handful of countries and resends may go to any; not with a list, not for a handful")
    func checkWarnsOfCountries() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        // US and CA, then Moldova, Somalia, Uzbekistan, the UK, Germany: 7 countries.
        let numbers = ["+14155550100", "+16045550100", "+37369120001", "+252901200001", "+998901200001", "+447700900123", "+4915112345678"]
        for number in numbers.prefix(4) { _ = try await t.insert(phone: number, success: true, error: nil) }
        var r = try await runCLI(["check", "--database-url", t.conninfo], environment: twilio.environment)
        #expect(!r.out.contains("countries"), "4 countries is a handful: \(r.out)")
        for number in numbers.dropFirst(4) { _ = try await t.insert(phone: number, success: true, error: nil) }
        r = try await runCLI(["check", "--database-url", t.conninfo], environment: twilio.environment)
        let line = try #require(r.out.split(separator: "\n").first { $0.contains("countries") }, "\(r.out)")
        #expect(line.contains("the last 7 outbound messages went to 7 countries") && line.contains("resends may go to any country")
                && r.out.contains(#""resend_countries": ["#), "\(r.out)")
        let listed = try policyFile(#"{ "resend_countries": ["US", "CA"] }"#)
        r = try await runCLI(["check", "--database-url", t.conninfo, "--policy", listed], environment: twilio.environment)
        #expect(!r.out.contains("went to 7 countries"), "a list: no warning: \(r.out)")
    }

    @Test("the fleet's count reads what sms-retry wrote within the day and the hour: a row last written two days ago counts nothing, one written before updated_at existed counts by its history, a reservation counts")
    func countReadsTheWindows() async throws {
        let t = try await TestDatabase.make()
        // Noon UTC, so the hour and the day (UTC, the default budget zone) are both inside today.
        let noon = Calendar(identifier: .gregorian).date(bySettingHour: 12, minute: 0, second: 0, of: Date(),
                                                         matchingPolicy: .strict, direction: .backward)!
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC")!
        let now = utc.date(bySettingHour: 12, minute: 0, second: 0, of: noon)!
        func at(_ minutesAgo: Double) -> String { JSONText.timestamp(now.addingTimeInterval(-minutesAgo * 60)) }
        func row(_ range: String, history minutesAgo: Double?, updated: Double?, lease: Bool = false) async throws {
            let entry = minutesAgo.map { #"[{"at": "\#(at($0))", "attempt": 1, "outcome": "sent"}]"# } ?? "[]"
            let state = #"{"rev": 1, "spend": {"range": "\#(range)", "cost": 0.01}, "history": \#(entry)"#
                + (updated.map { #", "updated_at": "\#(at($0))""# } ?? "")
                + (lease ? #", "lease": {"run": "other", "reserved": true}"# : "") + "}"
            try await t.query("""
                INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content, success,
                                            retry_count, next_retry_at, sms_retry, created_at)
                VALUES (1, '+14155550100', 'outbound', 5, 'hello', $1, $2, $3::timestamptz, $4::jsonb,
                        ($5::timestamptz - interval '3 days')::timestamp)
                """, [lease ? "f" : "t", lease ? "0" : "1", lease ? at(-5) : nil, state, at(0)])
        }
        try await row("+1 415000", history: 2 * 1440, updated: 2 * 1440)   // two days ago: nothing now
        try await row("+1 415001", history: 90, updated: 90)               // today, not the last hour
        try await row("+1 415002", history: 10, updated: nil)              // before updated_at: read whole
        try await row("+1 415003", history: 10, updated: 10)               // today and the last hour
        try await row("+1 415004", history: nil, updated: nil, lease: true) // claimed by a run, not yet sent
        let soFar = try await t.store(clock: .at(now)).spendSoFar()
        #expect(soFar.resends == 4, "\(soFar)")
        #expect(soFar.rangeLastHour.filter { $0.value > 0 } == ["+1 415002": 1, "+1 415003": 1, "+1 415004": 1], "\(soFar)")
    }

    @Test("README's Spend example is a policy file sms-retry takes")
    func readmeExample() throws {
        let readme = try String(contentsOfFile: Paths.root + "/README.md", encoding: .utf8)
        let spend = try #require(readme.range(of: "**Spend.**"))
        let start = try #require(readme.range(of: "```json\n", range: spend.upperBound..<readme.endIndex))
        let end = try #require(readme.range(of: "```", range: start.upperBound..<readme.endIndex))
        let policy = try RetryPolicy.parse(Data(readme[start.upperBound..<end.lowerBound].utf8), source: "README")
        #expect(policy.spend.countries == ["US", "CA"] && policy.spend.maxResendsPerDay == 5000 && policy.spend.maxPerRangePerHour == 20)
    }

    func domesticSent(_ perRange: [String: Int]) -> Int { perRange.filter { $0.key.hasPrefix("+1 ") }.values.reduce(0, +) }

    func policyWith(_ path: String) throws -> RetryPolicy {
        var p = try RetryPolicy.load(file: path)
        p.jitter = 0
        return p
    }
}
