import Foundation

/// The sweep's decisions, pure: how far down the table to read, which way to ask Twilio, and when
/// a walk down Twilio's message list has read enough. `Reconciler` only moves the data.
public enum Sweep {
    /// How the sweep asks Twilio: `auto` (whichever asks less), or forced (tests, benchmarks).
    public enum Way: String, Sendable, CaseIterable {
        case auto, list, sid
    }

    /// Twilio's largest list page.
    public static let listPageSize = 1000

    /// GETs by SID (one request per candidate) or the account's list (pages of 1000 over the
    /// rows inserted in the window), whichever asks less; a tie goes to the GETs, which read only
    /// what is asked about. `rowsInWindow` counts every row the table got in the window: the
    /// list holds at least those of the account's messages, so its pages are estimated from it
    /// (the walk itself stops at `candidates` pages, never more than one request per message).
    public static func choose(candidates: Int, rowsInWindow: Int, forced: Way = .auto) -> Way {
        guard candidates > 0 else { return .auto }
        switch forced {
        case .list, .sid: return forced
        case .auto:
            let pages = max(1, (rowsInWindow + listPageSize - 1) / listPageSize)
            return pages < candidates ? .list : .sid
        }
    }

    /// The walk down the table's primary key, newest ids first, a chunk at a time. Rows inserted
    /// in the window have the highest ids whatever their `created_at` says (a sequence only
    /// rises), so the walk stops after `quietChunks` chunks in a row with no row created in the
    /// window (a backfill of old rows on top of the window's is skipped, not taken for its end),
    /// or at the table's first id.
    public struct TableWalk: Sendable, Equatable {
        public static let chunk = 5_000
        public static let quietChunks = 3
        /// The next chunk's ids are below this (nil: start at the top).
        public private(set) var cursor: Int?
        public private(set) var quiet = 0
        public private(set) var scanned = 0
        public private(set) var inWindow = 0
        public private(set) var done = false

        public init() {}

        /// A chunk read: its lowest id, how many rows it held, how many of them were created in
        /// the window.
        public mutating func read(lowestID: Int?, rows: Int, rowsInWindow: Int) {
            scanned += rows
            inWindow += rowsInWindow
            quiet = rowsInWindow > 0 ? 0 : quiet + 1
            cursor = lowestID
            if rows < Self.chunk || lowestID == nil || quiet >= Self.quietChunks { done = true }
        }
    }

    /// A walk down the account's message list (newest first) for `wanted` SIDs: stops when every
    /// one was seen, when a page reaches back before `since` (the oldest candidate's creation,
    /// less a margin), at the last page, or after `maxPages` (the number of candidates: never more
    /// requests than messages asked about).
    public struct ListWalk: Sendable {
        public enum Step: Sendable, Equatable { case follow(String), done }
        public private(set) var wanted: Set<String>
        public let since: Date
        public let maxPages: Int
        public private(set) var pages = 0

        public init(wanted: Set<String>, since: Date, maxPages: Int) {
            self.wanted = wanted
            self.since = since
            self.maxPages = max(1, maxPages)
        }

        /// A page read: the messages asked about that it holds, and what to do next.
        public mutating func read(_ messages: [TwilioClient.MessageInfo], nextPageURI: String?) -> (found: [TwilioClient.MessageInfo], next: Step) {
            pages += 1
            var found: [TwilioClient.MessageInfo] = []
            for message in messages where wanted.remove(message.sid) != nil { found.append(message) }
            let oldest = messages.compactMap(\.dateCreated).min()
            if wanted.isEmpty || pages >= maxPages { return (found, .done) }
            if let oldest, oldest < since { return (found, .done) }
            guard let next = nextPageURI, next.hasPrefix("/") else { return (found, .done) }
            return (found, .follow(next))
        }
    }

    /// How fast the sweep asks once Twilio has said 429: the account's API concurrency is shared
    /// with the router's own sends, so the sweep backs off for good, not only for a pause. The
    /// first 429 of a pause sets the rate to half of what was answered since the last change
    /// (never above the rate in force); each further second with no 429 raises it by a quarter.
    /// `now` in seconds on any monotonic clock; nil: no limit.
    public struct Pace: Sendable, Equatable {
        public private(set) var rate: Double?
        private var since: Double
        private var answered = 0

        public init(now: Double) { since = now }

        /// Twilio answered a request (not a 429). Returns a new rate when it changed.
        public mutating func answered(now: Double) -> Double? {
            answered += 1
            guard let current = rate, now - since >= 1 else { return nil }
            rate = current * 1.25
            since = now
            answered = 0
            return rate
        }

        /// The first 429 of a pause: the new rate.
        public mutating func throttled(now: Double) -> Double {
            let seen = Double(max(answered, 1)) / max(now - since, 0.001)
            let next = max(0.5, min(rate ?? seen, seen) / 2)
            rate = next
            since = now
            answered = 0
            return next
        }
    }

    /// What Twilio's word on a swept message comes to, for the summary.
    public enum Word: Sendable, Equatable {
        case confirmed, undelivered, failed, pending, unknown

        public init(_ status: String?) {
            switch status.flatMap({ DeliveryStatus(rawValue: $0.lowercased()) }) {
            case .delivered?, .read?: self = .confirmed
            case .undelivered?: self = .undelivered
            case .failed?, .canceled?: self = .failed
            case let s? where s.isProgress: self = .pending
            default: self = .unknown
            }
        }
    }
}
