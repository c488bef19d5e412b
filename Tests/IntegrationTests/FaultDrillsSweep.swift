import Foundation
import Testing
@testable import SMSRetry
import TwilioStandIn

/// The sweep (issue 23): Twilio's final words on the router's first sends whose status callbacks
/// went nowhere (serve-callbacks down for a deploy), found by one `reconcile`.
extension FaultDrills {
    /// What Twilio says of one router send in a drill.
    struct Word: Sendable {
        var status: String
        var code: Int?
    }

    /// `words.count` router sends recorded as accepted `age` ago, to `phone(i)`, with their SIDs
    /// in `twilio_message_sid` (or at `sms_metadata.twilio.sid` when `inMetadata`); Twilio holds
    /// each with its word and posts no callback. Returns the rows' ids, in `words`' order.
    func routerSends(_ t: TestDatabase, _ twilio: StandIn, _ words: [Word], age: TimeInterval, inMetadata: Bool = false,
                     phone: (Int) -> String) async throws -> [Int] {
        var sids: [String] = [], phones: [String] = []
        let created = Date().addingTimeInterval(-age)
        for (i, word) in words.enumerated() {
            let number = phone(i)
            phones.append(number)
            sids.append(await twilio.server.preload(to: number, body: "Your code is \(i)", status: word.status,
                                                    errorCode: word.code, created: created))
        }
        let column = inMetadata ? "NULL" : "sid"
        let metadata = inMetadata ? "jsonb_build_object('campaign', 'sweep', 'twilio', jsonb_build_object('sid', sid))"
                                  : "'{\"campaign\": \"sweep\"}'::jsonb"
        return try await t.query("""
            INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content,
                                        success, sms_metadata, twilio_message_sid, created_at)
            SELECT 1, phone, 'outbound', 20, 'Your code is ' || (n - 1), true, \(metadata), \(column),
                   sms_retry_router_time(now()) - make_interval(secs => $3::float8)
            FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(phone, sid, n)
            ORDER BY n
            RETURNING id
            """, [PGArray.literal(phones), PGArray.literal(sids), String(age)]).all.map { $0.int("id")! }
    }

    /// 1,000 sends: 700 delivered, 100 undelivered 30003, 100 failed 30006, 100 still queued.
    static let mixedWords: [Word] = (0..<1000).map { i in
        switch i % 10 {
        case 7: Word(status: "undelivered", code: 30003)
        case 8: Word(status: "failed", code: 30006)
        case 9: Word(status: "queued")
        default: Word(status: "delivered")
        }
    }

    /// Checks each kind as a user would in psql: delivered confirmed, 30003 scheduled for a
    /// resend, 30006 closed, queued left alone (never resent), nothing created at Twilio.
    func expectHandled(_ t: TestDatabase, _ twilio: StandIn, ids: [Int], words: [Word]) async throws {
        func idList(_ status: String) -> String {
            var chosen: [String] = []
            for (id, word) in zip(ids, words) where word.status == status { chosen.append(String(id)) }
            return "{" + chosen.joined(separator: ",") + "}"
        }
        func n(_ status: String, _ condition: String) async throws -> (Int, Int) {
            let want: Int = words.filter { $0.status == status }.count
            let sql = "SELECT count(*) AS n FROM sms_usage_logs WHERE id = ANY($1::bigint[]) AND " + condition
            let rows: PGRows = try await t.query(sql, [idList(status)])
            return (rows[0].int("n") ?? -1, want)
        }
        let delivered = try await n("delivered", "final_status = 'delivered' AND delivery_confirmed_at IS NOT NULL AND success")
        #expect(delivered.0 == delivered.1, "delivered confirmed: \(delivered)")
        let undelivered = try await n("undelivered", """
            final_status = 'undelivered' AND NOT success AND next_retry_at IS NOT NULL AND retry_count < max_retries
            """)
        #expect(undelivered.0 == undelivered.1, "undelivered 30003 scheduled for a resend: \(undelivered)")
        let failed = try await n("failed", "final_status = 'failed' AND next_retry_at IS NULL AND sms_retry ->> 'reason' IS NOT NULL")
        #expect(failed.0 == failed.1, "failed 30006 closed: \(failed)")
        let queued = try await n("queued", "success AND next_retry_at IS NULL AND final_status IN ('unknown', 'sent')")
        #expect(queued.0 == queued.1, "still queued: left to ask again, not resent: \(queued)")
        #expect(await twilio.server.received.isEmpty, "nothing sent by reconcile")
    }

