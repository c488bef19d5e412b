import Foundation

/// `GET …/Messages.json` as Twilio answers it, with no I/O: the query's filters and paging, and
/// the page they select from the messages newest first.
///
/// Twilio: newest first (`date_created`); `To`, `From`, `DateSent` (that day), `DateSent>` (sent
/// on or after), `DateSent<` (sent on or before), each `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` (UTC)
/// and each on `date_sent`, which is null while a message is queued, accepted or scheduled: such a
/// message matches no `DateSent` filter. `PageSize` 50 by default, at most 1000. `next_page_uri`
/// carries the filters, `Page=n+1` and `PageToken=PA<SID of the page's last message>`, and is null
/// on the last page.
struct MessageListQuery {
    /// The filters as given, in the order Twilio writes them into its page URIs.
    var filters: [(name: String, value: String)]
    var pageSize: Int
    var page: Int
    var pageToken: String?

    static let filterNames = ["To", "From", "DateSent", "DateSent>", "DateSent<"]
    static let defaultPageSize = 50
    static let maxPageSize = 1000

    /// A parameter Twilio would refuse (400): its name.
    struct Invalid: Error, Equatable { var parameter: String }

    private var to: String?
    private var from: String?
    /// `date_sent` must lie in `lower ..< upper`, in whole seconds (Twilio's dates have no more).
    private var lower: Date?
    private var upper: Date?

    init(_ query: [String: String]) throws(Invalid) {
        filters = Self.filterNames.compactMap { name in query[name].map { (name, $0) } }
        to = query["To"]
        from = query["From"]
        for name in ["DateSent", "DateSent>", "DateSent<"] {
            guard let value = query[name] else { continue }
            guard let (start, end) = Self.parseDate(value) else { throw Invalid(parameter: name) }
            if name != "DateSent<" { lower = max(lower ?? start, start) }
            if name != "DateSent>" { upper = min(upper ?? end, end) }
        }
        if let size = query["PageSize"] {
            guard let n = Int(size), n >= 1 else { throw Invalid(parameter: "PageSize") }
            pageSize = min(n, Self.maxPageSize)
        } else {
            pageSize = Self.defaultPageSize
        }
        if let page = query["Page"] {
            guard let n = Int(page), n >= 0 else { throw Invalid(parameter: "Page") }
            self.page = n
        } else {
            page = 0
        }
        pageToken = query["PageToken"]
    }

    var filtersOnDateSent: Bool { lower != nil || upper != nil }

    func matches(to: String, from: String?, dateSent: Date?) -> Bool {
        if let wanted = self.to, wanted != to { return false }
        if let wanted = self.from, wanted != from { return false }
        guard filtersOnDateSent else { return true }
        guard let sent = dateSent else { return false }
        let second = Date(timeIntervalSince1970: sent.timeIntervalSince1970.rounded(.down))
        return (lower.map { second >= $0 } ?? true) && (upper.map { second < $0 } ?? true)
    }

    /// A `DateSent` value as the span it names: a day, or one second.
    static func parseDate(_ s: String) -> (Date, Date)? {
        switch s.utf8.count {
        case 10: return day.date(from: s).map { ($0, $0.addingTimeInterval(86_400)) }
        case 20: return dateTime.date(from: s).map { ($0, $0.addingTimeInterval(1)) }
        default: return nil
        }
    }

    static let day = utcFormatter("yyyy-MM-dd")
    static let dateTime = utcFormatter("yyyy-MM-dd'T'HH:mm:ss'Z'")

    static func utcFormatter(_ format: String) -> DateFormatter {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = format
        f.isLenient = false
        return f
    }

    /// The page this query selects from the matching messages' places in the order, newest
    /// first: after the message `PA<SID>` names, or before the one `PB<SID>` names (a previous
    /// page), else at `Page × PageSize`. `place(sid)`: where a message stands in the order (nil:
    /// no such message). nil: a token that names no message.
    func select(_ newestFirst: [Place], place: (String) -> Place?) -> Range<Int>? {
        guard let token = pageToken else {
            let start = min(page * pageSize, newestFirst.count)
            return start..<min(start + pageSize, newestFirst.count)
        }
        // A token names a place in the order, not an index: messages created since the previous
        // page do not shift the next one, and that one need not match the filters any more.
        guard token.utf8.count > 2, let mark = place(String(token.dropFirst(2))) else { return nil }
        switch token.prefix(2) {
        case "PA":
            let start = newestFirst.partitionPoint { $0 >= mark }
            return start..<min(start + pageSize, newestFirst.count)
        case "PB":
            let end = newestFirst.partitionPoint { $0 > mark }
            return max(0, end - pageSize)..<end
        default:
            return nil
        }
    }

    /// A message's place in the list's order: created later is newer; at the same time, created
    /// (or preloaded) later by the stand-in is newer.
    struct Place: Comparable {
        var created: Date
        var sequence: Int
        static func < (a: Self, b: Self) -> Bool { (a.created, a.sequence) < (b.created, b.sequence) }
    }

    /// The page URI for `page` with `token`: the path, the filters, `PageSize`, `Page`,
    /// `PageToken`, form-encoded as Twilio encodes them (`DateSent%3E=…`).
    func uri(path: String, page: Int, token: String?) -> String {
        var pairs = filters.map { ($0.name, $0.value) }
        pairs += [("PageSize", String(pageSize)), ("Page", String(page))]
        if let token { pairs.append(("PageToken", token)) }
        return path + "?" + pairs.map { Form.escape($0.0) + "=" + Form.escape($0.1) }.joined(separator: "&")
    }
}

extension Array {
    /// The first index whose element does not satisfy `belongs` (which holds for a prefix).
    func partitionPoint(_ belongs: (Element) -> Bool) -> Int {
        var low = 0, high = count
        while low < high {
            let mid = (low + high) / 2
            if belongs(self[mid]) { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
