import Foundation
import Testing
@testable import SMSRetry

/// The views against numbers worked out by hand on a known data set, built through the real
/// flows (router reports, runs against the stand-in).
///
///   A, B  sent at once                          F  21610 at schedule: closed, never retried
///   C     30003, resend 1 accepted               G  30003, resend 1 refused again: pending (600 s)
///   D     30001, resend 1 refused, 2 accepted    H  30001, due since 10 minutes
///   E     30003, resends 1 and 2 refused:        I  failed, never reported
///         exhausted                              J  inbound
@Suite struct AnalyticsTests {
    struct DataSet {
        var t: TestDatabase
        var ids: [Character: Int]
    }

    static func build() async throws -> DataSet {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        var ids: [Character: Int] = [:]
        for (i, key) in "ABCDEFGHI".enumerated() {
            let success = key == "A" || key == "B"
            ids[key] = try await t.insert(phone: "+1415555010\(i)", success: success, error: success ? nil : "failed", metadata: nil)
        }
        ids["J"] = try await t.insert(phone: "+14155550199", direction: "inbound", content: "STOP", success: true, error: nil)
        let store = t.store()
        for (key, code) in [("C", 30003), ("D", 30001), ("E", 30003), ("F", 21610), ("G", 30003)] as [(Character, Int)] {
            _ = try await store.recordFailure(logID: ids[key]!, errorCode: code, errorMessage: "from the router")
        }
        await twilio.server.script("+14155550103", [.fail(code: 30001), .accept])          // D
        await twilio.server.script("+14155550104", [.fail(code: 30003), .fail(code: 30003)]) // E
        await twilio.server.script("+14155550106", [.fail(code: 30003)])                   // G
        let clock = try await t.clockAtDue()
        _ = try await runOnce(t, twilio, clock: clock)                     // C sent; D, E, G refused
        try await t.query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), next_retry_at = now() - interval '1 second' WHERE id = ANY($1::bigint[])",
                          [PGArray.literal([ids["D"], ids["E"]])])
        clock.advance(by: .seconds(1))
        _ = try await runOnce(t, twilio, clock: clock)                     // D sent; E exhausted
        _ = try await store.recordFailure(logID: ids["H"]!, errorCode: 30001, errorMessage: "from the router")
        try await t.query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), next_retry_at = now() - interval '10 minutes' WHERE id = $1", [String(ids["H"]!)])
        return DataSet(t: t, ids: ids)
    }

    func one(_ t: TestDatabase, _ view: String) async throws -> PGRow {
        try await t.query("SELECT * FROM \(view)")[0]
    }

    @Test func everyViewMatchesTheHandCount() async throws {
        let data = try await Self.build()
        let t = data.t

        let o = try await one(t, "sms_retry_overview")
        #expect(o.int("outbound_messages") == 9)
        #expect(o.int("failed_messages") == 7)            // C D E F G H I
        #expect(o.int("scheduled") == 5)                  // C D E G H
        #expect(o.int("recovered") == 2)                  // C D
        #expect(o.int("exhausted") == 1)                  // E
        #expect(o.int("pending") == 2)                    // G H
        #expect(o.string("retry_success_rate") == "0.6667")          // 2 / (5 - 2)
        #expect(o.string("avg_attempts_per_recovered") == "1.50")    // (1 + 2) / 2
        #expect(o.string("delivery_success_rate") == "0.4444")       // (9 - 5) / 9

        let attempts = try await t.query("SELECT * FROM sms_retry_by_attempt").all
        #expect(attempts.map { [$0.int("attempt"), $0.int("attempts"), $0.int("recovered")] } == [[1, 4, 1], [2, 2, 1]])
        #expect(attempts.allSatisfy { $0.double("avg_twilio_call_ms") != nil })

        let codes = try await t.query("SELECT * FROM sms_retry_by_error_code").all
        let byCode = Dictionary(uniqueKeysWithValues: codes.map { ($0.string("error_code")!, $0) })
        #expect(byCode.keys.sorted() == ["21610", "30001", "30003", "unreported"])
        #expect(byCode["30003"]?.int("messages") == 3 && byCode["30003"]?.bool("retryable") == true
                && byCode["30003"]?.string("recovered_share") == "0.3333")
        #expect(byCode["30001"]?.int("messages") == 2 && byCode["30001"]?.string("recovered_share") == "0.5000")
        #expect(byCode["21610"]?.int("messages") == 1 && byCode["21610"]?.bool("retryable") == false)
        #expect(byCode["unreported"]?.int("messages") == 1 && byCode["unreported"]?.bool("retryable") == false)
        #expect(codes.allSatisfy { $0.string("last_seen") != nil })

        let q = try await one(t, "sms_retry_queue")
        #expect(q.int("due_now") == 1 && q.int("overdue_5m") == 1)          // H
        #expect(q.int("due_next_hour") == 1)                                // G, in 600 s
        #expect(q.int("in_flight") == 0 && q.int("pending") == 2)
        #expect((595...610).contains(q.int("oldest_due_seconds") ?? 0))

        let today = try await t.query("SELECT * FROM sms_retry_daily ORDER BY day DESC LIMIT 1")[0]
        #expect(today.int("failures") == 7 && today.int("retries_sent") == 6)  // C1 + D2 + E2 + G1
        #expect(today.int("recovered") == 2 && today.int("exhausted") == 1)
        #expect(today.int("segments_resent") == 2)                             // C and D, one segment each
        #expect(today.string("estimated_cost") == "0.0158")                    // 2 × 0.0079
        #expect(try await t.query("SELECT count(*) AS n FROM sms_retry_daily")[0].int("n") == 30)

        let h = try await one(t, "sms_retry_health")
        #expect(h.string("status") == "warning")   // 3 finished retries: too few to judge the rate
        // 600 s ago when the rows were written; the suite may take a few seconds (real time until
        // the clock is injected).
        #expect(h.string("reasons")?.contains("oldest due row has waited 00:10:0") == true, "\(h.string("reasons") ?? "")")
    }

    @Test func healthThresholdsAreSettings() async throws {
        let data = try await Self.build()
        let analytics = Analytics(database: data.t.db)
        try await analytics.set("sms_retry.health_min_finished", "1")
        try await analytics.set("sms_retry.health_warn_delay", "1 hour")
        var health = try await analytics.health()
        #expect(health.status == "warning" && health.reasons == ["retry success rate 66.7% is below 80%"])
        try await analytics.set("sms_retry.health_crit_success_rate", "0.7")
        health = try await analytics.health()
        #expect(health.status == "critical" && health.exitCode == 2)
        try await analytics.set("sms_retry.health_crit_success_rate", "0.5")
        try await analytics.set("sms_retry.health_warn_success_rate", "0.5")
        try await analytics.set("sms_retry.health_warn_backlog", "0")
        health = try await analytics.health()
        #expect(health.status == "warning" && health.reasons == ["1 rows due now (backlog above 0)"])
    }

    /// What a psql user types, unquoted: the period setting and its column; the old setting's name
    /// still read; every column of every view explained by a COMMENT.
    @Test func psqlUsersTypeThePeriodAndReadEveryColumnsMeaning() async throws {
        let data = try await Self.build()
        let (code, out) = try psqlCommands(["SET sms_retry.period = '1 hour'",
                                            "SELECT period, outbound_messages FROM sms_retry_overview"], data.t.name)
        #expect(code == 0 && out.trimmingCharacters(in: .whitespacesAndNewlines) == "01:00:00|9", "\(out)")
        // `SET sms_retry.window` is a syntax error (a reserved word), hence the new name; the old
        // one, set as it had to be (quoted, set_config, ALTER ROLE … SET), is still read.
        let (oldCode, oldOut) = try psqlCommands(["SELECT set_config('sms_retry.window', '2 hours', false)",
                                                  "SELECT period FROM sms_retry_overview"],
                                                 data.t.name)
        #expect(oldCode == 0 && oldOut.trimmingCharacters(in: .whitespacesAndNewlines) == "2 hours\n02:00:00", "\(oldOut)")
        let undocumented = try await data.t.query("""
            SELECT c.relname || '.' || a.attname AS col
            FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.relkind = 'v' AND c.relname LIKE 'sms_retry\\_%' AND col_description(c.oid, a.attnum) IS NULL
            ORDER BY 1
            """).all.compactMap { $0.string("col") }
        #expect(undocumented.isEmpty, "columns without a COMMENT: \(undocumented)")
        let views = try await data.t.query("SELECT count(*) AS n FROM pg_views WHERE viewname LIKE 'sms_retry\\_%' AND obj_description(format('%I.%I', schemaname, viewname)::regclass) IS NOT NULL")
        #expect(views.first?.int("n") == Analytics.views.count && Analytics.views.count == 8)
    }

    @Test func segmentsFollowGSM7AndUCS2() async throws {
        let t = try await TestDatabase.make()
        let cases: [(String?, Int)] = [
            ("hello", 1), (String(repeating: "a", count: 160), 1), (String(repeating: "a", count: 161), 2),
            (String(repeating: "a", count: 306), 2), (String(repeating: "a", count: 307), 3),
            (String(repeating: "€", count: 80), 1), (String(repeating: "€", count: 81), 2),   // € takes two septets
            (String(repeating: "ж", count: 70), 1), (String(repeating: "ж", count: 71), 2),   // UCS-2
            (String(repeating: "😀", count: 35), 1), (String(repeating: "😀", count: 36), 2), // two UTF-16 units each
            ("", 0), (nil, 0),
            (String(repeating: "a", count: 150) + "[]{}^~|€\\\u{0C}", 2),   // 160 characters, 170 septets
            (String(repeating: "a", count: 145) + "[]{}^", 1),                // 150 characters, 155 septets
        ]
        for (body, expected) in cases {
            let n = try await t.query("SELECT sms_retry_segments($1) AS n", [body])[0].int("n")
            #expect(n == expected, "\(body?.prefix(3) ?? "nil")… × \(body?.count ?? 0)")
        }
    }

    @Test func theHealthCommandFollowsTheMonitoringConvention() async throws {
        let empty = try await TestDatabase.make()
        var r = try await runCLI(["health"], environment: ["DATABASE_URL": empty.conninfo])
        #expect(r.code == 0 && r.out.hasPrefix("HEALTHY"))

        let data = try await Self.build()
        let env = ["DATABASE_URL": data.t.conninfo]
        r = try await runCLI(["health"], environment: env)
        #expect(r.code == 1 && r.out.hasPrefix("WARNING") && r.out.contains("- oldest due row has waited"))
        r = try await runCLI(["health", "--crit-delay", "1m"], environment: env)
        #expect(r.code == 2 && r.out.hasPrefix("CRITICAL"))
        r = try await runCLI(["health", "--warn-delay", "1h"], environment: env)
        #expect(r.code == 0)
        r = try await runCLI(["health"], environment: ["DATABASE_URL": "postgresql://x@127.0.0.1:1/none"])
        #expect(r.code == 3 && r.out.hasPrefix("UNKNOWN"))
        r = try await runCLI(["health", "--warn-backlog", "lots"], environment: env)
        #expect(r.code == 3, "a usage error is UNKNOWN for a monitoring check")
    }

    @Test func statsPrintsTablesAndJSON() async throws {
        let data = try await Self.build()
        let env = ["DATABASE_URL": data.t.conninfo]
        var r = try await runCLI(["stats"], environment: env)
        #expect(r.code == 0)
        for view in Analytics.views { #expect(r.out.contains("== \(view)")) }
        #expect(r.out.contains("retry_success_rate"))
        r = try await runCLI(["stats", "--json", "--price-per-segment", "0.01"], environment: env)
        #expect(r.code == 0)
        let object = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any]
        let overview = (object?["overview"] as? [[String: Any]])?.first
        #expect((overview?["recovered"] as? NSNumber)?.intValue == 2)
        let daily = (object?["daily"] as? [[String: Any]])?.first
        #expect((daily?["estimated_cost"] as? NSNumber)?.doubleValue == 0.02)
    }

    /// A backfill or an import writes old rows with new ids, and a router may take ids from a
    /// sequence shared with other tables: the views count a period by created_at, whatever the
    /// ids. Each view's figure against a plain count(*) over the same rows.
    @Test func idsOutOfCreatedAtOrderAreCountedRight() async throws {
        let t = try await TestDatabase.make()
        // 300 rows over 3 days, their ids in reverse order of created_at (the newest row has the
        // smallest id), one in 5 failed; then 40 more, created 10 days ago, with the largest ids.
        try await t.query("""
            INSERT INTO sms_usage_logs (id, user_id, phone_number, message_direction, message_length, message_content,
                                        success, error_message, created_at)
            SELECT 1000 - g, g, '+1415557' || lpad(g::text, 4, '0'), CASE WHEN g % 7 = 0 THEN 'inbound' ELSE 'outbound' END,
                   5, 'hello', g % 5 <> 0, CASE WHEN g % 5 = 0 THEN 'HTTP 400: Twilio 30003' END,
                   localtimestamp - make_interval(mins => g * 14)
            FROM generate_series(1, 300) AS g
            """)
        try await t.query("""
            INSERT INTO sms_usage_logs (id, user_id, phone_number, message_direction, message_length, message_content,
                                        success, error_message, created_at)
            SELECT 2000 + g, g, '+1415558' || lpad(g::text, 4, '0'), 'outbound', 5, 'hello', g % 2 = 0,
                   CASE WHEN g % 2 = 1 THEN 'HTTP 400: Twilio 30003' END, localtimestamp - interval '10 days'
            FROM generate_series(1, 40) AS g
            """)
        try await t.query("ANALYZE sms_usage_logs")
        let truth = try await t.query("""
            SELECT count(*) FILTER (WHERE message_direction <> 'inbound') AS outbound,
                   count(*) FILTER (WHERE message_direction <> 'inbound' AND NOT success) AS failed
            FROM sms_usage_logs WHERE created_at >= localtimestamp - interval '24 hours'
            """)[0]
        #expect(truth.int("outbound")! > 80, "the period holds rows of both id orders")
        let o = try await t.query("SELECT * FROM sms_retry_overview")[0]
        #expect(o.int("outbound_messages") == truth.int("outbound"))
        #expect(o.int("failed_messages") == truth.int("failed"))
        let rate = Double(truth.int("outbound")! - truth.int("failed")!) / Double(truth.int("outbound")!)
        #expect(abs((Double(o.string("delivery_success_rate") ?? "") ?? -1) - rate) < 0.0001, "\(o.string("delivery_success_rate") ?? "nil")")
        let codes = try await t.query("SELECT sum(messages)::int AS n FROM sms_retry_by_error_code")[0]
        #expect(codes.int("n") == truth.int("failed"))
        // Every day of the daily view against the count of that day's failed outbound rows.
        let days = try await t.query("""
            SELECT d.day::text AS day, d.failures, (SELECT count(*) FROM sms_usage_logs s
                                                    WHERE s.created_at::date = d.day AND NOT s.success AND s.message_direction <> 'inbound') AS counted
            FROM sms_retry_daily d
            """).all
        #expect(days.count == 30 && days.allSatisfy { $0.int("failures") == $0.int("counted") },
                "\(days.map { "\($0.string("day") ?? "") \($0.int("failures") ?? -1)/\($0.int("counted") ?? -1)" })")
        #expect(days.reduce(0) { $0 + ($1.int("failures") ?? 0) } == 72, "52 outbound of the 300 (60 failed, 8 of them inbound) and 20 of the 40 (10 days ago)")
    }
}
