import Foundation

/// A resend as Twilio's create call takes it: the original message, as the router sent it.
/// Its sender and content come from the row (`sms_metadata`, keys in `MessageKeys`); what a row
/// does not name falls back to the configured sender.
public struct OutboundMessage: Sendable, Equatable {
    public var to: String
    public var body: String
    /// `From`: an E.164 number, a short code, or an alphanumeric sender ID.
    public var from: String?
    /// `MessagingServiceSid` (`MG…`).
    public var messagingServiceSID: String?
    /// `MediaUrl`, up to 10.
    public var mediaURLs: [String] = []
    /// `ContentSid` + `ContentVariables` (JSON text): a content template; the body may be empty.
    public var contentSID: String?
    public var contentVariables: String?
    public var smartEncoded: Bool?
    public var shortenURLs: Bool?
    /// `Attempt`: the total number of attempts including this one (the router's send was 1).
    public var attempt: Int?
    /// `ValidityPeriod`: seconds Twilio may keep it queued before dropping it (1–36000).
    public var validityPeriod: Int?

    public init(to: String, body: String, from: String? = nil, messagingServiceSID: String? = nil) {
        self.to = to
        self.body = body
        self.from = from
        self.messagingServiceSID = messagingServiceSID
    }

    /// The sender this message goes out from, as a history entry shows it (numbers masked).
    public var senderForHistory: String? {
        let parts = [from.map { $0.hasPrefix("+") ? PhoneNumber.masked($0) : $0 }, messagingServiceSID].compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: " via ")
    }

    /// Whether Twilio has anything to send: a body, a content template or media.
    public var hasContent: Bool {
        !body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || contentSID != nil || !mediaURLs.isEmpty
    }

    /// What a message's age leaves of its time: `ValidityPeriod` seconds (clamped to Twilio's
    /// 1–36000), no limit to tell (no created_at), or nothing: less than a second left.
    public enum Validity: Sendable, Equatable { case seconds(Int), unknownAge, expired }

    public static func validity(ageSeconds: Double?, maxAge: Double) -> Validity {
        guard let age = ageSeconds else { return .unknownAge }
        let left = maxAge - age
        guard left >= 1 else { return .expired }
        return .seconds(min(36_000, Int(left)))
    }
}

/// Where in `sms_metadata` the original message's sender and content are (dotted key paths,
/// e.g. `twilio.from`); the defaults are the plain names. Set in the policy file's
/// `metadata_keys`.
public struct MessageKeys: Sendable, Equatable {
    public var from = "from"
    public var messagingServiceSID = "messaging_service_sid"
    public var mediaURLs = "media_urls"
    public var contentSID = "content_sid"
    public var contentVariables = "content_variables"
    public var smartEncoded = "smart_encoded"
    public var shortenURLs = "shorten_urls"
    /// The kind of message (`otp`, `marketing`, …): its maximum age and sending hours.
    public var kind = "category"

    public init() {}

    /// In the claim statement's order.
    var paths: [String] { [from, messagingServiceSID, mediaURLs, contentSID, contentVariables, smartEncoded, shortenURLs, kind] }

    static let names = ["from", "messaging_service_sid", "media_urls", "content_sid", "content_variables", "smart_encoded", "shorten_urls", "kind"]
    /// Where the kind's value is among the values read at `paths`.
    static let kindIndex = names.firstIndex(of: "kind")!

    mutating func set(_ name: String, _ path: String) -> Bool {
        switch name {
        case "from": from = path
        case "messaging_service_sid": messagingServiceSID = path
        case "media_urls": mediaURLs = path
        case "content_sid": contentSID = path
        case "content_variables": contentVariables = path
        case "smart_encoded": smartEncoded = path
        case "shorten_urls": shortenURLs = path
        case "kind": kind = path
        default: return false
        }
        return true
    }
}

extension MessageKeys {
    /// A value read at a key path (`#>` JSON text) as a plain string: a JSON string unquoted and
    /// trimmed, a number or boolean as written; nil for null, empty or missing.
    static func string(_ raw: String?) -> String? {
        guard let s = JSONText.string(raw) else { return nil }
        let trimmed = s.trimmingCharacters(in: .whitespaces)
        return trimmed.isEmpty ? nil : trimmed
    }
}

extension OutboundMessage {
    /// The row's original message from what the claim read at `MessageKeys` (each value as
    /// `#>` JSON text), the configured sender where the row names none.
    static func original(to: String, body: String?, metadata: [String?], configured: TwilioConfig.Sender) -> OutboundMessage {
        func text(_ i: Int) -> String? { i < metadata.count ? MessageKeys.string(metadata[i]) : nil }
        func flag(_ i: Int) -> Bool? {
            switch text(i)?.lowercased() { case "true": true; case "false": false; default: nil }
        }
        var m = OutboundMessage(to: to, body: body ?? "", from: text(0), messagingServiceSID: text(1))
        if m.from == nil && m.messagingServiceSID == nil {
            switch configured {
            case .from(let number): m.from = number
            case .messagingService(let sid): m.messagingServiceSID = sid
            }
        }
        if let raw = metadata.count > 2 ? metadata[2] : nil, let data = raw.data(using: .utf8) {
            if let list = try? JSONDecoder().decode([String].self, from: data) { m.mediaURLs = Array(list.prefix(10)) }
            else if let one = try? JSONDecoder().decode(String.self, from: data) { m.mediaURLs = [one] }
        }
        m.contentSID = text(3)
        m.contentVariables = text(4)
        m.smartEncoded = flag(5)
        m.shortenURLs = flag(6)
        return m
    }
}
