import Foundation
import Logging

/// Turns one status-callback request from Twilio into a delivery status on its row: checks
/// `X-Twilio-Signature` against the public URL Twilio was given, then `recordDeliveryStatus`.
/// Independent of any HTTP server: `sms-retry serve-callbacks` wraps it in one, and a Swift
/// router can call it from its own.
public struct StatusCallbackHandler: Sendable {
    public let store: RetryStore
    public let signature: TwilioSignature
    /// The URL exactly as configured in Twilio's `StatusCallback` (scheme to path).
    public let publicURL: String

    public init(store: RetryStore, authToken: String, publicURL: String) {
        self.store = store
        self.signature = TwilioSignature(authToken: authToken)
        self.publicURL = publicURL
    }

    public struct Reply: Sendable, Equatable {
        public var status: Int
        public var body: String
    }

    /// Largest body accepted (a status callback is well under 2 kB).
    public static let maxBodyBytes = 64 * 1024

    /// `query`: the request's query string without `?` (part of what Twilio signed).
    public func handle(query: String?, contentType: String?, signatureHeader: String?, body: [UInt8]) async -> Reply {
        guard body.count <= Self.maxBodyBytes else { return Reply(status: 413, body: "body too large") }
        guard contentType?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true else {
            return Reply(status: 415, body: "expected a form POST (application/x-www-form-urlencoded)")
        }
        let params = FormEncoding.decode(String(decoding: body, as: UTF8.self))
        guard signature.isValid(signature: signatureHeader, url: signedURL(query: query), params: params) else {
            store.logger.warning("status callback refused: missing or wrong X-Twilio-Signature",
                                 metadata: ["http.signature_present": "\(signatureHeader?.isEmpty == false)"])
            return Reply(status: 403, body: "invalid signature")
        }
        func field(_ name: String) -> String? { params.last { $0.0 == name }?.1 }
        guard let sid = field("MessageSid"), !sid.isEmpty, let status = field("MessageStatus"), !status.isEmpty else {
            return Reply(status: 400, body: "MessageSid and MessageStatus are required")
        }
        let code = field("ErrorCode").flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        do {
            let outcome = try await store.recordDeliveryStatus(messageSID: sid, status: status, errorCode: code)
            if outcome == .unknownMessage { retryLater(sid: sid, status: status, code: code) }
            return Reply(status: 200, body: "\(outcome)")
        } catch {
            // Twilio does not resend a failed callback; `sms-retry reconcile` asks for the status later.
            store.logger.error("status callback not recorded", metadata: ["sms.sid": "\(sid)", "db.error": "\(error)"])
            return Reply(status: 503, body: "not recorded")
        }
    }

    /// A callback can beat the run that sent the message to the database: the run records its
    /// SIDs per batch, a second or so after Twilio answered. Such a callback is answered at once
    /// and applied again after 0.5, 1, 2, 4, 8 and 16 s; after that `reconcile` asks Twilio.
    private func retryLater(sid: String, status: String, code: Int?) {
        let store = self.store
        Task.detached {
            for delay in [0.5, 1, 2, 4, 8, 16] {
                try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
                guard let outcome = try? await store.recordDeliveryStatus(messageSID: sid, status: status, errorCode: code),
                      outcome == .unknownMessage else { return }
            }
        }
    }

    /// The URL Twilio signed: the public URL with the request's own query string.
    func signedURL(query: String?) -> String {
        guard let query, !query.isEmpty else { return publicURL }
        let base = publicURL.split(separator: "?", maxSplits: 1).first.map(String.init) ?? publicURL
        return base + "?" + query
    }
}
