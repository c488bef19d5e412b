import Foundation
import Testing
@testable import SMSRetry
import TwilioStandIn

/// `sms-retry serve-callbacks` as Twilio meets it: signed form POSTs over real HTTP, from the
/// stand-in (which signs independently of the library) and forged by hand.
@Suite struct CallbackEndpointTests {
    /// Starts the endpoint on a free port for database `t`; returns it and the URL it serves.
    func endpoint(_ t: TestDatabase, path: String = "/twilio/status") async throws -> (Process, String) {
        // The public URL is what Twilio is told; here it is the listening address itself.
        let port = try freePort()
        let url = "http://127.0.0.1:\(port)\(path)"
        let (process, line) = try await spawnCLI(
            ["serve-callbacks", "--listen", "127.0.0.1:\(port)", "--public-url", url, "--database-url", t.conninfo],
            environment: ["TWILIO_AUTH_TOKEN": StandIn.token])
        #expect(line.hasPrefix("listening on http://127.0.0.1:\(port)"), "\(line)")
        return (process, url)
    }


    @Test("Twilio's callbacks drive the retries end to end: undelivered 30003 → resend → delivered")
    func callbacksDriveRetries() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let (server, url) = try await endpoint(t)
        defer { server.terminate() }

        let phone = "+14155550142"
        let id = try await t.insert(phone: phone)
        _ = try await t.store().recordFailure(logID: id, errorCode: 30001, errorMessage: "queue overflow")
        await twilio.server.deliver(phone, [.init("sending"), .init("sent"), .init("undelivered", errorCode: 30003)])
        await twilio.server.deliver(phone, [.init("sent"), .init("delivered")])
        var config = twilio.config()
        config.statusCallbackURL = url
        let client = TwilioClient(config: config, http: twilio.http)

        #expect(try await RetryRunner(store: t.store(clock: t.clockAtDue()), twilio: client, logger: quietLogger).run().sent == 1)
        await twilio.server.callbacksSettled()
        for _ in 0..<100 where try await t.row(id).string("final_status") != "undelivered" {
            try await Task.sleep(for: .milliseconds(100))
        }
        let afterFirst = try await t.row(id)
        #expect(afterFirst.bool("success") == false && afterFirst.bool("pending") == true)
        #expect(afterFirst.string("final_status") == "undelivered" && afterFirst.int("retry_count") == 1)

