import Foundation
import Testing
@testable import SMSRetry
import TwilioStandIn

/// Finding a message an unknown-fate send may have created, against the stand-in's message list
/// over loopback HTTP, which filters and pages as Twilio's does (TWILIO.md, "Finding messages").
@Suite struct LookupTests {
    /// `GET` of a list URI (a path with its query) on the stand-in: the HTTP status and the JSON.
    func list(_ twilio: StandIn, _ uri: String) async throws -> (status: Int, json: [String: Any]) {
        let request = HTTPClient.Request(method: "GET", url: twilio.baseURL + uri, headers: ["Accept: application/json"],
                                         basicAuth: (StandIn.account, StandIn.token))
        guard case .success(let response) = await twilio.http.send(request) else { throw TestSetupError(description: "GET \(uri) failed") }
        let json = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] ?? [:]
        return (response.status, json)
    }

    func messagesPath() -> String { "/2010-04-01/Accounts/\(StandIn.account)/Messages.json" }

    func sids(_ json: [String: Any]) -> [String] {
        (json["messages"] as? [[String: Any]] ?? []).compactMap { $0["sid"] as? String }
    }

    func today() -> String { MessageDay.string(Date()) }

    @Test("a message Twilio still holds queued (date_sent null) is found in one list request; a DateSent> list does not show it")
    func queuedMessageIsFound() async throws {
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let phone = "+14155550701"
        let since = Date()
        await twilio.server.deliver(phone, [.init("queued")])
        guard case .accepted(let held, _, _, _) = await twilio.client().send(to: phone, body: "held back") else {
            Issue.record("the create failed"); return
        }
        guard case .accepted(let sent, _, _, _) = await twilio.client().send(to: phone, body: "handed on") else {
            Issue.record("the create failed"); return
        }
        // The stand-in answers as Twilio: DateSent filters read date_sent, null while queued.
        let phoneQ = FormEncoding.escape(phone)
        for filter in ["DateSent%3E=\(today())", "DateSent=\(today())", "DateSent%3E=\(MessageDay.dateTime(since.addingTimeInterval(-60)))"] {
            let (status, json) = try await list(twilio, messagesPath() + "?To=\(phoneQ)&\(filter)")
            #expect(status == 200 && sids(json) == [sent], "\(filter): only the message handed on: \(sids(json))")
        }
        let (_, all) = try await list(twilio, messagesPath() + "?To=\(phoneQ)")
        #expect(sids(all) == [sent, held], "unfiltered, newest first")
        let heldJSON = (all["messages"] as? [[String: Any]])?.last
        #expect(heldJSON?["date_sent"] is NSNull && heldJSON?["status"] as? String == "queued")

        let before = await twilio.server.listRequestsTotal
        let found = await twilio.client().findResend(to: phone, body: "held back", since: since, excluding: [])
        guard case .success(let message?) = found else { Issue.record("not found: \(found)"); return }
        #expect(message.sid == held && message.status == "queued" && message.dateSent == nil && message.dateCreated != nil)
        #expect(await twilio.server.listRequestsTotal - before == 1, "one list request")
        #expect(await twilio.server.sidRequestsTotal == 0)
    }

    @Test("a message with 120 newer ones to the same number is found on the third page, in 3 list requests")
    func busyNumber() async throws {
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let phone = "+14155550702", now = Date()
        let since = now.addingTimeInterval(-600)
        for i in 0..<30 { await twilio.server.preload(to: phone, body: "older \(i)", created: since.addingTimeInterval(-3600 - Double(i))) }
        let target = await twilio.server.preload(to: phone, body: "Your code is 123456", status: "accepted",
                                                 created: since.addingTimeInterval(2))
        for i in 0..<120 {
            await twilio.server.preload(to: phone, body: "notice \(i)", created: since.addingTimeInterval(10 + Double(i)))
            await twilio.server.preload(to: "+14155550799", body: "Your code is 123456", created: since.addingTimeInterval(10 + Double(i)))
        }
        let found = await twilio.client().findResend(to: phone, body: "Your code is 123456", since: since, excluding: [])
        guard case .success(let message?) = found else { Issue.record("not found: \(found)"); return }
        #expect(message.sid == target && message.status == "accepted")
        #expect(await twilio.server.listRequestsTotal == 3, "pages of 50: the 121st message is on the third")
    }

    @Test("a quiet number: found in 1 list request; a message never created: nil after 1 request")
    func quietNumber() async throws {
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let phone = "+14155550703", since = Date().addingTimeInterval(-120)
        await twilio.server.preload(to: phone, body: "yesterday", created: since.addingTimeInterval(-86_400))
        let target = await twilio.server.preload(to: phone, body: "hello", status: "queued", created: since.addingTimeInterval(1))
        await twilio.server.preload(to: phone, body: "later", created: since.addingTimeInterval(30))
        let client = twilio.client()
        guard case .success(let message?) = await client.findResend(to: phone, body: "hello", since: since, excluding: []) else {
            Issue.record("not found"); return
        }
        #expect(message.sid == target)
        #expect(await twilio.server.listRequestsTotal == 1)

        let missing = await client.findResend(to: phone, body: "never sent", since: since, excluding: [])
        guard case .success(nil) = missing else { Issue.record("expected nil: \(missing)"); return }
        #expect(await twilio.server.listRequestsTotal == 2, "nil after 1 request")
        // The row's own SID is not the message looked for.
        guard case .success(nil) = await client.findResend(to: phone, body: "hello", since: since, excluding: [target]) else {
            Issue.record("the known SID matched"); return
        }

        // A busy number whose messages are all older than the window: the first page shows it.
        let busy = "+14155550704"
        for i in 0..<120 { await twilio.server.preload(to: busy, body: "hello", created: since.addingTimeInterval(-60 - Double(i))) }
        let before = await twilio.server.listRequestsTotal
        guard case .success(nil) = await client.findResend(to: busy, body: "hello", since: since, excluding: []) else {
            Issue.record("an old message matched"); return
        }
        #expect(await twilio.server.listRequestsTotal - before == 1, "the first page reaches back before the window")
    }

    @Test("paging: PageSize capped at 1000, next_page_uri null on the last page, filters and a PageToken carried")
    func paging() async throws {
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let phone = "+14155550705", other = "+15005550009", start = Date().addingTimeInterval(-3600)
        for i in 0..<1100 { await twilio.server.preload(to: phone, body: "m\(i)", created: start.addingTimeInterval(Double(i))) }
        for i in 0..<10 { await twilio.server.preload(to: phone, from: other, body: "x\(i)", created: start.addingTimeInterval(Double(i))) }
        await twilio.server.preload(to: phone, body: "queued", status: "queued", created: start.addingTimeInterval(2000))
        let after = MessageDay.string(start.addingTimeInterval(-2 * 86_400))
        let filters = "To=\(FormEncoding.escape(phone))&From=%2B15005550006&DateSent%3E=\(after)"

        let (status, first) = try await list(twilio, messagesPath() + "?\(filters)&PageSize=5000")
        #expect(status == 200 && first["page_size"] as? Int == 1000 && sids(first).count == 1000 && first["page"] as? Int == 0)
        let next = try #require(first["next_page_uri"] as? String)
        #expect(next.hasPrefix(messagesPath() + "?\(filters)&PageSize=1000&Page=1&PageToken=PASM"), "\(next)")
        #expect(first["previous_page_uri"] is NSNull)
        #expect(first["first_page_uri"] as? String == messagesPath() + "?\(filters)&PageSize=1000&Page=0")
        // A message created between two pages does not shift the next one.
        await twilio.server.preload(to: phone, body: "newest", created: Date())
        let (_, second) = try await list(twilio, next)
        #expect(sids(second).count == 100 && second["page"] as? Int == 1)
        #expect(second["next_page_uri"] is NSNull, "the last page")
        #expect(Set(sids(first)).isDisjoint(with: sids(second)))
        let bodies = ((first["messages"] as? [[String: Any]] ?? []) + (second["messages"] as? [[String: Any]] ?? []))
            .compactMap { $0["body"] as? String }
        #expect(bodies == (0..<1100).reversed().map { "m\($0)" }, "newest first; the other sender and the queued one filtered out")
        let previous = try #require(second["previous_page_uri"] as? String)
        #expect(try await sids(list(twilio, previous).json) == sids(first), "previous_page_uri leads back")

        // PageSize 50 by default; three pages of 120, the last with no next page.
        let (_, small) = try await list(twilio, messagesPath() + "?To=\(FormEncoding.escape(phone))&DateSent%3C=\(today())")
        #expect(small["page_size"] as? Int == 50 && sids(small).count == 50)
        let (bad, error) = try await list(twilio, messagesPath() + "?DateSent%3E=yesterday")
        #expect(bad == 400 && error["code"] as? Int == 20001)
    }

    @Test("past the walk's bound the lookup is an error, not nil: the row is never sent blind")
    func boundIsAnError() async throws {
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let phone = "+14155550706", since = Date().addingTimeInterval(-3600)
        await twilio.server.preload(to: phone, body: "the one", status: "queued", created: since)
        for i in 0..<2000 { await twilio.server.preload(to: phone, body: "n\(i)", created: since.addingTimeInterval(1 + Double(i))) }
        let client = twilio.client()
        let result = await client.findResend(to: phone, body: "the one", since: since, excluding: [])
        guard case .failure(let error) = result else { Issue.record("expected an error: \(result)"); return }
        #expect(error.inconclusive && !error.notReached && !error.unauthorized && error.description.contains("40 pages"), "\(error)")
        #expect(await twilio.server.listRequestsTotal == TwilioClient.maxLookupPages)
        guard case .success(_?) = await client.findResend(to: phone, body: "the one", since: since, excluding: [], maxPages: 41) else {
            Issue.record("one more page finds it"); return
        }
    }

    @Test("a timed-out send Twilio still holds queued, 120 messages to the number since: found by the next run, not resent")
    func runFindsQueuedMessageOnABusyNumber() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let (client, http) = twilio.client(timeout: .milliseconds(1500))
        defer { http.shutdown() }
        let phone = "+14155550707"
        let id = try await t.insert(phone: phone)
        _ = try await t.store().recordFailure(logID: id, errorCode: 30001, errorMessage: nil)
        try await t.makeDue()
        await twilio.server.script(phone, [.acceptThenHang(.seconds(5))])
        await twilio.server.deliver(phone, [.init("queued")])
        let first = try await RetryRunner(store: t.store(), twilio: client, logger: quietLogger).run()
        #expect(first.rescheduled == 1, "\(first)")
        #expect(try await t.row(id).string("state")?.contains("uncertain") == true)
        // The router sends 120 more messages to the number meanwhile.
        for i in 0..<120 { await twilio.server.preload(to: phone, body: "notice \(i)", created: Date().addingTimeInterval(Double(i) / 100)) }

        try await t.makeDue()
        let before = await twilio.server.listRequestsTotal
        let second = try await RetryRunner(store: t.store(), twilio: client, logger: quietLogger).run()
        #expect(second.reconciled == 1 && second.sent == 0, "\(second)")
        #expect(await twilio.server.received.filter { $0.to == phone }.count == 1, "never sent twice")
        #expect(await twilio.server.listRequestsTotal - before == 3)
        #expect(try await t.row(id).string("twilio_message_sid") == twilio.server.received.first?.sid)
    }

    @Test("a lookup past the bound hands the row back uncounted and unsent, and is not an outage")
    func inconclusiveLookupIsHandedBack() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let (client, http) = twilio.client(timeout: .milliseconds(1500))
        defer { http.shutdown() }
        let phone = "+14155550708"
        let id = try await t.insert(phone: phone)
        _ = try await t.store().recordFailure(logID: id, errorCode: 30001, errorMessage: nil)
        try await t.makeDue()
        await twilio.server.script(phone, [.acceptThenHang(.seconds(5))])
        _ = try await RetryRunner(store: t.store(), twilio: client, logger: quietLogger).run()
        let attempts = try await t.row(id).int("retry_count")
        for i in 0..<2000 { await twilio.server.preload(to: phone, body: "n\(i)", created: Date().addingTimeInterval(Double(i) / 1000)) }

        try await t.makeDue()
        var options = RunOptions()
        options.breakerWindow = 1
        options.breakerThreshold = 1   // one failure not the message's would open it
        // The lookup walks its 40 pages of the stand-in's list: time enough for each on a loaded
        // machine (1.5 s, which made the first send's fate unknown, timed one out under CI load).
        let (patient, patientHTTP) = twilio.client(timeout: .seconds(20))
        defer { patientHTTP.shutdown() }
        let summary = try await RetryRunner(store: t.store(), twilio: patient, options: options, logger: quietLogger).run()
        #expect(summary.released == 1 && summary.sent == 0 && summary.reconciled == 0 && !summary.providerOutage, "\(summary)")
        #expect(await twilio.server.received.filter { $0.to == phone }.count == 1, "not sent blind")
        let row = try await t.row(id)
        #expect(row.int("retry_count") == attempts && row.string("state")?.contains("uncertain") == true)
    }
}

