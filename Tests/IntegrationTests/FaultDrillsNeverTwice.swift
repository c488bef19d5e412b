import Foundation
import Testing
@testable import SMSRetry
import TwilioStandIn

/// Never twice, never lost: connections that die after Twilio took a create, doubt that must
/// survive hand-backs and dead runs, a Twilio that cannot be reached, a database that restarts
/// under serve-callbacks.
extension FaultDrills {
    @Test("a connection that dies after the stand-in accepted (closed, reset): one message; counted once; found, not resent",
          arguments: [false, true])
    func connectionDiesAfterAccept(reset: Bool) async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        // A warm-up row first, so the dying request travels on a kept-alive connection: the case
        // in which libcurl would resend it on a fresh connection by itself.
        let warm = try await t.insert(phone: "+14156100001")
        let dropped = try await t.insert(phone: "+14156100002")
        for id in [warm, dropped] { _ = try await t.store().recordFailure(logID: id, errorCode: 30003, errorMessage: nil) }
        try await t.query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), next_retry_at = now() - make_interval(secs => 10 - id) WHERE next_retry_at IS NOT NULL")
        await twilio.server.script("+14156100002", [.acceptThenDrop(reset: reset)])
        let first = try await runOnce(t, twilio) { $0.concurrency = 1 }
        var row = try await t.row(dropped)
        #expect(first.sent == 1 && first.rescheduled == 1, "\(first)")
        #expect(row.int("retry_count") == 1 && row.string("last_outcome") == "transport_error", "counted once, fate unknown")
        #expect(row.string("state")?.contains(#""uncertain""#) == true)
        let errorText = row.string("retry_error") ?? ""
        // Asked before any resend: by the next run (FIN) or by `sms-retry reconcile` (RST).
        try await t.makeDue()
        var how: String
        if reset {
            let result = try await runCLI(["reconcile", "--database-url", t.conninfo], environment: twilio.environment)
            #expect(result.code == 0 && result.out.hasPrefix("found=1 not_found=0"), "\(result)")
            how = "reconcile: " + (result.out.split(separator: " ").prefix(2).joined(separator: " "))
        } else {
            let second = try await runOnce(t, twilio)
            #expect(second.reconciled == 1 && second.sent == 0, "\(second)")
            how = "next run: reconciled=\(second.reconciled) sent=\(second.sent)"
        }
        let creates = await twilio.server.received.filter { $0.to == "+14156100002" }
        row = try await t.row(dropped)
        #expect(creates.count == 1, "one create request in all")
        #expect(row.bool("success") == true && row.int("retry_count") == 1, "retry_count counts the one message once")
        #expect(row.string("twilio_message_sid") == creates.first?.sid)
        #expect(row.int("history_length") == 2 && row.string("last_outcome") == "sent",
                "the attempt's own history entry is completed (the router's failure, then one attempt): \(row.string("state") ?? "")")
        figure("connectionDiesAfterAccept(\(reset ? "reset" : "closed"))", "kept-alive connection \(reset ? "reset" : "closed") after the stand-in created the message: create requests 1 (libcurl alone would send 2); run recorded \"\(errorText.prefix(90))\", retry_count 1, uncertain; \(how); final retry_count 1, success, history [failed, sent]")
    }

    @Test("Twilio's URL a closed port: no attempt used, rows handed back not_sent, exit 4 naming the URL")
    func unreachableTwilio() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        var environment = twilio.environment
        let url = "http://127.0.0.1:\(try freePort())"   // bound, then closed: nothing listens
        environment["TWILIO_API_BASE_URL"] = url
        // A small backlog (the breaker's 11 failures never come) three runs in a row, then a large one.
        try await t.seedDue(3, prefix: "+1415611")
        var codes: [Int32] = []
        var last = (code: Int32(0), out: "", err: "")
        for _ in 0..<3 {
            try await t.makeDue()
            last = try await runCLI(["run", "--database-url", t.conninfo], environment: environment)
            codes.append(last.code)
        }
        #expect(codes == [4, 4, 4], "\(last)")
        #expect(last.err.contains("Twilio unreachable") && last.err.contains(url), "\(last.err.suffix(400))")
        #expect(summaryValue(last.out, "unreachable") == 3, "\(last.out)")
        #expect(try await t.count("retry_count > 0") == 0, "no attempt used")
        #expect(try await t.count("next_retry_at IS NOT NULL AND NOT success AND sms_retry -> 'history' -> -1 ->> 'outcome' = 'not_sent'") == 3)
        try await t.seedDue(60, prefix: "+1415612")
        try await t.makeDue()
        let big = try await runCLI(["run", "--database-url", t.conninfo, "--concurrency", "4"], environment: environment)
        #expect(big.code == 4 && big.err.contains(url), "\(big)")
        #expect(try await t.count("retry_count > 0") == 0)
        #expect(try await t.count("NOT success AND next_retry_at IS NOT NULL") == 63)
        figure("unreachableTwilio", "TWILIO_API_BASE_URL \(url) (closed port): 3-row backlog run 3 times → exit \(codes.map(String.init).joined(separator: ", ")), \(last.out.split(separator: " ").filter { $0.hasPrefix("unreachable=") || $0.hasPrefix("released=") }.joined(separator: " ")) each; 60 more rows → exit \(big.code) after \(summaryValue(big.out, "unreachable")) requests; attempts used 0 of 63 rows; stderr: \(big.err.split(separator: "\n").last { $0.contains("unreachable") }?.prefix(160) ?? "")")
    }

    @Test("a row claimed after a dead run, handed back when the breaker opens: still asked before it is ever sent again")
    func breakerOnADeadRunsRow() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let phone = "+14156130001"
        try await t.seedDue(30, prefix: "+1415614")
        let id = try await deadRunSent(t, twilio, phone: phone)
        // The dead run's row comes last in the batch (inserted last); the breaker opens before its turn.
        try await t.query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), next_retry_at = now() - interval '10 seconds' WHERE next_retry_at IS NOT NULL AND id <> $1", [String(id)])
        try await t.query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), next_retry_at = now() - interval '1 second' WHERE id = $1", [String(id)])
        await twilio.server.setDefault(.serverError(status: 503))
        let down = try await runCLI(["run", "--database-url", t.conninfo, "--concurrency", "1"], environment: twilio.environment)
        #expect(down.code == 4, "\(down)")
        let kept = try await t.query("""
            SELECT sms_retry ? 'lease' AS leased, sms_retry -> 'uncertain' ->> 'since' AS since
            FROM sms_usage_logs WHERE id = $1
            """, [String(id)])[0]
        let metadataAfter = try await t.row(id).string("state") ?? ""
        #expect(kept.bool("leased") == false && kept.string("since") != nil, "the hand-back kept the doubt: \(metadataAfter) \(down.out)")
        await twilio.server.setDefault(.accept)
        try await t.makeDue()
        let back = try await runCLI(["run", "--database-url", t.conninfo], environment: twilio.environment)
        let creates = await twilio.server.received.filter { $0.to == phone }
        let row = try await t.row(id)
        #expect(back.code == 0 && summaryValue(back.out, "reconciled") == 1, "\(back)")
        #expect(creates.count == 1, "the dead run's message only")
        #expect(row.bool("success") == true && row.int("retry_count") == 1 && row.string("twilio_message_sid") == creates.first?.sid)
        figure("breakerOnADeadRunsRow", "a dead run's row (its message created at Twilio) handed back unsent when the breaker opened (exit \(down.code)): retry.uncertain kept (since \(kept.string("since") ?? "?")); next run: reconciled \(summaryValue(back.out, "reconciled")), create requests to that number 1, retry_count 1")
    }

    @Test("two dead runs in a row: the lookup still starts at the first one's send; found, not resent")
    func twoDeadRunsInARow() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let phone = "+14156150001"
        let id = try await deadRunSent(t, twilio, phone: phone)
        // The second run claims it 20 minutes later (its clock) and dies before asking anything.
        let second = try await t.store(clock: .at(Date().addingTimeInterval(1_200))).claim(limit: 10, lease: 300, runID: "dead-run-2")
        #expect(second.map(\.id) == [id])
        try await t.makeDue()
        let summary = try await runOnce(t, twilio)
        let creates = await twilio.server.received.filter { $0.to == phone }
        let row = try await t.row(id)
        #expect(summary.reconciled == 1 && summary.sent == 0, "\(summary)")
        #expect(creates.count == 1)
        #expect(row.bool("success") == true && row.int("retry_count") == 1)
        figure("twoDeadRunsInARow", "first dead run sent, second claimed 20 min later and died: next run reconciled=\(summary.reconciled) sent=\(summary.sent); create requests 1; retry_count 1")
    }

    @Test("PostgreSQL stopped and started under serve-callbacks: 200 or 503, never hung; all 200 within 5 s of the restart; none applied twice")
    func callbacksThroughARestart() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let count = 120
        try await t.query("""
            INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content,
                                        success, twilio_message_sid, final_status)
            SELECT g, '+1415616' || lpad(g::text, 4, '0'), 'outbound', 5, 'hello', true, 'SM' || lpad(g::text, 32, '0'), 'sent'
            FROM generate_series(1, $1::int) AS g
            """, [String(count)])
        let publicURL = "https://callbacks.example.test/twilio/status"
        let (server, line) = try await spawnCLI(["serve-callbacks", "--database-url", t.conninfo, "--listen", "127.0.0.1:0",
                                                 "--public-url", publicURL], environment: twilio.environment)
        defer { server.terminate() }
        let base = String(line.split(separator: " ").first { $0.hasPrefix("http://") } ?? "")
        #expect(!base.isEmpty, "\(line)")
        let clock = ContinuousClock()
        let start = clock.now
        func callback(_ i: Int) async -> (status: Int, seconds: Double) {
            let sid = "SM" + String(repeating: "0", count: 32 - String(i).count) + String(i)
            let began = clock.now
            let status = await TwilioStandIn.post(base + "/twilio/status", signedFor: publicURL, params: [
                ("MessageSid", sid), ("MessageStatus", "delivered"), ("AccountSid", StandIn.account), ("ApiVersion", "2010-04-01"),
            ], token: StandIn.token)
            return (status, (clock.now - began).seconds)
        }
        func health() async -> Int {
            guard case .success(let response) = await twilio.http.send(.init(url: base + "/health")) else { return 0 }
            return response.status
        }
        var answers: [(i: Int, at: Double, status: Int, seconds: Double)] = []
        var stoppedAt = 0.0, startedAt = 0.0, healthDown = 0, healthUp = 0
        for i in 1...count {
            if i == 21 {
                try await Task.detached { try PostgresServer.stop() }.value
                stoppedAt = (clock.now - start).seconds
                healthDown = await health()
            }
            if i == 41 {
                try await Task.detached { try PostgresServer.start() }.value
                startedAt = (clock.now - start).seconds
            }
            let at = (clock.now - start).seconds
            let (status, seconds) = await callback(i)
            answers.append((i, at, status, seconds))
            try await Task.sleep(for: .milliseconds(100))
        }
        healthUp = await health()
        // Twilio retries a callback once: the ones answered 503 come again.
        var retried: [Int] = []
        for a in answers where a.status != 200 { retried.append((await callback(a.i)).status) }
        let slowest = answers.map(\.seconds).max() ?? 0
        let unavailable = answers.filter { $0.status == 503 }.count
        #expect(answers.allSatisfy { [200, 503].contains($0.status) }, "\(answers.filter { ![200, 503].contains($0.status) })")
        #expect(slowest < 11, "never hung: slowest answer \(slowest) s")
        #expect(unavailable > 0, "the server was really down for some")
        let late = answers.filter { $0.at > startedAt + 5 }
        #expect(!late.isEmpty && late.allSatisfy { $0.status == 200 }, "all 200 from 5 s after the restart: \(late.filter { $0.status != 200 })")
        let firstOK = answers.first { $0.at >= startedAt && $0.status == 200 }.map { $0.at - startedAt }
        #expect(retried.allSatisfy { $0 == 200 }, "\(retried)")
        #expect(healthDown == 503 && healthUp == 200, "health \(healthDown) while down, \(healthUp) after")
        let db = try await Database.connect(t.conninfo)
        let applied = try await db.query("""
            SELECT count(*) FILTER (WHERE final_status = 'delivered') AS delivered,
                   count(*) FILTER (WHERE jsonb_array_length(jsonb_path_query_array(sms_retry, '$.history[*] ? (@.outcome == "delivered")')) = 1) AS once
            FROM sms_usage_logs
            """)[0]
        #expect(applied.int("delivered") == count && applied.int("once") == count, "each callback applied exactly once")
        figure("callbacksThroughARestart", String(format: "%d signed callbacks every 100 ms; PostgreSQL stopped at %.1f s, started at %.1f s: %d answered 503, the rest 200, none other, slowest answer %.2f s; first 200 %.2f s after the start, all 200 from then on; /health %d while down, %d after; Twilio's retry of the %d 503s: all 200; %d of %d rows delivered, each exactly once",
                                                      count, stoppedAt, startedAt, unavailable, slowest, firstOK ?? -1, healthDown, healthUp, retried.count,
                                                      applied.int("delivered") ?? -1, count))
    }
}

/// One due row that a run claimed and sent (the stand-in created the message), then died
/// without recording anything; due again, as once its lease ran out. Returns the row's id.
func deadRunSent(_ t: TestDatabase, _ twilio: StandIn, phone: String) async throws -> Int {
    let id = try await t.insert(phone: phone)
    _ = try await t.store().recordFailure(logID: id, errorCode: 30003, errorMessage: nil)
    // The most overdue row, so the dead run's claim of one row takes this one.
    try await t.query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), next_retry_at = now() - interval '1 hour' WHERE id = $1", [String(id)])
    let claimed = try await t.store().claim(limit: 1, lease: 300, runID: "dead-run-1")
    guard claimed.map(\.id) == [id] else { throw TestSetupError(description: "the dead run did not claim the row") }
    guard case .accepted = await twilio.client().send(to: phone, body: claimed[0].content ?? "") else {
        throw TestSetupError(description: "the dead run's send was not accepted")
    }
    try await t.query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), next_retry_at = now() - interval '1 second' WHERE id = $1", [String(id)])
    return id
}
