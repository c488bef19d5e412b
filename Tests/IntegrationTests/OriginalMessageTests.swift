import Foundation
import Testing
@testable import SMSRetry
import TwilioStandIn

/// A resend is the original message: its sender, its content, Twilio's retry parameters.
@Suite struct OriginalMessageTests {
    @Test("each row resent from its own sender, with its media, template and flags; Attempt and ValidityPeriod; custom key paths")
    func resendsAsTheOriginal() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let rows: [(phone: String, content: String?, metadata: String)] = [
            ("+14155594001", "from a number", #"{"from": "+15005550100"}"#),
            ("+14155594002", "from a service", #"{"messaging_service_sid": "MG0123456789abcdef0123456789abcdef"}"#),
            ("+14155594003", "from both", #"{"from": "+15005550101", "messaging_service_sid": "MG11111111111111111111111111111111"}"#),
            ("+14155594004", "from neither", #"{"campaign": "x"}"#),
            ("+14155594005", "a picture", #"{"from": "ACME", "media_urls": ["https://e.example/a.png", "https://e.example/b.png"], "smart_encoded": true, "shorten_urls": false}"#),
            ("+14155594006", nil, #"{"content_sid": "HX0123456789abcdef0123456789abcdef", "content_variables": {"1": "Ada"}}"#),
            ("+14155594007", nil, #"{"campaign": "nothing to send"}"#),
        ]
        var ids: [String: Int] = [:]
        for row in rows {
            ids[row.phone] = try await t.insert(phone: row.phone, content: row.content, metadata: row.metadata)
            _ = try await t.store().recordFailure(logID: ids[row.phone]!, errorCode: 30003, errorMessage: nil)
        }
        // One message 23 h old (1 h left of 24 h), one just sent; the first was resent once already.
        try await t.query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), created_at = localtimestamp - interval '23 hours', retry_count = 1 WHERE id = $1",
                          [String(ids["+14155594001"]!)])
        try await t.makeDue()
        let summary = try await runOnce(t, twilio) { $0.maxAge = 86_400 }
        #expect(summary.sent == 6 && summary.skipped == 1, "\(summary)")
        let received = Dictionary(uniqueKeysWithValues: await twilio.server.received.map { ($0.to, $0) })
        func fields(_ phone: String) -> [String: [String]] {
            Dictionary(grouping: received[phone]?.fields ?? [], by: \.0).mapValues { $0.map(\.1) }
        }
        var f = fields("+14155594001")
        #expect(f["From"] == ["+15005550100"] && f["MessagingServiceSid"] == nil)
        #expect(f["Attempt"] == ["3"], "the router's send, one resend, and this one")
        let validity = Int(f["ValidityPeriod"]?.first ?? "") ?? 0
        #expect((3_590...3_600).contains(validity), "an hour left of 24 h: \(validity)")
        f = fields("+14155594002")
        #expect(f["From"] == nil && f["MessagingServiceSid"] == ["MG0123456789abcdef0123456789abcdef"] && f["Attempt"] == ["2"])
        #expect(f["ValidityPeriod"] == ["36000"], "a young message: Twilio's maximum")
        f = fields("+14155594003")
        #expect(f["From"] == ["+15005550101"] && f["MessagingServiceSid"] == ["MG11111111111111111111111111111111"])
        f = fields("+14155594004")
        #expect(f["From"] == [StandIn.from], "no sender on the row: the configured one")
        f = fields("+14155594005")
        #expect(f["From"] == ["ACME"] && f["MediaUrl"] == ["https://e.example/a.png", "https://e.example/b.png"])
        #expect(f["SmartEncoded"] == ["true"] && f["ShortenUrls"] == ["false"] && f["Body"] == ["a picture"])
        f = fields("+14155594006")
        #expect(f["ContentSid"] == ["HX0123456789abcdef0123456789abcdef"] && f["ContentVariables"] == [#"{"1": "Ada"}"#] && f["Body"] == nil,
                "\(f)")
        #expect(received["+14155594007"] == nil)
        #expect(try await t.row(ids["+14155594007"]!).string("reason") == "empty_body")
        // The sender used is in the attempt's history, masked.
        let history = try await t.query("SELECT sms_retry -> 'history' -> -1 ->> 'from' AS f FROM sms_usage_logs WHERE id = $1",
                                        [String(ids["+14155594001"]!)])[0].string("f")
        #expect(history == "+15*******00", "\(history ?? "nil")")

        // Key paths from the policy file; a message with less than a second left is closed, unsent.
        var policy = noJitter
        policy.messageKeys.from = "twilio.sender"
        policy.messageKeys.mediaURLs = "mms.urls"
        let custom = try await t.insert(phone: "+14155594008", metadata: #"{"twilio": {"sender": "+15005550102"}, "mms": {"urls": "https://e.example/c.png"}}"#)
        let stale = try await t.insert(phone: "+14155594009", metadata: nil)
        for id in [custom, stale] { _ = try await t.store(policy).recordFailure(logID: id, errorCode: 30003, errorMessage: nil) }
        try await t.query("UPDATE sms_usage_logs SET created_at = localtimestamp - interval '86399.5 seconds' WHERE id = $1", [String(stale)])
        try await t.makeDue()
        let second = try await runOnce(t, twilio, policy: policy)
        #expect(second.sent == 1 && second.expired == 1, "\(second)")
        let c = await twilio.server.received.last { $0.to == "+14155594008" }
        #expect(c?.field("From") == "+15005550102" && c?.field("MediaUrl") == "https://e.example/c.png")
        #expect(await twilio.server.received.contains { $0.to == "+14155594009" } == false)
    }

    @Test("a 30034 for one sender: that sender's rows handed back uncounted, the run says which and why (exit 1); another sender's rows all sent")
    func aSenderFaultStopsThatSenderOnly() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let blocked = #"{"from": "+15005550200"}"#, fine = #"{"from": "+15005550300"}"#
        var ids: [Int] = []
        for (i, metadata) in [blocked, fine, blocked, fine, blocked, fine].enumerated() {
            let id = try await t.insert(phone: "+1415559500\(i)", metadata: metadata)
            _ = try await t.store().recordFailure(logID: id, errorCode: 30003, errorMessage: nil)
            try await t.query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), next_retry_at = now() - make_interval(secs => 10 - $2::int) WHERE id = $1",
                              [String(id), String(i)])
            ids.append(id)
        }
        await twilio.server.script("+14155595000", [.fail(code: 30034)])
        let r = try await runCLI(["run", "--database-url", t.conninfo, "--concurrency", "1"], environment: twilio.environment)
        #expect(r.code == 1, "\(r)")
        #expect(summaryValue(r.out, "sent") == 3 && summaryValue(r.out, "sender_blocked") == 3, "\(r.out)")
        #expect(r.err.contains("sender stopped for this run") && r.err.contains("+15*******00: Twilio 30034"), "\(r.err)")
        let sent = Set(await twilio.server.received.filter { $0.sid != nil }.map(\.to))
        #expect(sent == ["+14155595001", "+14155595003", "+14155595005"])
        #expect(await twilio.server.received.filter { $0.field("From") == "+15005550200" }.count == 1, "one request met the fault; the rest waited")
        for id in [ids[0], ids[2], ids[4]] {
            let row = try await t.row(id)
            #expect(row.int("retry_count") == 0 && row.bool("pending") == true && row.string("last_outcome") == "sender_blocked")
        }
    }
}
