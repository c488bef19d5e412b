import Foundation

/// Where and as whom to send. Built from the environment by the CLI; `description` never shows
/// a secret.
public struct TwilioConfig: Sendable, CustomStringConvertible {
    public enum Sender: Sendable, Equatable {
        case from(String)
        case messagingService(String)
    }

    /// The `AC…` Account SID: always the one in the URL path.
    public var accountSID: String
    /// Basic-auth user: the Account SID, or an `SK…` API Key SID (Twilio's advice for production).
    public var username: String
    /// Basic-auth password: the Auth Token or the API key secret.
    public var password: String
    public var sender: Sender
    /// `https://api.twilio.com` unless pointed at a stand-in.
    public var baseURL: String
    public var statusCallbackURL: String?

    public init(accountSID: String, username: String, password: String, sender: Sender,
                baseURL: String = "https://api.twilio.com", statusCallbackURL: String? = nil) {
        self.accountSID = accountSID
        self.username = username
        self.password = password
        self.sender = sender
        self.baseURL = baseURL
        self.statusCallbackURL = statusCallbackURL
    }

    public var description: String {
        let from: String
        switch sender {
        case .from(let number): from = "From=\(PhoneNumber.masked(number))"
        case .messagingService(let sid): from = "MessagingServiceSid=\(sid)"
        }
        return "Twilio(account \(accountSID), user \(username), \(from), \(baseURL))"
    }

    /// Reads `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN` or `TWILIO_API_KEY_SID` +
    /// `TWILIO_API_KEY_SECRET`, `TWILIO_FROM_NUMBER` or `TWILIO_MESSAGING_SERVICE_SID`,
    /// `TWILIO_API_BASE_URL`, `TWILIO_STATUS_CALLBACK_URL`. A missing or malformed setting is one
    /// error that names it.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigurationError) -> TwilioConfig {
        func value(_ name: String) -> String? {
            guard let v = env[name]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return v
        }
        guard let account = value("TWILIO_ACCOUNT_SID") else {
            throw ConfigurationError("TWILIO_ACCOUNT_SID is not set (the Account SID, AC followed by 32 hex digits)")
        }
        guard account.hasPrefix("AC") else {
            throw ConfigurationError("TWILIO_ACCOUNT_SID must start with AC (an API Key SID goes in TWILIO_API_KEY_SID)")
        }
        let username: String, password: String
        if let keySID = value("TWILIO_API_KEY_SID") {
            guard let secret = value("TWILIO_API_KEY_SECRET") else {
                throw ConfigurationError("TWILIO_API_KEY_SECRET is not set (required with TWILIO_API_KEY_SID)")
            }
            (username, password) = (keySID, secret)
        } else if let token = value("TWILIO_AUTH_TOKEN") {
            (username, password) = (account, token)
        } else {
            throw ConfigurationError("TWILIO_AUTH_TOKEN is not set (or set TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET)")
        }
        let sender: Sender
        if let service = value("TWILIO_MESSAGING_SERVICE_SID") {
            sender = .messagingService(service)
        } else if let from = value("TWILIO_FROM_NUMBER") {
            guard PhoneNumber.isE164(from) else {
                throw ConfigurationError("TWILIO_FROM_NUMBER is not an E.164 number (+ then 2 to 15 digits)")
            }
            sender = .from(from)
        } else {
            throw ConfigurationError("TWILIO_FROM_NUMBER is not set (or set TWILIO_MESSAGING_SERVICE_SID)")
        }
        let base = value("TWILIO_API_BASE_URL") ?? "https://api.twilio.com"
        guard base.hasPrefix("http://") || base.hasPrefix("https://") else {
            throw ConfigurationError("TWILIO_API_BASE_URL must start with http:// or https://")
        }
        return TwilioConfig(accountSID: account, username: username, password: password, sender: sender,
                            baseURL: base.hasSuffix("/") ? String(base.dropLast()) : base,
                            statusCallbackURL: value("TWILIO_STATUS_CALLBACK_URL"))
    }
}

/// A setting is missing or malformed. The message names the setting, never its secret value.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum PhoneNumber {
    /// E.164: `+`, a non-zero digit, at most 15 digits in all.
    public static func isE164(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard u.count >= 3, u.count <= 16, u[0] == UInt8(ascii: "+"), u[1] != UInt8(ascii: "0") else { return false }
        return u.dropFirst().allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// For logs: the first three characters and the last two, e.g. `+14*******10`.
    public static func masked(_ s: String) -> String {
        guard s.count > 5 else { return String(repeating: "*", count: s.count) }
        return String(s.prefix(3)) + String(repeating: "*", count: s.count - 5) + String(s.suffix(2))
    }
}
