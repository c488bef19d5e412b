import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One HTTP/1.1 request as it came off the wire.
public struct WireRequest: Sendable {
    public var method: String
    /// The path without the query string.
    public var path: String
    /// Query parameters, percent-decoded (the last value of a repeated name wins).
    public var query: [String: String]
    /// Header names lowercased.
    public var headers: [String: String]
    public var body: [UInt8]
}

/// What the server does with a request: answer it, or end the connection without a byte of
/// answer, as a dying load balancer or a crashed server would.
public enum WireAnswer: Sendable {
    case response(status: Int, headers: [(String, String)], body: [UInt8])
    /// Closes the connection (FIN) without answering.
    case close
    /// Resets the connection (RST: SO_LINGER 0) without answering.
    case reset
}

/// A small HTTP/1.1 server on 127.0.0.1 for the stand-in: a thread per connection, blocking
/// reads, keep-alive, Content-Length bodies, one write per answer with TCP_NODELAY. Unlike a
/// general-purpose server it can end a connection after reading a request and before answering
/// it, which is how Twilio's connections fail in the fault drills.
final class WireServer: @unchecked Sendable {
    // @unchecked: `connections`, `stopped` and `listening` are guarded by `lock`; the listening
    // descriptor is immutable.
    let port: UInt16
    private let listener: Int32
    private let handler: @Sendable (WireRequest) async -> WireAnswer
    private let lock = NSLock()
    private var connections: Set<Int32> = []
    private var stopped = false
    /// The listener is open (the accept thread closes it, under `lock`, when its loop ends).
    private var listening = true

    init(port: UInt16, handler: @escaping @Sendable (WireRequest) async -> WireAnswer) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && listen(fd, 1024) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else {
            close(fd)
            throw StandInError.notListening
        }
        listener = fd
        self.port = UInt16(bigEndian: address.sin_port)
        self.handler = handler
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "standin.accept"
        thread.start()
    }

    /// Stops accepting and ends every open connection.
    ///
    /// A descriptor is closed only by the thread that owns it (the accept thread its listener,
    /// a connection's thread its connection), and a connection's thread closes it under `lock`:
    /// so every descriptor `stop` shuts down under `lock` is still this server's. A descriptor
    /// shut down after its thread had closed it could be anyone's by then: the kernel hands the
    /// lowest free number to the next `socket`/`accept` in the process (another test's Twilio or
    /// PostgreSQL connection), and that connection would break mid-request.
    func stop() {
        lock.withLock {
            guard !stopped else { return }
            stopped = true
            // Wakes the accept thread (accept fails once the socket no longer listens), which
            // then closes the listener.
            if listening { shutdown(listener, Int32(SHUT_RDWR)) }
            for fd in connections { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    private func acceptLoop() {
        defer {
            lock.withLock {
                listening = false
                close(listener)
            }
        }
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return   // the listening socket was shut down
            }
            var on: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
            let admitted = lock.withLock { () -> Bool in
                guard !stopped else { return false }
                connections.insert(client)
                return true
            }
            guard admitted else { close(client); return }
            let thread = Thread { [self] in serve(client) }
            thread.stackSize = 256 * 1024
            thread.start()
        }
    }

    private func serve(_ fd: Int32) {
        var reader = Reader(fd: fd)
        defer {
            // Under the lock: `stop` never shuts down a number this thread has given back.
            lock.withLock {
                _ = connections.remove(fd)
                close(fd)
            }
        }
        while let request = reader.next() {
            switch call(request) {
            case .response(let status, let headers, let body):
                let keepAlive = request.headers["connection"]?.lowercased() != "close"
                var head = "HTTP/1.1 \(status) \(Self.phrase(status))\r\nContent-Length: \(body.count)\r\n"
                for (name, value) in headers { head += "\(name): \(value)\r\n" }
                if !keepAlive { head += "Connection: close\r\n" }
                head += "\r\n"
                guard writeAll(fd, Array(head.utf8) + body), keepAlive else { return }
            case .close:
                return
            case .reset:
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                return
            }
        }
    }

    /// Runs the async handler from this connection's thread (not one of the cooperative pool's).
    private func call(_ request: WireRequest) -> WireAnswer {
        final class Box: @unchecked Sendable { var answer: WireAnswer = .close }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let handler = self.handler
        Task {
            box.answer = await handler(request)
            done.signal()
        }
        done.wait()
        return box.answer
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }

    static func phrase(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 404: "Not Found"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }

    /// Reads requests off one connection: the head up to CRLF CRLF, then Content-Length bytes.
    struct Reader {
        let fd: Int32
        var buffer: [UInt8] = []

        init(fd: Int32) { self.fd = fd }

        mutating func next() -> WireRequest? {
            var headEnd: Int? = nil
            while true {
                if let end = Self.find(buffer) { headEnd = end; break }
                guard buffer.count < 64 * 1024, fill() else { return nil }
            }
            guard let end = headEnd else { return nil }
            let head = String(decoding: buffer[..<end], as: UTF8.self)
            var lines = head.components(separatedBy: "\r\n")
            let requestLine = lines.removeFirst().split(separator: " ")
            guard requestLine.count >= 2 else { return nil }
            var headers: [String: String] = [:]
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let length = Int(headers["content-length"] ?? "0") ?? 0
            while buffer.count < end + 4 + length {
                guard fill() else { return nil }
            }
            let body = Array(buffer[(end + 4)..<(end + 4 + length)])
            buffer.removeFirst(end + 4 + length)
            let target = String(requestLine[1])
            let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
            var query: [String: String] = [:]
            if parts.count == 2 {
                for (k, v) in Form.decode(String(parts[1])) { query[k] = v }
            }
            return WireRequest(method: String(requestLine[0]), path: String(parts[0]), query: query,
                               headers: headers, body: body)
        }

        private mutating func fill() -> Bool {
            var chunk = [UInt8](repeating: 0, count: 16 * 1024)
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                buffer.append(contentsOf: chunk[..<n])
                return true
            }
        }

        /// Index of the CRLF CRLF that ends the head.
        static func find(_ b: [UInt8]) -> Int? {
            guard b.count >= 4 else { return nil }
            for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
            return nil
        }
    }
}
