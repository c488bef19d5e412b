import Foundation

/// Asking Twilio what became of a message: `GET …/Messages/{Sid}.json`, and the message list
/// filtered by `To` and `DateSent>=` when no SID is known (a send whose answer never arrived).
extension TwilioClient {
    /// A message as Twilio reports it.
    public struct MessageInfo: Sendable, Equatable {
        public var sid: String
        public var status: String
        public var errorCode: Int?
        public var to: String?
        public var body: String?
        public var dateCreated: Date?
    }

    /// Why Twilio could not be asked (nothing is concluded from it).
    public struct LookupError: Error, CustomStringConvertible, Sendable {
        public var description: String
        /// HTTP 401/20003: the credentials were refused.
        public var unauthorized = false
        /// The request never reached Twilio (refused, DNS, TLS).
        public var notReached = false
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

    /// Messages to `to` that Twilio created at or after `since` (one page, newest first).
    public func messages(to: String, since: Date) async -> Result<[MessageInfo], LookupError> {
        let day = Self.day.string(from: since)
        let query = FormEncoding.encode([("To", to), ("DateSent>", day), ("PageSize", "50")])
        let url = "\(config.baseURL)/2010-04-01/Accounts/\(config.accountSID)/Messages.json?\(query)"
        switch await get(url) {
        case .failure(let error): return .failure(error)
        case .success(let response):
            guard let page = try? JSONDecoder().decode(MessagePage.self, from: Data(response.body)) else {
                return .failure(LookupError(description: "HTTP \(response.status): not a message list"))
            }
            return .success(page.messages.map(\.info).filter { ($0.dateCreated ?? .distantFuture) >= since })
        }
    }

    /// A message Twilio created for this resend, if any: same number, same body (any body for a
    /// content-template or media-only message, whose body Twilio renders itself), created since
    /// the uncertain attempt started (less `slack` for clock differences), not the row's known SID.
    public func findResend(to: String, body: String, since: Date, excluding known: String?,
                           slack: TimeInterval = 10) async -> Result<MessageInfo?, LookupError> {
        await messages(to: to, since: since.addingTimeInterval(-slack)).map { list in
            list.first { $0.sid != known && (body.isEmpty || $0.body == body) }
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
        case .success(let response) where response.status >= 300 && response.status != 404:
            let error = TwilioErrorBody(response.body)
            return .failure(LookupError(description: "HTTP \(response.status)\(error?.code.map { " (code \($0))" } ?? ""): \(error?.message ?? "")"))
        case .success(let response):
            return .success(response)
        }
    }

    static let day = utcFormatter("yyyy-MM-dd")
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

    var info: TwilioClient.MessageInfo {
        TwilioClient.MessageInfo(sid: sid, status: status, errorCode: error_code, to: to, body: body,
                                 dateCreated: date_created.flatMap { TwilioClient.rfc2822.date(from: $0) })
    }
}

struct MessagePage: Decodable {
    var messages: [MessageJSON]
}
