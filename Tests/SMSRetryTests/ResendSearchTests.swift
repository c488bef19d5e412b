import Foundation
import Testing
@testable import SMSRetry

/// The walk down Twilio's message list for an unknown-fate send, a page at a time, without I/O.
@Suite struct ResendSearchTests {
    let since = Date(timeIntervalSince1970: 1_800_000_000)

    func message(_ sid: String, _ body: String, createdAfter seconds: TimeInterval?) -> TwilioClient.MessageInfo {
        TwilioClient.MessageInfo(sid: sid, status: "queued", errorCode: nil, to: "+14155550100", body: body,
                                 dateCreated: seconds.map { since.addingTimeInterval($0) }, dateSent: nil)
    }

    /// A full page of other bodies, newest first, created `from` down to `from - 49` seconds after `since`.
    func others(from: TimeInterval) -> [TwilioClient.MessageInfo] {
        (0..<50).map { message("SMo\(Int(from) - $0)", "other", createdAfter: from - Double($0)) }
    }

    func search(maxPages: Int = 40) -> ResendSearch {
        ResendSearch(body: "code 1", excluding: ["SMknown"], window: since.addingTimeInterval(-10), maxPages: maxPages)
    }

    @Test("the first match ends the walk; the known SID, other bodies and messages older than the window do not match")
    func firstMatch() {
        var s = search()
        let page = [message("SMknown", "code 1", createdAfter: 30), message("SMx", "other", createdAfter: 20),
                    message("SMold", "code 1", createdAfter: -11), message("SMhit", "code 1", createdAfter: -9)]
        #expect(s.read(Array(page.prefix(3)), nextPageURI: "/next") == .notFound, "an older message shows the window is covered")
        var t = search()
        #expect(t.read([page[0], page[1], page[3]], nextPageURI: nil) == .found(page[3]), "within the 10 s of slack")
        var any = ResendSearch(body: "", excluding: [], window: since, maxPages: 40)
        #expect(any.read([page[1]], nextPageURI: nil) == .found(page[1]), "an empty body matches any body")
    }

    @Test("pages are followed as given while the page's oldest message is inside the window")
    func followsPages() {
        var s = search()
        #expect(s.read(others(from: 200), nextPageURI: "/p1?PageToken=PA1") == .follow("/p1?PageToken=PA1"))
        #expect(s.read(others(from: 150), nextPageURI: "/p2") == .follow("/p2"))
        let hit = message("SMhit", "code 1", createdAfter: 1)
        #expect(s.read([hit] + others(from: 0), nextPageURI: "/p3") == .found(hit))
        #expect(s.pagesRead == 3)
        var last = search()
        #expect(last.read(others(from: 200), nextPageURI: nil) == .notFound, "no next page: the list is read")
    }

    @Test("past the bound the walk concludes nothing: an error, not 'not found'")
    func boundIsInconclusive() {
        var s = search(maxPages: 2)
        #expect(s.read(others(from: 500), nextPageURI: "/p1") == .follow("/p1"))
        guard case .inconclusive(let why) = s.read(others(from: 400), nextPageURI: "/p2") else {
            Issue.record("expected inconclusive"); return
        }
        #expect(why.contains("more than 2 pages"))
    }

    @Test("an unreadable date_created neither ends the walk nor passes as old")
    func unreadableDate() {
        // A page whose last message has no readable date: the window is not known to be covered.
        var s = search()
        let undatedOther = message("SMu", "other", createdAfter: nil)
        #expect(s.read(others(from: 300) + [undatedOther], nextPageURI: "/p1") == .follow("/p1"))
        // A candidate without a date: kept in mind; a dated match later is still found.
        var t = search()
        let undated = message("SMu", "code 1", createdAfter: nil), hit = message("SMhit", "code 1", createdAfter: 5)
        #expect(t.read([undated], nextPageURI: "/p1") == .follow("/p1"))
        #expect(t.read([hit], nextPageURI: nil) == .found(hit))
        // None found: the undated candidate makes it an error, never a resend.
        var u = search()
        #expect(u.read([undated], nextPageURI: "/p1") == .follow("/p1"))
        guard case .inconclusive = u.read(others(from: -20), nextPageURI: "/p2") else {
            Issue.record("expected inconclusive"); return
        }
    }
}
