import Foundation

/// The walk `TwilioClient.findResend` makes down Twilio's message list for one number, newest
/// first, as a value: a page in, the next step out. It does no I/O; the client performs the steps.
///
/// Twilio's list cannot be filtered on `date_created`, and its `DateSent` filters miss a message
/// still queued or accepted (`date_sent` null): exactly the message a timed-out create leaves. So
/// the walk lists by `To` alone and reads pages until one reaches back before the window (created
/// before `since - slack`), or there is no next page, or the bound is reached.
struct ResendSearch {
    /// The body looked for; empty: any body (a content template or media only, rendered by Twilio).
    var body: String
    /// SIDs that are not the message looked for: the row's own, and any another row holds.
    var excluding: Set<String>
    /// Messages created before this are too old to be the attempt (`since - slack`).
    var window: Date
    /// At most this many pages (of 50: 2,000 messages to one number within the window).
    var maxPages: Int

    private(set) var pagesRead = 0
    /// Messages that would match but for a `date_created` that could not be read.
    private(set) var undated = 0

    static let pageSize = 50

    init(body: String, excluding: Set<String>, window: Date, maxPages: Int = TwilioClient.maxLookupPages) {
        self.body = body
        self.excluding = excluding
        self.window = window
        self.maxPages = max(1, maxPages)
    }

    enum Step: Equatable {
        /// The message the attempt created.
        case found(TwilioClient.MessageInfo)
        /// The window is covered and no message in it matches.
        case notFound
        /// Read this page next: `next_page_uri` as Twilio gave it (a path with its query).
        case follow(String)
        /// Twilio answered, but not enough to conclude: sending now could duplicate.
        case inconclusive(String)
    }

    /// One page of the list (newest first) and its `next_page_uri`.
    mutating func read(_ messages: [TwilioClient.MessageInfo], nextPageURI: String?) -> Step {
        pagesRead += 1
        var oldest: Date?
        for message in messages {
            guard let created = message.dateCreated else {
                // Neither old nor new: never what ends the walk, never silently passed over.
                if isCandidate(message) { undated += 1 }
                continue
            }
            oldest = min(oldest ?? created, created)
            if created >= window && isCandidate(message) { return .found(message) }
        }
        let covered = oldest.map { $0 < window } ?? false
        if covered || nextPageURI == nil {
            return undated == 0 ? .notFound
                : .inconclusive("\(undated) message(s) with the same number and body have a date_created that could not be read")
        }
        guard pagesRead < maxPages, let next = nextPageURI else {
            return .inconclusive("more than \(maxPages) pages of messages to this number since the attempt; not concluded")
        }
        return .follow(next)
    }

    private func isCandidate(_ message: TwilioClient.MessageInfo) -> Bool {
        !excluding.contains(message.sid) && (body.isEmpty || message.body == body)
    }
}
