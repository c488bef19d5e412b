import Foundation

/// Creates messages through Twilio's REST API (`POST /2010-04-01/Accounts/{AC}/Messages.json`,
/// form-encoded, HTTP Basic) and classifies every answer into a `SendResult`.
public struct TwilioClient: Sendable {
    public let config: TwilioConfig
    let http: HTTPClient

    public init(config: TwilioConfig, http: HTTPClient) {
        self.config = config
        self.http = http
    }

    public var messagesURL: String { "\(config.baseURL)/2010-04-01/Accounts/\(config.accountSID)/Messages.json" }

    /// The form body for one message: its own sender and content, Twilio's retry parameters,
    /// and the configured StatusCallback (with Twilio's connection overrides asking for more
    /// retries of a failed callback, unless the URL has a fragment of its own: `CallbackURL`).
    public func form(_ m: OutboundMessage) -> String {
        var fields: [(String, String)] = [("To", m.to)]
        if let from = m.from { fields.append(("From", from)) }
        if let service = m.messagingServiceSID { fields.append(("MessagingServiceSid", service)) }
        if m.from == nil && m.messagingServiceSID == nil {
            switch config.sender {
            case .from(let number): fields.append(("From", number))
            case .messagingService(let sid): fields.append(("MessagingServiceSid", sid))
            }
        }
        if !m.body.isEmpty || (m.contentSID == nil && m.mediaURLs.isEmpty) { fields.append(("Body", m.body)) }
        for url in m.mediaURLs.prefix(10) { fields.append(("MediaUrl", url)) }
        if let content = m.contentSID {
            fields.append(("ContentSid", content))
            if let variables = m.contentVariables { fields.append(("ContentVariables", variables)) }
        }
        if let smart = m.smartEncoded { fields.append(("SmartEncoded", smart ? "true" : "false")) }
        if let shorten = m.shortenURLs { fields.append(("ShortenUrls", shorten ? "true" : "false")) }
        if let attempt = m.attempt { fields.append(("Attempt", String(attempt))) }
        if let validity = m.validityPeriod { fields.append(("ValidityPeriod", String(validity))) }
        if let callback = config.statusCallbackURL { fields.append(("StatusCallback", CallbackURL.withRetries(callback))) }
        return FormEncoding.encode(fields)
    }

    /// A plain message from the configured sender.
    public func form(to: String, body: String) -> String { form(OutboundMessage(to: to, body: body)) }

    public func send(to: String, body: String) async -> SendResult { await send(OutboundMessage(to: to, body: body)) }

    public func send(_ message: OutboundMessage) async -> SendResult {
        let request = HTTPClient.Request(
            method: "POST", url: messagesURL,
            headers: ["Content-Type: application/x-www-form-urlencoded", "Accept: application/json"],
            body: form(message),
            basicAuth: (config.username, config.password))
        let started = ContinuousClock.now
        switch await http.send(request) {
        case .failure(let error):
            return .transport(error, seconds: (ContinuousClock.now - started).seconds)
        case .success(let response):
            return SendResult(response: response)
        }
    }
}

/// Every way a create-message call can end.
public enum SendResult: Sendable {
    /// HTTP 201: Twilio accepted the message.
    case accepted(sid: String, status: String, httpStatus: Int, seconds: Double)
    /// HTTP 4xx with a Twilio error code: the message (or the account) was refused.
    case rejected(code: Int, message: String, httpStatus: Int, seconds: Double)
    /// HTTP 429 / 20429: not processed; retry after `retryAfter` seconds when Twilio said so.
    case throttled(retryAfter: Double?, httpStatus: Int, seconds: Double)
    /// HTTP 401 / 20003: the credentials were refused. Stops the run.
    case unauthorized(code: Int?, message: String, httpStatus: Int)
    /// HTTP 5xx, or any other answer without a usable code: Twilio may or may not have accepted it.
    case unexpected(httpStatus: Int, code: Int?, message: String, seconds: Double)
    /// No HTTP answer: refused, reset, DNS, timeout.
    case transport(HTTPError, seconds: Double)

    init(response: HTTPClient.Response) {
        let status = response.status
        let error = status >= 300 ? TwilioErrorBody(response.body) : nil
        let seconds = response.seconds
        switch status {
        case 200..<300:
            if let message = TwilioMessageBody(response.body), !message.sid.isEmpty {
                self = .accepted(sid: message.sid, status: message.status ?? "queued", httpStatus: status, seconds: seconds)
            } else {
                self = .unexpected(httpStatus: status, code: nil, message: "HTTP \(status) without a message SID", seconds: seconds)
            }
        case 429:
            self = .throttled(retryAfter: response.headers["retry-after"].flatMap(Double.init), httpStatus: status, seconds: seconds)
        case 401:
            self = .unauthorized(code: error?.code, message: error?.message ?? "HTTP 401", httpStatus: status)
        case 400..<500 where error?.code == RetryPolicy.throttledCode:
            self = .throttled(retryAfter: response.headers["retry-after"].flatMap(Double.init), httpStatus: status, seconds: seconds)
        case 400..<500 where error?.code == RetryPolicy.authenticationCode:
            self = .unauthorized(code: error?.code, message: error?.message ?? "HTTP \(status)", httpStatus: status)
        case 400..<500 where error?.code != nil:
            self = .rejected(code: error!.code!, message: error?.message ?? "", httpStatus: status, seconds: seconds)
        default:
            self = .unexpected(httpStatus: status, code: error?.code, message: error?.message ?? "HTTP \(status)", seconds: seconds)
        }
    }
}

/// Twilio's error JSON: `{"code": 21211, "message": "…", "more_info": "…", "status": 400}`.
struct TwilioErrorBody {
    var code: Int?
    var message: String?

    init?(_ body: [UInt8]) {
        guard let fields = TwilioJSON.fields(body, ["code", "message"]) else { return nil }
        if case .number(let n)? = fields["code"], n == n.rounded(), abs(n) < 1e9 { code = Int(n) }
        if case .string(let text)? = fields["message"] { message = text }
    }
}

/// The fields of Twilio's Message resource that sms-retry reads.
struct TwilioMessageBody {
    var sid: String
    var status: String?

    init?(_ body: [UInt8]) {
        guard let fields = TwilioJSON.fields(body, ["sid", "status"]), case .string(let sid)? = fields["sid"] else { return nil }
        self.sid = sid
        if case .string(let text)? = fields["status"] { status = text }
    }
}

/// `application/x-www-form-urlencoded`: unreserved characters as they are, space as `+`,
/// everything else as UTF-8 `%XX` (so the `+` of an E.164 number travels as `%2B`).
public enum FormEncoding {
    public static func encode(_ fields: [(String, String)]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(fields.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 2 } + 32)
        for (i, field) in fields.enumerated() {
            if i > 0 { out.append(UInt8(ascii: "&")) }
            escape(field.0, into: &out)
            out.append(UInt8(ascii: "="))
            escape(field.1, into: &out)
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func escape(_ s: String) -> String {
        var out: [UInt8] = []
        escape(s, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Bytes, not Strings: appending to a String per character was a run's largest user-space
    /// cost in a profile.
    static func escape(_ s: String, into out: inout [UInt8]) {
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                 UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: " "):
                out.append(UInt8(ascii: "+"))
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
    }

    /// Decodes a form body into pairs, in order (repeated keys kept).
    public static func decode(_ body: String) -> [(String, String)] {
        body.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func unescape(_ s: Substring) -> String {
                (String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding) ?? String(s)
            }
            return (unescape(parts[0]), parts.count > 1 ? unescape(parts[1]) : "")
        }
    }
}

