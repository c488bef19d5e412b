import CCurl
import Foundation
import Synchronization

/// An HTTP client on libcurl's multi interface, driven by one dedicated thread.
///
/// `send` suspends the calling task without blocking a cooperative thread; transfers run
/// concurrently on the worker and reuse connections from the multi handle's cache.
public final class HTTPClient: Sendable {
    public struct Request: Sendable {
        public var method: String
        public var url: String
        public var headers: [String]
        public var body: String?
        public var basicAuth: (user: String, password: String)?

        public init(method: String = "GET", url: String, headers: [String] = [], body: String? = nil,
                    basicAuth: (user: String, password: String)? = nil) {
            self.method = method
            self.url = url
            self.headers = headers
            self.body = body
            self.basicAuth = basicAuth
        }
    }

    public struct Response: Sendable {
        public var status: Int
        /// Header names lowercased; the last value wins.
        public var headers: [String: String]
        public var body: [UInt8]
        public var seconds: Double
        /// New connections this transfer opened (0 when it reused a kept-alive one).
        public var newConnections: Int = 0

        public var text: String { String(decoding: body, as: UTF8.self) }

        public init(status: Int, headers: [String: String], body: [UInt8], seconds: Double, newConnections: Int = 0) {
            self.status = status
            self.headers = headers
            self.body = body
            self.seconds = seconds
            self.newConnections = newConnections
        }
    }

    public struct Options: Sendable {
        public var connectTimeout: Duration = .seconds(5)
        /// Whole-request limit; kept under 30 s so a hung provider cannot hold a cron run.
        public var timeout: Duration = .seconds(20)
        /// Size of the connection cache kept for keep-alive.
        public var maxConnections: Int = 64
        public init() {}
    }

    private let inbox: Inbox
    private let multiAddress: UInt
    public let options: Options

    public init(options: Options = Options()) {
        _ = curlGlobalInit
        self.options = options
        let multi = curl_multi_init()!
        // "CURLMOPT_MAXCONNECTS: the maximum amount of simultaneously open connections that
        // libcurl may keep in its connection cache after completed use."
        _ = sr_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, options.maxConnections)
        // curl_multi_wakeup is documented as callable from any thread; the handle is otherwise
        // used only by the worker, so it crosses as an address.
        multiAddress = UInt(bitPattern: multi)
        inbox = Inbox()
        let worker = CurlWorker(multi: multi, inbox: inbox, options: options)
        let thread = Thread { worker.run() }
        thread.name = "sms-retry.curl"
        thread.start()
    }

    deinit { shutdown() }

    /// Sends one request. A transport failure (refused, reset, timeout, DNS) is an `HTTPError`;
    /// any HTTP status is a `Response`.
    public func send(_ request: Request) async -> Result<Response, HTTPError> {
        await withCheckedContinuation { continuation in
            let (accepted, wake) = inbox.state.withLock { state -> (Bool, Bool) in
                guard !state.closed else { return (false, false) }
                state.pending.append(Submission(request: request, continuation: continuation))
                defer { state.wakeSent = true }
                return (true, !state.wakeSent)
            }
            if !accepted {
                continuation.resume(returning: .failure(HTTPError(code: -1, message: "HTTP client shut down")))
            } else if wake {
                curl_multi_wakeup(UnsafeMutableRawPointer(bitPattern: multiAddress))
            }
        }
    }

    /// Stops the worker once its transfers have finished. Further sends fail at once.
    public func shutdown() {
        let first = inbox.state.withLock { state -> Bool in
            defer { state.closed = true }
            return !state.closed
        }
        if first { curl_multi_wakeup(UnsafeMutableRawPointer(bitPattern: multiAddress)) }
    }
}

/// A transport-level failure: curl's error code and text. Never carries the URL's credentials
/// (they travel as options, not in the URL).
public struct HTTPError: Error, CustomStringConvertible, Sendable {
    public var code: Int32
    public var message: String
    /// Whether any byte of the request's body was handed to the connection.
    public var bodySent: Bool
    /// Whether the request had a body (a POST's form).
    public var hasBody: Bool

    public init(code: Int32, message: String, bodySent: Bool = false, hasBody: Bool = false) {
        self.code = code
        self.message = message
        self.bodySent = bodySent
        self.hasBody = hasBody
    }

    public var description: String {
        if code == Int32(CURLE_SEND_FAIL_REWIND.rawValue) {
            return "HTTP transport error (curl \(code)): the connection closed after the request was sent, before any answer (not resent: the server may have acted on it)"
        }
        return "HTTP transport error (curl \(code)): \(message)"
    }

    /// Failures before a connection to the server existed: the name did not resolve, the
    /// connection was refused or never completed, the TLS handshake failed.
    static let beforeConnection: Set<Int32> = Set([
        CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT, CURLE_SSL_CONNECT_ERROR,
        CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE,
        CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_UNSUPPORTED_PROTOCOL,
        CURLE_URL_MALFORMAT,
    ].map { Int32($0.rawValue) })

    /// False when the server cannot have acted on the request: no connection was made, or
    /// (for a request with a body) not one byte of the body was sent — a server does not act on
    /// a form it never received. A timeout or a reset after the body left may come after the
    /// server did.
    public var requestMayHaveArrived: Bool {
        if Self.beforeConnection.contains(code) { return false }
        return hasBody ? bodySent : true
    }
}

let curlGlobalInit: Void = {
    curl_global_init(Int(CURL_GLOBAL_DEFAULT))
}()

struct Submission: Sendable {
    var request: HTTPClient.Request
    var continuation: CheckedContinuation<Result<HTTPClient.Response, HTTPError>, Never>
}

final class Inbox: Sendable {
    struct State {
        var pending: [Submission] = []
        var closed = false
        /// A wakeup is on its way to the worker, which has not yet taken `pending`: a further
        /// submission needs none of its own (one `curl_multi_wakeup`, a syscall, per drain
        /// instead of per request).
        var wakeSent = false
    }
    let state = Mutex(State())
}
