import Foundation

/// Asking Twilio what became of a message: `GET …/Messages/{Sid}.json`, and the message list
/// for the number, page by page, when no SID is known (a send whose answer never arrived).
extension TwilioClient {
    /// A message as Twilio reports it.
    public struct MessageInfo: Sendable, Equatable {
        public var sid: String
        public var status: String
        public var errorCode: Int?
        public var to: String?
        public var body: String?
        public var dateCreated: Date?
        /// Null while the message is queued, accepted or scheduled (not yet handed on).
        public var dateSent: Date?
    }

    /// Why Twilio could not be asked (nothing is concluded from it).
    public struct LookupError: Error, CustomStringConvertible, Sendable {
        public var description: String
        /// HTTP 401/20003: the credentials were refused.
        public var unauthorized = false
        /// The request never reached Twilio (refused, DNS, TLS).
        public var notReached = false
        /// Twilio answered, but not enough to conclude (more pages than the walk reads, a date
        /// that could not be read): Twilio is up, and sending now could still duplicate.
        public var inconclusive = false
        /// HTTP 429 / 20429: not processed; ask again after `retryAfter` (when Twilio says) or a backoff.
        public var throttled = false
        public var retryAfter: Double? = nil
    }

    /// `GET …/Messages/{sid}.json`; nil when Twilio has no such message (404).
    public func message(sid: String) async -> Result<MessageInfo?, LookupError> {
        let url = "\(config.baseURL)/2010-04-01/Accounts/\(config.accountSID)/Messages/\(FormEncoding.escape(sid)).json"
        switch await get(url) {
        case .failure(let error): return .failure(error)
        case .success(let response) where response.status == 404: return .success(nil)
        case .success(let response):
            guard let body = try? JSONDecoder().decode(MessageJSON.self, from: Data(response.body)) else {
                return .failure(LookupError(description: "HTTP \(response.status): not a Message resource"))
            }
            return .success(body.info)
        }
    }

    /// At most this many pages of 50 are read for one lookup (2,000 messages to one number since
    /// the attempt); past it the lookup concludes nothing.
    public static let maxLookupPages = 40

    /// A message Twilio created for this resend, if any: same number, same body (any body for a
    /// content-template or media-only message, whose body Twilio renders itself), created since
    /// the uncertain attempt started (less `slack` for clock differences), none of the `excluding`
    /// SIDs (the row's own, those other rows hold).
    ///
    /// Lists by `To` only, 50 a page, newest first, following `next_page_uri` as given until a
    /// page reaches back before `since - slack` (`ResendSearch`): a `DateSent` filter would miss
    /// a message still queued or accepted, and a busy number has more than one page. Past
    /// `maxPages` pages, or with a candidate whose date cannot be read, an `inconclusive` error.
    public func findResend(to: String, body: String, since: Date, excluding known: Set<String>,
                           slack: TimeInterval = 10,
                           maxPages: Int = TwilioClient.maxLookupPages) async -> Result<MessageInfo?, LookupError> {
        var search = ResendSearch(body: body, excluding: known, window: since.addingTimeInterval(-slack), maxPages: maxPages)
        let query = FormEncoding.encode([("To", to), ("PageSize", String(ResendSearch.pageSize))])
        var url = "\(config.baseURL)/2010-04-01/Accounts/\(config.accountSID)/Messages.json?\(query)"
        while true {
            let response: HTTPClient.Response
            switch await get(url) {
            case .failure(let error): return .failure(error)
            case .success(let answer): response = answer
            }
            guard response.status == 200,
                  let page = try? JSONDecoder().decode(MessagePage.self, from: Data(response.body)) else {
                return .failure(LookupError(description: "HTTP \(response.status): not a message list"))
            }
            switch search.read(page.messages.map(\.info), nextPageURI: page.next_page_uri) {
            case .found(let message): return .success(message)
            case .notFound: return .success(nil)
            case .inconclusive(let why): return .failure(LookupError(description: why, inconclusive: true))
            case .follow(let next):
                // A path with its query, as Twilio gives it; anything else is not followed blind.
                guard next.hasPrefix("/") else {
                    return .failure(LookupError(description: "next_page_uri is not a path", inconclusive: true))
                }
                url = config.baseURL + next
            }
        }
    }

    /// The first page of the account's whole message list, `pageSize` a page, newest first (the
    /// sweep: no filter, since `DateSent` hides a message still queued and `To` would ask once
    /// per number).
    public func messageListURL(pageSize: Int) -> String {
        "\(config.baseURL)/2010-04-01/Accounts/\(config.accountSID)/Messages.json?\(FormEncoding.encode([("PageSize", String(pageSize))]))"
    }

    /// One page of the message list at `url` (the first, or `baseURL` + a `next_page_uri`).
    public func messagePage(_ url: String) async -> Result<(messages: [MessageInfo], next: String?), LookupError> {
        switch await get(url) {
        case .failure(let error): return .failure(error)
        case .success(let response):
            guard response.status == 200,
                  let page = try? JSONDecoder().decode(MessagePage.self, from: Data(response.body)) else {
                return .failure(LookupError(description: "HTTP \(response.status): not a message list"))
            }
            return .success((page.messages.map(\.info), page.next_page_uri))
        }
    }

    /// A GET whose 404 is an answer (the caller reads the status), every other failure an error.
    func lookup(_ url: String) async -> Result<HTTPClient.Response, LookupError> { await get(url) }

    private func get(_ url: String) async -> Result<HTTPClient.Response, LookupError> {
        let request = HTTPClient.Request(method: "GET", url: url, headers: ["Accept: application/json"],
                                         basicAuth: (config.username, config.password))
        switch await http.send(request) {
        case .failure(let error):
            return .failure(LookupError(description: error.description, notReached: !error.requestMayHaveArrived))
        case .success(let response) where response.status == 401:
            return .failure(LookupError(description: "HTTP 401: Twilio refused the credentials", unauthorized: true))
        case .success(let response) where response.status == 429:
            return .failure(LookupError(description: "HTTP 429: Twilio is throttling the account", throttled: true,
                                        retryAfter: response.headers["retry-after"].flatMap(Double.init)))
        case .success(let response) where response.status >= 300 && response.status != 404:
            let error = TwilioErrorBody(response.body)
            return .failure(LookupError(description: "HTTP \(response.status)\(error?.code.map { " (code \($0))" } ?? ""): \(error?.message ?? "")"))
        case .success(let response):
            return .success(response)
        }
    }

    static let rfc2822 = utcFormatter("EEE, dd MMM yyyy HH:mm:ss Z")

    static func utcFormatter(_ format: String) -> DateFormatter {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = format
        return f
    }
}

/// The Message resource's fields sms-retry reads (`error_code` is a number or null).
struct MessageJSON: Decodable {
    var sid: String
    var status: String
    var error_code: Int?
    var to: String?
    var body: String?
    var date_created: String?
    var date_sent: String?

    var info: TwilioClient.MessageInfo {
        TwilioClient.MessageInfo(sid: sid, status: status, errorCode: error_code, to: to, body: body,
                                 dateCreated: date_created.flatMap { TwilioClient.rfc2822.date(from: $0) },
                                 dateSent: date_sent.flatMap { TwilioClient.rfc2822.date(from: $0) })
    }
}

/// A page of the message list: its messages (newest first) and the next page's path, null on
/// the last page.
struct MessagePage: Decodable {
    var messages: [MessageJSON]
    var next_page_uri: String?
}