/// Twilio's GMT date forms for the `DateSent` filters.
enum MessageDay {
    static func string(_ date: Date) -> String { format("yyyy-MM-dd", date) }
    static func dateTime(_ date: Date) -> String { format("yyyy-MM-dd'T'HH:mm:ss'Z'", date) }
    private static func format(_ pattern: String, _ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = pattern
        return f.string(from: date)
    }
}

extension LookupTests {
    @Test("a router's timed-out send with the same body as a message another row holds (a template sent twice): not taken for that message; sent")
    func aMessageAnotherRowHoldsIsNotThisRowsAttempt() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let phone = "+14155550777", body = "Your order has shipped"
        // Row A: the router's send, accepted; the router keeps its SID on the row.
        guard case .accepted(let sid, _, _, _) = await twilio.client().send(to: phone, body: body) else {
            Issue.record("the create failed"); return
        }
        let a = try await t.insert(phone: phone, content: body, success: true, error: nil)
        try await t.query("UPDATE sms_usage_logs SET twilio_message_sid = $1 WHERE id = $2", [sid, String(a)])
        // Row B: the same body to the same number a moment later; the request never reached Twilio.
        let b = try await t.insert(phone: phone, content: body, error: "Read timed out")
        #expect(try await t.store().recordFailure(logID: b, errorCode: nil, errorMessage: "Read timed out") != .rowNotFound)
        let summary = try await runOnce(t, twilio, clock: t.clockAtDue())
        #expect(summary.sent == 1 && summary.reconciled == 0, "row A's message is not row B's: \(summary)")
        #expect(await twilio.server.received.filter { $0.to == phone }.count == 2)
        let row = try await t.row(b)
        #expect(row.bool("success") == true && row.string("twilio_message_sid") != sid)
    }
}
