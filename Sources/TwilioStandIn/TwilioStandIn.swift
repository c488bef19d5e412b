import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A stand-in for Twilio's Messages API on loopback, speaking its wire format: form-encoded
/// POSTs with HTTP Basic auth, `201` with the Message JSON, errors as `{"code", "message",
/// "more_info", "status"}`; `GET …/Messages/{Sid}.json` and the list `GET …/Messages.json` as
/// Twilio pages and filters it (`MessageList.swift`) for the messages it accepted or was given
/// (`preload`); signed status callbacks (`X-Twilio-Signature`) to a message's
/// `StatusCallback`. Tests, the demo and the benchmarks script it per destination number.
public actor TwilioStandIn {
    /// One scripted answer.
    public enum Reply: Sendable, Equatable {
        /// 201 with a new message SID.
        case accept
        /// A Twilio error with this code and HTTP status (400 unless given).
        case fail(code: Int, status: Int = 400)
        /// An HTTP 5xx without a usable code.
        case serverError(status: Int = 503)
        /// HTTP 429 / 20429, with `Retry-After` when given.
        case throttle(retryAfter: Int? = nil)
        /// Wait this long, then answer as `then` (a hang, when longer than the client's timeout).
        indirect case delay(Duration, then: Reply)
        /// Create the message (visible to GET, callbacks sent), but answer only after this long:
        /// the client times out or dies without learning the SID.
        case acceptThenHang(Duration)
        /// Create the message, then end the connection without answering: closed (FIN) or reset
        /// (RST). On a kept-alive connection, what a client that resends by itself gets wrong.
        case acceptThenDrop(reset: Bool = false)
        /// End the connection without answering and without creating anything.
        case drop(reset: Bool = false)
    }

    /// A status change Twilio reports for a message: `MessageStatus` and `ErrorCode`.
    public struct StatusEvent: Sendable, Equatable {
        public var status: String
        public var errorCode: Int?
        public init(_ status: String, errorCode: Int? = nil) {
            self.status = status
            self.errorCode = errorCode
        }
    }

    /// A message the stand-in created, as `GET` returns it.
    struct Message {
        var sid: String
        var to: String
        var from: String?
        var messagingServiceSID: String?
        var body: String
        var status: String
        var errorCode: Int?
        var created: Date
        /// Twilio's `date_sent`: set when the status leaves queued / accepted / scheduled, null
        /// until then (what the list's `DateSent` filters read).
        var dateSent: Date?
        /// The order the stand-in made messages in (the list's tie-break).
        var sequence: Int

        /// Whether a message in this status has been handed on (has a `date_sent`).
        static func isSent(_ status: String) -> Bool { !["queued", "accepted", "scheduled", "canceled"].contains(status) }

        var place: MessageListQuery.Place { .init(created: created, sequence: sequence) }
    }

    /// A message the stand-in accepted or refused, as it arrived.
    public struct Received: Sendable {
        public var to: String
        public var from: String?
        public var messagingServiceSID: String?
        public var body: String
        public var statusCallback: String?
        public var sid: String?
        /// The HTTP status answered (0: none, the connection was ended or is still waiting).
        public var status: Int
        /// When the request arrived.
        public var at: Date
        /// Every form field as it arrived, in order (repeated names kept: `MediaUrl`).
        public var fields: [(String, String)] = []
        public func field(_ name: String) -> String? { fields.last { $0.0 == name }?.1 }
    }

    public let accountSID: String
    /// Accepted Basic-auth pairs: (Account SID, Auth Token) and/or (API Key SID, secret).
    public let credentials: [String: String]
    /// Added to every answer (Twilio's real latency is ~150 ms).
    public var latency: Duration

    /// Twilio's throughput limit, as `setRateLimit` sets it: a token bucket per account.
    private var rateLimit: (perSecond: Double, burst: Double, retryAfter: Int?)?
    private var rateLimitsLookups = false
    private var tokens = 0.0
    private var refilled = ContinuousClock.now
    /// 429 answers given for the rate limit.
    public private(set) var throttledTotal = 0
    private var scripts: [String: [Reply]] = [:]
    private var defaultReply: Reply = .accept
    private var log: [Received] = []
    private var server: WireServer?
    private var counter = 0
    /// Create requests that reached the handler (answered or still waiting).
    public private(set) var requestsTotal = 0
    private var messages: [String: Message] = [:]
    /// List requests (`GET …/Messages.json`) and message requests (`GET …/Messages/{Sid}.json`)
    /// answered, apart.
    public private(set) var listRequestsTotal = 0
    public private(set) var sidRequestsTotal = 0
    private var deliveries: [String: [[StatusEvent]]] = [:]
    private var callbacks: [Task<Void, Never>] = []
    /// Callbacks posted, with the HTTP status they got (0: no answer).
    public private(set) var callbacksPosted: [(url: String, event: StatusEvent, status: Int)] = []

    public init(accountSID: String, credentials: [String: String], latency: Duration = .zero) {
        self.accountSID = accountSID
        self.credentials = credentials
        self.latency = latency
    }

    /// Starts listening on 127.0.0.1 (`port` 0 picks a free one); returns the base URL to put in
    /// `TWILIO_API_BASE_URL`.
    @discardableResult
    public func start(port: UInt16 = 0) async throws -> String {
        let server = try WireServer(port: port) { [weak self] request in
            guard let self else { return .response(status: 503, headers: [], body: []) }
            let prefix = "/2010-04-01/Accounts/"
            switch (request.method, request.path.hasPrefix(prefix)) {
            case ("POST", true): return await self.answer(request)
            case ("GET", true): return await self.lookup(request)
            case ("GET", false) where request.path.hasPrefix("/v1/Services/"): return await self.lookup(request)
            default: return .response(status: 404, headers: [], body: [])
            }
        }
        self.server = server
        return "http://127.0.0.1:\(server.port)"
    }

    public func stop() async {
        for task in callbacks { await task.value }
        server?.stop()
        server = nil
    }

    /// Answers for messages to `number`, consumed in order; after them, the default.
    public func script(_ number: String, _ replies: [Reply]) { scripts[number, default: []] += replies }
    public func setDefault(_ reply: Reply) { defaultReply = reply }
    /// Picks the reply for every create request without a script: called with the request's
    /// number (1, 2, …) and its `To`. nil goes back to the default.
    public func setChooser(_ choose: (@Sendable (Int, String) -> Reply)?) { chooser = choose }
    private var chooser: (@Sendable (Int, String) -> Reply)?

    /// Accepts at most `perSecond` create requests per second (bursts of `burst`); the rest get
    /// 429 / 20429, with `Retry-After` when given, as an account over its throughput would.
    /// nil lifts the limit. `lookups`: message GETs (by SID and the list) share the bucket, as
    /// Twilio's API concurrency limit counts every request.
    public func setRateLimit(perSecond: Double?, burst: Double = 1, retryAfter: Int? = nil, lookups: Bool = false) {
        rateLimit = perSecond.map { ($0, max(1, burst), retryAfter) }
        rateLimitsLookups = lookups
        tokens = max(1, burst)
        refilled = .now
    }

    /// Takes a token from the rate limit's bucket; false when it is empty.
    private func withinRate() -> Bool {
        guard let limit = rateLimit else { return true }
        let now = ContinuousClock.now
        let (s, atto) = (now - refilled).components
        tokens = min(limit.burst, tokens + (Double(s) + Double(atto) / 1e18) * limit.perSecond)
        refilled = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// What happens to the next accepted message to `number` after it was created: each event
    /// becomes its status in turn (what GET shows) and is posted, signed, to its StatusCallback.
    /// Without a script a message goes `sent` and stays there.
    public func deliver(_ number: String, _ events: [StatusEvent]) { deliveries[number, default: []].append(events) }

    /// Waits until every callback posted so far has had its answer.
    public func callbacksSettled() async {
        for task in callbacks { await task.value }
    }

    /// Every create request received (its answer, its SID when a message was created, when it
    /// arrived), in order of arrival.
    public var received: [Received] { log }
    public var acceptedTotal: Int { log.filter { $0.sid != nil }.count }

    private func answer(_ request: WireRequest) async -> WireAnswer {
        let body = String(decoding: request.body, as: UTF8.self)
        let (reply, received) = decide(request, body: body)
        var wait = latency
        var final = reply
        while case .delay(let d, let then) = final { wait += d; final = then }
        switch final {
        case .acceptThenHang(let hang):
            let response = complete(.accept, received)
            try? await Task.sleep(for: wait + hang)
            return response
        case .acceptThenDrop(let reset):
            _ = complete(.accept, received)
            if wait > .zero { try? await Task.sleep(for: wait) }
            return reset ? .reset : .close
        case .drop(let reset):
            if var r = received { r.status = 0; log.append(r) }
            if wait > .zero { try? await Task.sleep(for: wait) }
            return reset ? .reset : .close
        default:
            if wait > .zero { try? await Task.sleep(for: wait) }
            return complete(final, received)
        }
    }

    /// Checks auth and fields, and picks the scripted reply (synchronously, inside the actor).
    private func decide(_ request: WireRequest, body: String) -> (Reply?, Received?) {
        requestsTotal += 1
        guard authorized(request.headers["authorization"]) else { return (.fail(code: 20003, status: 401), nil) }
        guard request.path == "/2010-04-01/Accounts/\(accountSID)/Messages.json" else { return (.fail(code: 20404, status: 404), nil) }
        guard request.headers["content-type"]?.hasPrefix("application/x-www-form-urlencoded") == true else {
            return (.fail(code: 21604, status: 400), nil)
        }
        let pairs = Form.decode(body)
        var fields: [String: String] = [:]
        for (k, v) in pairs { fields[k] = v }
        let to = fields["To"] ?? ""
        var received = Received(to: to, from: fields["From"], messagingServiceSID: fields["MessagingServiceSid"],
                                body: fields["Body"] ?? "", statusCallback: fields["StatusCallback"], sid: nil, status: 0,
                                at: Date(), fields: pairs)
        let validation: Int? =
            to.isEmpty ? 21604 :
            !to.hasPrefix("+") ? 21211 :
            (fields["From"] == nil && fields["MessagingServiceSid"] == nil) ? 21603 :
            ((fields["Body"] ?? "").isEmpty && fields["ContentSid"] == nil && fields["MediaUrl"] == nil) ? 21602 :
            (fields["Body"] ?? "").count > 1600 ? 21617 : nil
        if let code = validation { return (.fail(code: code), received) }
        guard withinRate() else {
            throttledTotal += 1
            return (.throttle(retryAfter: rateLimit?.retryAfter), received)
        }
        var reply = chooser?(requestsTotal, to) ?? defaultReply
        if var queue = scripts[to], !queue.isEmpty {
            reply = queue.removeFirst()
            scripts[to] = queue
        }
        return (reply, received)
    }

    private func complete(_ reply: Reply?, _ incoming: Received?) -> WireAnswer {
        var received = incoming
        let response: WireAnswer
        switch reply ?? .fail(code: 20003, status: 401) {
        case .accept where received != nil:
            let sid = newSID()
            let status = received!.messagingServiceSID != nil ? "accepted" : "queued"
            received!.sid = sid
            received!.status = 201
            let message = Message(sid: sid, to: received!.to, from: received!.from,
                                  messagingServiceSID: received!.messagingServiceSID, body: received!.body,
                                  status: status, errorCode: nil, created: Date(), sequence: counter)
            response = json(201, messageJSON(message))
            created(message, callback: received!.statusCallback)
        case .accept, .acceptThenHang, .acceptThenDrop, .drop:
            response = json(500, errorJSON(code: 20500, status: 500))
        case .fail(let code, let status):
            received?.status = status
            response = json(status, errorJSON(code: code, status: status, to: received?.to))
        case .serverError(let status):
            received?.status = status
            response = json(status, ["code": NSNull(), "message": "Service Unavailable", "status": status])
        case .throttle(let retryAfter):
            received?.status = 429
            response = json(429, errorJSON(code: 20429, status: 429), headers: retryAfter.map { [("Retry-After", String($0))] } ?? [])
        case .delay(_, let then):
            return complete(then, incoming)
        }
        if let received { log.append(received) }
        return response
    }

    private func newSID() -> String {
        counter += 1
        return "SM" + String(format: "%016llx%016llx", UInt64.random(in: 0...UInt64.max), UInt64(counter))
    }

    /// Adds a message as if another client (the router) had created it `created` (earlier, or
    /// later) with this status and no callback; returns its SID. Its `date_sent` is its creation
    /// time unless the status is queued, accepted, scheduled or canceled; `errorCode` is Twilio's
    /// for an undelivered or failed one. Not a create request:
    /// `received`, `requestsTotal` and `acceptedTotal` do not count it.
    @discardableResult
    public func preload(to: String, from: String = "+15005550006", body: String, status: String = "delivered",
                        errorCode: Int? = nil, created: Date = Date()) -> String {
        let sid = newSID()
        messages[sid] = Message(sid: sid, to: to, from: from, messagingServiceSID: nil, body: body, status: status,
                                errorCode: errorCode, created: created, dateSent: Message.isSent(status) ? created : nil,
                                sequence: counter)
        return sid
    }

    private func authorized(_ header: String?) -> Bool {
        guard let header, header.hasPrefix("Basic "),
              let data = Data(base64Encoded: String(header.dropFirst(6))),
              let pair = String(data: data, encoding: .utf8),
              let colon = pair.firstIndex(of: ":") else { return false }
        return credentials[String(pair[..<colon])] == String(pair[pair.index(after: colon)...])
    }

    private func messageJSON(_ m: Message) -> [String: Any] {
        let date = Self.rfc2822.string(from: m.created)
        let segments = max(1, (m.body.count + 152) / 153)
        let sent = m.dateSent.map(Self.rfc2822.string(from:))
        return [
            "sid": m.sid, "account_sid": accountSID, "api_version": "2010-04-01", "body": m.body,
            "date_created": date, "date_updated": date, "date_sent": sent ?? NSNull(), "direction": "outbound-api",
            "error_code": m.errorCode ?? NSNull(), "error_message": NSNull(), "from": m.from ?? NSNull(),
            "messaging_service_sid": m.messagingServiceSID ?? NSNull(), "num_media": "0",
            "num_segments": String(segments), "price": NSNull(), "price_unit": "USD", "status": m.status,
            "to": m.to, "uri": "/2010-04-01/Accounts/\(accountSID)/Messages/\(m.sid).json",
        ]
    }

    /// A new message: its status moves through its delivery script (default: `sent`), and each
    /// step is posted to its StatusCallback, in order. A script ending `queued` (or `accepted`)
    /// keeps it there, with no `date_sent`, as Twilio holds a message when it is slow.
    private func created(_ message: Message, callback: String?) {
        messages[message.sid] = message
        var events = [StatusEvent("sent")]
        if var queue = deliveries[message.to], !queue.isEmpty {
            events = queue.removeFirst()
            deliveries[message.to] = queue
        }
        if let last = events.last {
            messages[message.sid]?.status = last.status
            messages[message.sid]?.errorCode = last.errorCode
            if events.contains(where: { Message.isSent($0.status) }) { messages[message.sid]?.dateSent = Date() }
        }
        guard let callback, let token = credentials[accountSID] else { return }
        let params = events.map { event in
            var p = [("MessageSid", message.sid), ("SmsSid", message.sid), ("AccountSid", accountSID),
                     ("From", message.from ?? ""), ("To", message.to), ("ApiVersion", "2010-04-01"),
                     ("MessageStatus", event.status), ("SmsStatus", event.status)]
            if let code = event.errorCode { p.append(("ErrorCode", String(code))) }
            return (event, p)
        }
        callbacks.append(Task.detached { [weak self] in
            for (event, p) in params {
                let status = await Self.post(callback, params: p, token: token)
                await self?.posted(callback, event, status)
            }
        })
    }

    private func posted(_ url: String, _ event: StatusEvent, _ status: Int) { callbacksPosted.append((url, event, status)) }

    /// A form POST signed as Twilio signs it (written here apart from the library's validator),
    /// for `signedFor` (the public URL Twilio was given) when it is not `url` itself. Returns the
    /// HTTP status (0: no answer).
    public static func post(_ url: String, signedFor: String? = nil, params: [(String, String)], token: String) async -> Int {
        guard let target = URL(string: url) else { return 0 }
        var data = Data((signedFor ?? url).utf8)
        for (k, v) in params.sorted(by: { ($0.0, $0.1) < ($1.0, $1.1) }) { data.append(Data((k + v).utf8)) }
        let signature = Data(HMAC<Insecure.SHA1>.authenticationCode(for: data, using: SymmetricKey(data: Data(token.utf8))))
            .base64EncodedString()
        var request = URLRequest(url: target)
        request.httpMethod = "POST"
        request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
        request.setValue(signature, forHTTPHeaderField: "X-Twilio-Signature")
        request.httpBody = Data(params.map { Form.escape($0.0) + "=" + Form.escape($0.1) }.joined(separator: "&").utf8)
        let answer = try? await URLSession.shared.data(for: request)
        return (answer?.1 as? HTTPURLResponse)?.statusCode ?? 0
    }

    /// The senders on this account (what `IncomingPhoneNumbers`, `SMS/ShortCodes` and
    /// `/v1/Services/{Sid}` find): phone numbers, short codes, Messaging Service SIDs.
    public private(set) var ownedSenders: Set<String> = ["+15005550006"]
    public func setOwnedSenders(_ senders: Set<String>) { ownedSenders = senders }

    /// `GET …/Messages/{Sid}.json` and `GET …/Messages.json` (`list`); for `check`, the
    /// account (`GET /2010-04-01/Accounts/{Sid}.json`), its phone numbers and short codes, and a
    /// Messaging Service (`GET /v1/Services/{Sid}`).
    private func lookup(_ request: WireRequest) -> WireAnswer {
        guard authorized(request.headers["authorization"]) else { return json(401, errorJSON(code: 20003, status: 401)) }
        let account = "/2010-04-01/Accounts/\(accountSID)"
        switch request.path {
        case account + ".json":
            return json(200, ["sid": accountSID, "friendly_name": "stand-in account", "status": "active", "type": "Full",
                              "owner_account_sid": accountSID, "uri": request.path])
        case account + "/IncomingPhoneNumbers.json":
            let wanted = request.query["PhoneNumber"]
            let numbers = ownedSenders.sorted().filter { $0.hasPrefix("+") && (wanted == nil || $0 == wanted) }
            return json(200, ["incoming_phone_numbers": numbers.map { ["phone_number": $0, "capabilities": ["sms": true, "mms": true, "voice": true]] },
                              "page": 0, "page_size": 50, "next_page_uri": NSNull(), "uri": request.path])
        case account + "/SMS/ShortCodes.json":
            let wanted = request.query["ShortCode"]
            let codes = ownedSenders.sorted().filter { $0.allSatisfy(\.isNumber) && (wanted == nil || $0 == wanted) }
            return json(200, ["short_codes": codes.map { ["short_code": $0] }, "page": 0, "page_size": 50,
                              "next_page_uri": NSNull(), "uri": request.path])
        case let path where path.hasPrefix("/v1/Services/"):
            let sid = String(path.dropFirst("/v1/Services/".count))
            return ownedSenders.contains(sid) ? json(200, ["sid": sid, "account_sid": accountSID, "friendly_name": "stand-in service"])
                                              : json(404, errorJSON(code: 20404, status: 404))
        default: break
        }
        let prefix = "/2010-04-01/Accounts/\(accountSID)/Messages"
        if rateLimitsLookups, request.path.hasPrefix(prefix), !withinRate() {
            throttledTotal += 1
            return json(429, errorJSON(code: 20429, status: 429),
                        headers: rateLimit?.retryAfter.map { [("Retry-After", String($0))] } ?? [])
        }
        if request.path == prefix + ".json" { return list(request) }
        if request.path.hasPrefix(prefix + "/"), request.path.hasSuffix(".json") {
            sidRequestsTotal += 1
            let sid = String(request.path.dropFirst(prefix.count + 1).dropLast(5))
            if let m = messages[sid] { return json(200, messageJSON(m)) }
        }
        return json(404, errorJSON(code: 20404, status: 404))
    }

    /// `GET …/Messages.json`: the messages the query's filters keep, newest first, one page of
    /// them, and the URIs of the first, previous and next pages (`MessageListQuery`).
    private func list(_ request: WireRequest) -> WireAnswer {
        listRequestsTotal += 1
        let query: MessageListQuery
        do { query = try MessageListQuery(request.query) } catch {
            var body = errorJSON(code: 20001, status: 400)
            body["message"] = "Invalid \(error.parameter)"
            return json(400, body)
        }
        let matching = messages.values.filter { query.matches(to: $0.to, from: $0.from, dateSent: $0.dateSent) }
            .sorted { $0.place > $1.place }
        guard let range = query.select(matching.map(\.place), place: { messages[$0]?.place }) else {
            var body = errorJSON(code: 20001, status: 400)
            body["message"] = "Invalid PageToken"
            return json(400, body)
        }
        let page = matching[range]
        let more = range.upperBound < matching.count
        let uri = query.uri(path: request.path, page: query.page, token: query.pageToken)
        return json(200, [
            "messages": page.map(messageJSON), "page": query.page, "page_size": query.pageSize,
            "start": range.lowerBound, "end": max(range.lowerBound, range.upperBound - 1), "uri": uri,
            "first_page_uri": query.uri(path: request.path, page: 0, token: nil),
            "next_page_uri": more ? query.uri(path: request.path, page: query.page + 1, token: "PA" + page.last!.sid) : NSNull(),
            "previous_page_uri": query.page > 0 && !page.isEmpty
                ? query.uri(path: request.path, page: query.page - 1, token: "PB" + page.first!.sid) : NSNull(),
        ])
    }

    /// Twilio's error body; like Twilio's, some messages name the number.
    private func errorJSON(code: Int, status: Int, to: String? = nil) -> [String: Any] {
        var message = Self.messages[code] ?? "Error \(code)"
        if let to, [21211, 21610].contains(code) { message += " (To: \(to))" }
        return ["code": code, "message": message,
         "more_info": "https://www.twilio.com/docs/errors/\(code)", "status": status]
    }

    private func json(_ status: Int, _ object: [String: Any], headers: [(String, String)] = []) -> WireAnswer {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return .response(status: status, headers: [("Content-Type", "application/json")] + headers, body: Array(data))
    }

    static let messages: [Int: String] = [
        20001: "Invalid parameter", 20003: "Authenticate", 20404: "The requested resource was not found", 20429: "Too Many Requests",
        21211: "The 'To' number is not a valid phone number.", 21602: "Message body is required.",
        21603: "The 'From' phone number is required.", 21604: "The 'To' phone number is required.",
        21610: "Attempt to send to unsubscribed recipient", 21617: "The concatenated message body exceeds the 1600 character limit.",
    ]

    static let rfc2822: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return f
    }()
}

public enum StandInError: Error { case notListening }

/// Form decoding for the stand-in (kept apart from the library, so the two sides of the wire
/// are written independently).
enum Form {
    static func escape(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~")) ?? s
    }

    static func decode(_ body: String) -> [(String, String)] {
        body.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func unescape(_ s: Substring) -> String {
                String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s)
            }
            return (unescape(parts[0]), parts.count > 1 ? unescape(parts[1]) : "")
        }
    }
}
