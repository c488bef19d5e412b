import Foundation
import Logging
import Synchronization

/// Turns one status-callback request from Twilio into a delivery status on its row: checks
/// `X-Twilio-Signature` against the public URL Twilio was given, then `recordDeliveryStatus`.
/// Independent of any HTTP server: `sms-retry serve-callbacks` wraps it in one, and a Swift
/// router can call it from its own.
public struct StatusCallbackHandler: Sendable {
    public let store: RetryStore
    public let signature: TwilioSignature
    /// The URL exactly as configured in Twilio's `StatusCallback` (scheme to path; a fragment of
    /// connection overrides, `#rc=5&rp=all`, may be given or left out: both are accepted).
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
        // Every candidate URL is compared, so the time taken does not tell which one matched.
        let valid = CallbackURL.signedCandidates(publicURL: publicURL, query: query)
            .reduce(false) { signature.isValid(signature: signatureHeader, url: $1, params: params) || $0 }
        guard valid else {
            store.logger.warning("status callback refused: missing or wrong X-Twilio-Signature",
                                 metadata: ["http.signature_present": "\(signatureHeader?.isEmpty == false)"])
            return Reply(status: 403, body: "invalid signature")
        }
        func field(_ name: String) -> String? { params.last { $0.0 == name }?.1 }
        guard let sid = field("MessageSid"), !sid.isEmpty, let status = field("MessageStatus"), !status.isEmpty else {
            return Reply(status: 400, body: "MessageSid and MessageStatus are required")
        }
        let code = field("ErrorCode").flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let store = self.store
        switch await Self.within(Self.databaseTimeout, clock: store.clock, { try await store.recordDeliveryStatus(messageSID: sid, status: status, errorCode: code) }) {
        case .success(let outcome)?:
            if outcome == .unknownMessage { retryLater(sid: sid, status: status, code: code) }
            return Reply(status: 200, body: "\(outcome)")
        case .failure(let error)?:
            // A 503 lets Twilio's retry of the callback (one, by default) land once the database
            // is back: the connection is re-established on the next request. A callback whose
            // retry also fails is not lost for good: `sms-retry reconcile` asks Twilio later. A
            // DBA's time limit (a router's transaction holding the row past lock_timeout) is
            // answered the same way, naming the setting.
            store.logger.error("status callback not recorded", metadata: ["sms.sid": "\(sid)", "db.error": "\(error)"])
            let limit = (error as? DatabaseError)?.timeoutSetting
            return Reply(status: 503, body: limit.map { "not recorded: the database's \($0) cancelled it" } ?? "not recorded: database unavailable")
        case nil:
            store.logger.error("status callback not recorded in time", metadata: ["sms.sid": "\(sid)"])
            return Reply(status: 503, body: "not recorded: database too slow")
        }
    }

    /// `GET /health`: 200 when the database answers a query within 3 s, else 503, with the
    /// database's state in the body (for a load balancer, a Kubernetes probe, a watchdog).
    public func health() async -> Reply {
        let db = store.database
        switch await Self.within(.seconds(3), clock: store.clock, { try await db.query("SELECT 1") }) {
        case .success?: return Reply(status: 200, body: #"{"status": "ok", "database": "up"}"#)
        case .failure(let error)?:
            let why = "\(error)".replacingOccurrences(of: "\"", with: "'").replacingOccurrences(of: "\n", with: " ")
            return Reply(status: 503, body: #"{"status": "unavailable", "database": "down", "error": "\#(why)"}"#)
        case nil: return Reply(status: 503, body: #"{"status": "unavailable", "database": "not answering"}"#)
        }
    }

    /// How long a callback waits for the database before answering 503 (Twilio gives up on a
    /// callback after 15 s).
    static let databaseTimeout = Duration.seconds(10)

    /// `work`'s result, or nil when it takes longer than `limit` (it then goes on alone: a
    /// blocked database call cannot be cancelled, and an answer must not wait for it).
    static func within<T: Sendable>(_ limit: Duration, clock: SMSRetryClock, _ work: @escaping @Sendable () async throws -> T) async -> Result<T, any Error>? {
        await withCheckedContinuation { continuation in
            let once = ResumeOnce(continuation)
            Task {
                do { once.resume(.success(try await work())) } catch { once.resume(.failure(error)) }
            }
            Task {
                try? await clock.sleep(for: limit)
                once.resume(nil)
            }
        }
    }

    /// A callback can beat the run that sent the message to the database: the run records its
    /// SIDs per batch, a second or so after Twilio answered. Such a callback is answered at once
    /// and applied again after 0.5, 1, 2, 4, 8 and 16 s; after that `reconcile` asks Twilio.
    private func retryLater(sid: String, status: String, code: Int?) {
        let store = self.store
        Task.detached {
            for delay in [0.5, 1, 2, 4, 8, 16] {
                try? await store.clock.sleep(for: .milliseconds(Int64(delay * 1000)))
                guard let outcome = try? await store.recordDeliveryStatus(messageSID: sid, status: status, errorCode: code),
                      outcome == .unknownMessage else { return }
            }
        }
    }

}

/// A continuation resumed by whichever of two tasks finishes first.
private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, Never>?>
    init(_ c: CheckedContinuation<T, Never>) { continuation = Mutex(c) }
    func resume(_ value: T) { continuation.withLock { $0?.resume(returning: value); $0 = nil } }
}