        #expect(try await RetryRunner(store: t.store(clock: t.clockAtDue()), twilio: client, logger: quietLogger).run().sent == 1)
        await twilio.server.callbacksSettled()
        // A callback may beat the run's record of the SID; the endpoint applies it again shortly.
        for _ in 0..<100 where try await t.row(id).string("final_status") != "delivered" {
            try await Task.sleep(for: .milliseconds(100))
        }
        let done = try await t.query("""
            SELECT success, final_status, retry_count, delivery_confirmed_at IS NOT NULL AS confirmed,
                   next_retry_at IS NULL AS idle FROM sms_usage_logs WHERE id = $1
            """, [String(id)])[0]
        #expect(done.bool("success") == true && done.string("final_status") == "delivered")
        #expect(done.int("retry_count") == 2 && done.bool("confirmed") == true && done.bool("idle") == true)
        let posted = await twilio.server.callbacksPosted
        #expect(posted.count == 5 && posted.allSatisfy { $0.status == 200 }, "\(posted.map { ($0.event.status, $0.status) })")
        // Every resend asked Twilio for 5 retries of a failed callback; the stand-in signed the URL
        // with that fragment, and the endpoint (told the URL without it) accepted each one.
        #expect(await twilio.server.received.allSatisfy { $0.statusCallback == url + "#rc=5&rp=all" })
    }

    @Test("forged, missing and stale signatures get 403 and change nothing; unknown SIDs get 200 and change nothing")
    func forgedCallbacks() async throws {
        let t = try await TestDatabase.make()
        let (server, url) = try await endpoint(t)
        defer { server.terminate() }
        let http = HTTPClient()
        defer { http.shutdown() }
        let sid = "SM" + String(repeating: "c", count: 32)
        let id = try await t.insert(success: true, error: nil)
        _ = try await t.store().recordSent(logID: id, messageSID: sid)
        let before = try await t.row(id).string("state")

        let params = [("MessageSid", sid), ("MessageStatus", "undelivered"), ("ErrorCode", "30003"),
                      ("AccountSid", StandIn.account), ("To", "+14155550100"), ("ApiVersion", "2010-04-01")]
        func post(_ params: [(String, String)], signature: String?, to target: String = url) async throws -> Int {
            var headers = ["Content-Type: application/x-www-form-urlencoded"]
            if let signature { headers.append("X-Twilio-Signature: \(signature)") }
            let request = HTTPClient.Request(method: "POST", url: target, headers: headers, body: FormEncoding.encode(params))
            return try await http.send(request).get().status
        }
        let good = TwilioSignature(authToken: StandIn.token)
        #expect(try await post(params, signature: nil) == 403)
        #expect(try await post(params, signature: "") == 403)
        #expect(try await post(params, signature: TwilioSignature(authToken: "not-the-token").sign(url: url, params: params)) == 403)
        // Signed for other values (a replayed "sent" edited to "undelivered").
        var edited = params
        edited[1].1 = "sent"
        #expect(try await post(params, signature: good.sign(url: url, params: edited)) == 403)
        // Signed for another URL.
        #expect(try await post(params, signature: good.sign(url: url + "/other", params: params)) == 403)
        #expect(try await t.row(id).string("state") == before, "refused callbacks write nothing")

        // Signed, but about a message no row has: answered, nothing written.
        var unknown = params
        unknown[0].1 = "SM" + String(repeating: "d", count: 32)
        #expect(try await post(unknown, signature: good.sign(url: url, params: unknown)) == 200)
        // Signed, but not a status callback.
        let empty = [("AccountSid", StandIn.account)]
        #expect(try await post(empty, signature: good.sign(url: url, params: empty)) == 400)
        #expect(try await t.row(id).string("state") == before)

        // The real thing, with the query string Twilio would sign too.
        let withQuery = url + "?tenant=a%20b"
        let request = HTTPClient.Request(method: "POST", url: withQuery,
                                         headers: ["Content-Type: application/x-www-form-urlencoded",
                                                   "X-Twilio-Signature: \(good.sign(url: withQuery, params: params))"],
                                         body: FormEncoding.encode(params))
        let answer = try await http.send(request).get()
        // Answered in plain words, as delivery-status prints it, not a Swift value's dump.
        let words = String(decoding: answer.body, as: UTF8.self)
        #expect(answer.status == 200 && words.hasPrefix("scheduled log_id=\(id) attempt=1 at=20") && words.hasSuffix("Z\n"), "\(words)")
        #expect(try await t.row(id).string("final_status") == "undelivered")
        // Signed over the URL with Twilio's connection overrides (which never travel over HTTP).
        var again = params
        again[1].1 = "delivered"
        #expect(try await post(again, signature: good.sign(url: url + "#rc=5&rp=all", params: again)) == 200)
        #expect(try await post(again, signature: good.sign(url: url + "#rc=1", params: again)) == 403)
    }

    @Test("delivery-status applies, reports unchanged, and refuses unknown SIDs (1) and statuses (2)")
    func deliveryStatusCommand() async throws {
        let t = try await TestDatabase.make()
        let sid = "SM" + String(repeating: "e", count: 32)
        let id = try await t.insert(success: true, error: nil)
        _ = try await t.store().recordSent(logID: id, messageSID: sid)
        let db = ["--database-url", t.conninfo]
        let delivered = try await runCLI(["delivery-status", "--sid", sid, "--status", "delivered"] + db)
        #expect(delivered.code == 0 && delivered.out == "delivered log_id=\(id) sid=\(sid)\n", "\(delivered)")
        let late = try await runCLI(["delivery-status", "--sid", sid, "--status", "sent"] + db)
        #expect(late.code == 0 && late.out == "unchanged log_id=\(id) current=delivered\n")
        let unknown = try await runCLI(["delivery-status", "--sid", "SM" + String(repeating: "0", count: 32), "--status", "sent"] + db)
        #expect(unknown.code == 1 && unknown.err.contains("no sms_usage_logs row has twilio_message_sid"))
        let bad = try await runCLI(["delivery-status", "--sid", sid, "--status", "teleported"] + db)
        #expect(bad.code == 2 && bad.err.contains("not a Twilio message status"))
        #expect(try await t.row(id).string("final_status") == "delivered")
    }
}
