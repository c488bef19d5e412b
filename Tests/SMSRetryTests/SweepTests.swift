import Foundation
import Testing
@testable import SMSRetry

/// The sweep's decisions: which way asks less, how far down the table, when the list has been
/// read far enough.
@Suite struct SweepTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func message(_ sid: String, _ status: String = "delivered", minutesAgo: Double) -> TwilioClient.MessageInfo {
        TwilioClient.MessageInfo(sid: sid, status: status, errorCode: nil, to: "+14155550100", body: nil,
                                 dateCreated: t0.addingTimeInterval(-minutesAgo * 60), dateSent: nil)
    }

    @Test("whichever asks less: few unconfirmed among many rows by SID, many by the list")
    func theWayThatAsksLess() {
        #expect(Sweep.choose(candidates: 30, rowsInWindow: 100_000) == .sid, "100 pages against 30 GETs")
        #expect(Sweep.choose(candidates: 1_000, rowsInWindow: 1_000) == .list, "one page against 1,000 GETs")
        #expect(Sweep.choose(candidates: 3, rowsInWindow: 2_500) == .sid, "a tie of 3 and 3: the GETs")
        #expect(Sweep.choose(candidates: 4, rowsInWindow: 2_500) == .list)
        #expect(Sweep.choose(candidates: 1, rowsInWindow: 0) == .sid, "one GET, never an empty page's walk")
        #expect(Sweep.choose(candidates: 5, rowsInWindow: 1_000_000, forced: .list) == .list)
        #expect(Sweep.choose(candidates: 5_000, rowsInWindow: 10, forced: .sid) == .sid)
    }

    @Test("the table walk stops after three chunks with nothing in the window, not at a backfill's first")
    func theTableWalk() {
        var walk = Sweep.TableWalk()
        walk.read(lowestID: 95_001, rows: 5_000, rowsInWindow: 5_000)
        #expect(!walk.done && walk.cursor == 95_001)
        // A backfill of old rows inserted inside the window: two quiet chunks, then the window again.
        walk.read(lowestID: 90_001, rows: 5_000, rowsInWindow: 0)
        walk.read(lowestID: 85_001, rows: 5_000, rowsInWindow: 0)
        #expect(!walk.done)
        walk.read(lowestID: 80_001, rows: 5_000, rowsInWindow: 12)
        #expect(!walk.done && walk.quiet == 0)
        for low in [75_001, 70_001, 65_001] { walk.read(lowestID: low, rows: 5_000, rowsInWindow: 0) }
        #expect(walk.done && walk.scanned == 35_000 && walk.inWindow == 5_012)
    }

    @Test("the table walk stops at the table's first row")
    func theTableEnds() {
        var walk = Sweep.TableWalk()
        walk.read(lowestID: 1, rows: 1_200, rowsInWindow: 1_200)
        #expect(walk.done)
        var empty = Sweep.TableWalk()
        empty.read(lowestID: nil, rows: 0, rowsInWindow: 0)
        #expect(empty.done)
    }

    @Test("the list walk follows next_page_uri until every SID is seen")
    func theListWalkStopsWhenAllAreSeen() {
        var walk = Sweep.ListWalk(wanted: ["SMa", "SMb"], since: t0.addingTimeInterval(-3600), maxPages: 2)
        let first = walk.read([message("SMx", minutesAgo: 1), message("SMa", "undelivered", minutesAgo: 20)], nextPageURI: "/2010-04-01/p2")
        #expect(first.found.map(\.sid) == ["SMa"] && first.next == .follow("/2010-04-01/p2"))
        let second = walk.read([message("SMb", minutesAgo: 30)], nextPageURI: "/2010-04-01/p3")
        #expect(second.found.map(\.sid) == ["SMb"] && second.next == .done && walk.wanted.isEmpty)
    }

    @Test("the list walk stops past the oldest candidate, at the last page, and at one page per candidate")
    func theListWalkIsBounded() {
        var old = Sweep.ListWalk(wanted: ["SMa", "SMb"], since: t0.addingTimeInterval(-600), maxPages: 10)
        #expect(old.read([message("SMx", minutesAgo: 5), message("SMy", minutesAgo: 11)], nextPageURI: "/p2").next == .done)
        var last = Sweep.ListWalk(wanted: ["SMa", "SMb"], since: t0.addingTimeInterval(-3600), maxPages: 10)
        #expect(last.read([message("SMx", minutesAgo: 5)], nextPageURI: nil).next == .done)
        var bounded = Sweep.ListWalk(wanted: ["SMa", "SMb"], since: t0.addingTimeInterval(-3600), maxPages: 2)
        #expect(bounded.read([message("SMx", minutesAgo: 1)], nextPageURI: "/p2").next == .follow("/p2"))
        #expect(bounded.read([message("SMy", minutesAgo: 2)], nextPageURI: "/p3").next == .done, "2 candidates, 2 pages at most")
        var odd = Sweep.ListWalk(wanted: ["SMa"], since: t0.addingTimeInterval(-3600), maxPages: 10)
        #expect(odd.read([message("SMx", minutesAgo: 1)], nextPageURI: "https://elsewhere.example/p2").next == .done,
                "a next page that is not a path is not followed")
    }

    @Test("after a 429 the sweep asks at half what was answered, then a quarter more each quiet second")
    func thePace() {
        var pace = Sweep.Pace(now: 0)
        #expect(pace.rate == nil && pace.answered(now: 0.1) == nil, "no limit before Twilio throttles")
        for i in 1..<40 { _ = pace.answered(now: 0.1 + Double(i) * 0.01) }
        // 40 answered in the first half second (80/s): the rate halves to 40/s.
        #expect(pace.throttled(now: 0.5) == 40)
        // Another 429 soon after, 5 answered in 0.5 s (10/s): 5/s.
        for i in 0..<5 { _ = pace.answered(now: 0.6 + Double(i) * 0.05) }
        #expect(pace.throttled(now: 1.0) == 5)
        #expect(pace.answered(now: 1.5) == nil, "not before a second without a 429")
        #expect(pace.answered(now: 2.0) == 6.25)
        var slow = Sweep.Pace(now: 0)
        #expect(slow.throttled(now: 100) == 0.5, "never below one request every two seconds")
    }

    @Test("Twilio's words as the summary counts them")
    func words() {
        #expect(Sweep.Word("delivered") == .confirmed && Sweep.Word("read") == .confirmed)
        #expect(Sweep.Word("undelivered") == .undelivered && Sweep.Word("failed") == .failed && Sweep.Word("canceled") == .failed)
        #expect(Sweep.Word("queued") == .pending && Sweep.Word("sent") == .pending && Sweep.Word("accepted") == .pending)
        #expect(Sweep.Word("bogus") == .unknown)
    }
}
