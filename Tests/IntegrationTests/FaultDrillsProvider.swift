import Foundation
import Testing
@testable import SMSRetry
import TwilioStandIn

/// Twilio down, Twilio throttling, recipients who opted out.
extension FaultDrills {
    enum Outage: String, CaseIterable, Sendable {
        case serverErrors = "503s"
        case hanging = "hanging"
        case closingConnections = "closing connections"
    }

    @Test("Twilio down (503s, hanging, closing connections): the breaker opens, no attempt is used, the next run recovers",
          arguments: Outage.allCases)
    func outageBreaker(_ outage: Outage) async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let numbers = try await t.seedDue(300, prefix: "+1415603")
        let arguments = ["run", "--database-url", t.conninfo, "--timeout", "2", "--concurrency", "16"]
        switch outage {
        case .serverErrors: await twilio.server.setDefault(.serverError(status: 503))
        case .hanging: await twilio.server.setDefault(.delay(.seconds(20), then: .serverError(status: 503)))
        case .closingConnections: await twilio.server.setDefault(.drop())
        }
        let down = try await runCLI(arguments, environment: twilio.environment)
        let requests = await twilio.server.requestsTotal
        #expect(down.code == 4, "the outage exit code: \(down)")
        #expect(down.err.contains("Twilio looks down"), "\(down.err.suffix(500))")
        #expect(requests >= 11 && requests <= 20 + 16, "stopped after about the breaker's window: \(requests)")
        #expect(try await t.count("retry_count > 0") == 0, "no attempt used")
        #expect(try await t.count("success OR next_retry_at IS NULL OR sms_retry ? 'reason'") == 0,
                "nothing closed: every row still pending")
        let markedOutage = try await t.count("sms_retry -> 'history' -> -1 ->> 'outcome' = 'provider_outage'")
        #expect(markedOutage > 0 && markedOutage <= requests)
        #expect(try await t.halfUpdated() == 0)

        // Twilio is back: the next run (cron, two minutes later) sends everything once.
        await twilio.server.setDefault(.accept)
        let back = try await runCLI(["run", "--database-url", t.conninfo], environment: twilio.environment)
        #expect(back.code == 0, "\(back)")
        let perNumber = await twilio.acceptedPerNumber()
        #expect(Set(perNumber.keys) == Set(numbers) && perNumber.values.allSatisfy { $0 == 1 })
        #expect(try await t.count("success AND retry_count = 1") == 300, "one attempt each: the one that worked")
        figure("outageBreaker(\(outage.rawValue))", "300 due rows; breaker opened after \(requests) requests (\(down.err.components(separatedBy: "Twilio looks down: ").last?.components(separatedBy: "; stopped").first ?? "")), exit \(down.code), \(summaryValue(down.out, "released")) rows handed back, attempts used 0; recovery run: sent \(summaryValue(back.out, "sent")), exit \(back.code), duplicates 0")
    }

    @Test("429 storm: throughput falls to the allowed rate, nothing marked failed; --rate stays under it")
    func throttlingStorm() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let limit = 20.0
        await twilio.server.setRateLimit(perSecond: limit, burst: limit, retryAfter: 1)
        let clock = ContinuousClock()

        try await t.seedDue(120, prefix: "+1415604")
        var started = clock.now
        let storm = try await runCLI(["run", "--database-url", t.conninfo, "--concurrency", "16"], environment: twilio.environment)
        let stormSeconds = (clock.now - started).seconds
        let storm429 = await twilio.server.throttledTotal
        #expect(storm.code == 0, "\(storm)")
        #expect(summaryValue(storm.out, "sent") == 120 && summaryValue(storm.out, "failed") == 0)
        #expect(summaryValue(storm.out, "throttled") == storm429 && storm429 > 0)
        #expect(try await t.count("success AND retry_count = 1") == 120, "a 429 uses no attempt")
        #expect(try await t.count("sms_retry -> 'history' @> '[{\"outcome\": \"rejected\"}]'") == 0)

        try await t.seedDue(100, prefix: "+1415605")
        started = clock.now
        let paced = try await runCLI(["run", "--database-url", t.conninfo, "--rate", "\(Int(limit))/s"], environment: twilio.environment)
        let pacedSeconds = (clock.now - started).seconds
        let paced429 = await twilio.server.throttledTotal - storm429
        #expect(paced.code == 0 && summaryValue(paced.out, "sent") == 100, "\(paced)")
        #expect(pacedSeconds >= 99 / limit, "the bucket spaces 100 sends at 20/s over at least 4.95 s")
        #expect(paced429 <= 2, "--rate at the limit meets (almost) no 429: \(paced429)")
        #expect(try await t.count("success AND retry_count = 1") == 220)
        figure("throttlingStorm", String(format: "stand-in limit %.0f/s (Retry-After: 1): without --rate 120 rows in %.1f s = %.1f/s, %d answers 429, failed 0, attempts 1 per row; with --rate 20/s 100 rows in %.1f s = %.1f/s, %d answers 429",
                                         limit, stormSeconds, 120 / stormSeconds, storm429, pacedSeconds, 100 / pacedSeconds, paced429))
    }

    @Test("Opted-out numbers (STOP family, REVOKE, OPTOUT, 21610) get zero sends; START / UNSTOP opts in again")
    func optedOutNumbers() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let store = t.store()
        func failed(_ phone: String) async throws -> Int {
            let id = try await t.insert(phone: phone)
            _ = try await store.recordFailure(logID: id, errorCode: 30003, errorMessage: nil)
            return id
        }
        func inbound(_ phone: String, _ text: String) async throws {
            _ = try await t.insert(phone: phone, direction: "inbound", content: text, success: true, error: nil, metadata: nil)
        }
        let blocked = ["+14156060001": "STOP", "+14156060002": "  stop ", "+14156060003": "UnSubscribe",
                       "+14156060004": "s t o p a l l", "+14156060005": "Cancel", "+14156060006": "end", "+14156060007": "QUIT\n",
                       "+14156060008": "Revoke", "+14156060009": "Opt Out"]
        var blockedIDs: [Int] = []
        for (phone, word) in blocked {
            blockedIDs.append(try await failed(phone))
            try await inbound(phone, word)
        }
        // Opted out, then in again; a sentence that only contains a keyword is not one.
        let allowed = ["+14156060011", "+14156060012", "+14156060013"]
        _ = try await failed(allowed[0]); try await inbound(allowed[0], "STOP"); try await inbound(allowed[0], "start")
        _ = try await failed(allowed[1]); try await inbound(allowed[1], "please stop sending these")
        // 21610 recorded for an earlier message of this number.
        let unsubscribed = "+14156060021"
        let earlier = try await t.insert(phone: unsubscribed)
        _ = try await store.recordFailure(logID: earlier, errorCode: 21610, errorMessage: "unsubscribed")
        blockedIDs.append(try await failed(unsubscribed))
        // 21610, then the recipient texts UNSTOP.
        let earlier2 = try await t.insert(phone: allowed[2])
        _ = try await store.recordFailure(logID: earlier2, errorCode: 21610, errorMessage: "unsubscribed")
        try await t.query("UPDATE sms_usage_logs SET sms_retry = jsonb_set(sms_retry_step(sms_retry), '{updated_at}', to_jsonb(now() - interval '1 hour')) WHERE id = $1", [String(earlier2)])
        try await inbound(allowed[2], "UNSTOP")
        _ = try await failed(allowed[2])
        // Twilio answers 21610 during the run: the number's second due row is not sent.
        let discovered = "+14156060031"
        await twilio.server.script(discovered, [.fail(code: 21610)])
        _ = try await failed(discovered)
        _ = try await failed(discovered)
        try await t.makeDue()

        let summary = try await runOnce(t, twilio) { $0.concurrency = 1 }
        let perNumber = Dictionary(grouping: await twilio.server.received, by: \.to).mapValues(\.count)
        let sendsToOptedOut = blocked.keys.map { perNumber[$0] ?? 0 }.reduce(0, +) + (perNumber[unsubscribed] ?? 0)
        #expect(sendsToOptedOut == 0, "\(perNumber)")
        #expect(perNumber[discovered] == 1, "only the send that met 21610")
        #expect(allowed.allSatisfy { perNumber[$0] == 1 }, "\(perNumber)")
        #expect(summary.optedOut == blocked.count + 2 && summary.exitCode == 0, "\(summary)")
        for id in blockedIDs {
            let row = try await t.row(id)
            #expect(row.string("reason") == "opted_out" && row.bool("pending") == false && row.int("retry_count") == 0)
            #expect(row.string("metadata")?.contains(#""campaign": "otp""#) == true)
        }
        // The lookup reads the opt-out index (version 4, migration 009), not the table.
        try await t.query("INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content) SELECT 1, '+1415' || g, 'inbound', 5, 'hello' FROM generate_series(1, 20000) g")
        try await t.query("ANALYZE sms_usage_logs")
        let plan = try await t.query("EXPLAIN " + Queries.optOutLatest(phone: "'+14156060001'"))
            .all.compactMap { $0.string("QUERY PLAN") }.joined(separator: "\n")
        #expect(plan.contains("sms_usage_logs_opt_out_v4_idx") && !plan.contains("Seq Scan"), "\(plan)")
        figure("optedOutNumbers", "\(blocked.count + 2) opted-out numbers (9 keyword spellings, a 21610) → 0 sends, closed opted_out; a 21610 met mid-run → its number's second row closed unsent; 3 numbers that opted in again or only used the word → sent once each; lookup plan over 20k rows: \(plan.split(separator: "\n").first { $0.contains("opt_out_v4_idx") }?.trimmingCharacters(in: .whitespaces).prefix(70) ?? "?")")
    }
}