    func reconcileOnce(_ t: TestDatabase, _ twilio: StandIn, _ extra: [String] = []) async throws
        -> (line: String, seconds: Double, code: Int32) {
        let started = ContinuousClock.now
        let result = try await runCLI(["reconcile", "--database-url", t.conninfo] + extra, environment: twilio.environment)
        return (result.out.trimmingCharacters(in: .whitespacesAndNewlines), (ContinuousClock.now - started).seconds, result.code)
    }

    @Test("sweep: 1,000 router sends whose callbacks went nowhere, one reconcile finds every final word")
    func sweepFindsLostCallbacks() async throws {
        for way in ["auto", "sid"] {
            let t = try await TestDatabase.make()
            let twilio = try await StandIn.start()
            defer { Task { await twilio.stop() } }
            let words = Self.mixedWords
            let ids = try await routerSends(t, twilio, words, age: 30 * 60) { String(format: "+1415%07d", 5_000_000 + $0) }
            let metrics = FileManager.default.temporaryDirectory.appendingPathComponent("sweep-\(UUID().uuidString).prom").path
            defer { try? FileManager.default.removeItem(atPath: metrics) }
            let run = try await reconcileOnce(t, twilio, ["--metrics-file", metrics] + (way == "auto" ? [] : ["--sweep-by", way]))
            #expect(run.code == 0, "\(run)")
            let file = (try? String(contentsOfFile: metrics, encoding: .utf8)) ?? ""
            for line in ["sms_retry_reconcile_rows{outcome=\"swept\"} 1000", "sms_retry_reconcile_rows{outcome=\"undelivered\"} 100",
                         "sms_retry_reconcile_rows{outcome=\"failed\"} 100", "sms_retry_reconcile_rows{outcome=\"confirmed\"} 700",
                         "sms_retry_reconcile_requests \(way == "auto" ? 1 : 1000)", "sms_retry_reconcile_exit_code 0"] {
                #expect(file.contains(line + "\n"), "the metrics file says \(line)")
            }
            try await expectHandled(t, twilio, ids: ids, words: words)
            let requests = await twilio.server.listRequestsTotal + twilio.server.sidRequestsTotal
            #expect(summaryValue(run.line, "swept") == 1000 && summaryValue(run.line, "confirmed") == 700
                    && summaryValue(run.line, "undelivered") == 100 && summaryValue(run.line, "failed") == 100
                    && summaryValue(run.line, "pending") == 100, "\(run.line)")
            #expect(summaryValue(run.line, "requests") == requests)
            #expect(requests == (way == "auto" ? 1 : 1000), "list: one page of 1000; by SID: one per message")
            // The next reconcile asks only about the 100 still queued.
            let again = try await reconcileOnce(t, twilio)
            #expect(summaryValue(again.line, "swept") == 100 && summaryValue(again.line, "pending") == 100, "\(again.line)")
            figure("sweepFindsLostCallbacks", String(format:
                "by=%@: 1,000 router sends, callbacks lost; one reconcile: 700 delivered confirmed, 100 undelivered 30003 scheduled, 100 failed 30006 closed, 100 queued left (0 resent); %d requests, %.2f s; the next reconcile asked about %d", way, requests, run.seconds, summaryValue(again.line, "swept")))
        }
    }

    @Test("sweep: 20 messages to one number behind 2,500 newer ones: the list walked over three pages")
    func sweepWalksSeveralPages() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let words = Array(Self.mixedWords.prefix(20))
        let ids = try await routerSends(t, twilio, words, age: 40 * 60) { _ in "+14155550199" }
        // Newer traffic whose callbacks arrived (confirmed rows), 2,500 messages on the account.
        let newer = (0..<2500).map { _ in Word(status: "delivered") }
        _ = try await routerSends(t, twilio, newer, age: 20 * 60) { String(format: "+1628%07d", $0) }
        try await t.query("UPDATE sms_usage_logs SET final_status = 'delivered' WHERE phone_number LIKE '+1628%'")
        let run = try await reconcileOnce(t, twilio)
        #expect(run.code == 0, "\(run)")
        try await expectHandled(t, twilio, ids: ids, words: words)
        let pages = await twilio.server.listRequestsTotal
        #expect(summaryValue(run.line, "swept") == 20 && pages == 3 && summaryValue(run.line, "requests") == 3, "\(run.line)")
        figure("sweepWalksSeveralPages", String(format:
            "20 sends to one number behind 2,500 newer messages: %d list pages (next_page_uri followed), all 20 handled, %.2f s", pages, run.seconds))
    }

    @Test("sweep: SIDs kept at an sms_metadata key path")
    func sweepReadsMetadataSIDs() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let words = Self.mixedWords
        let ids = try await routerSends(t, twilio, words, age: 30 * 60, inMetadata: true) { String(format: "+1415%07d", 6_000_000 + $0) }
        let without = try await reconcileOnce(t, twilio)
        #expect(summaryValue(without.line, "swept") == 0, "no SID known without the key path: \(without.line)")
        let run = try await reconcileOnce(t, twilio, ["--sid-metadata-key", "twilio.sid"])
        #expect(run.code == 0, "\(run)")
        try await expectHandled(t, twilio, ids: ids, words: words)
        #expect(try await t.count("sms_metadata #>> '{twilio,sid}' = twilio_message_sid AND final_status <> 'unknown'") == 1000,
                "the SID written beside the status, so later callbacks find the row")
        figure("sweepReadsMetadataSIDs", String(format:
            "1,000 router sends with SIDs at sms_metadata.twilio.sid: %@ in %.2f s", run.line, run.seconds))
    }

    @Test("sweep: 401 stops it with exit 2 naming the credentials; 429 slows it down")
    func sweepStopsOnBadCredentialsAndSlowsOnThrottling() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let words = Array(Self.mixedWords.prefix(40))
        let ids = try await routerSends(t, twilio, words, age: 30 * 60) { String(format: "+1415%07d", 7_000_000 + $0) }
        var environment = twilio.environment
        environment["TWILIO_AUTH_TOKEN"] = "wrong"
        let refused = try await runCLI(["reconcile", "--database-url", t.conninfo], environment: environment)
        #expect(refused.code == 2 && refused.err.contains("TWILIO_AUTH_TOKEN"), "\(refused)")
        #expect(try await t.count("final_status = 'unknown'") == 40, "nothing written")
        await twilio.server.setRateLimit(perSecond: 10, burst: 1, lookups: true)
        let run = try await reconcileOnce(t, twilio, ["--sweep-by", "sid"])
        #expect(run.code == 0, "\(run)")
        try await expectHandled(t, twilio, ids: ids, words: words)
        let throttled = await twilio.server.throttledTotal
        #expect(throttled > 0 && summaryValue(run.line, "requests") == 40 + throttled,
                "429s met, each asked again after a pause: \(throttled) 429s, \(run.line)")
        figure("sweepStopsOnBadCredentialsAndSlowsOnThrottling", String(format:
            "401: exit %d, nothing written; 40 GETs at a stand-in limited to 10/s: %d answered 429 and asked again slower, all 40 answered, exit %d, %.2f s (%@)",
            refused.code, throttled, run.code, run.seconds, "\(run.line)"))
    }
}
