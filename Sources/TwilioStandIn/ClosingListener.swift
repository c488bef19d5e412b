import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A TCP listener on 127.0.0.1 that takes each connection, reads what the client sends, and
/// closes it without a byte of answer: a provider whose connections drop mid-request (a load
/// balancer resetting, a proxy dying). Point `TWILIO_API_BASE_URL` at `baseURL`.
public final class ClosingListener: @unchecked Sendable {
    public let baseURL: String
    /// Connections taken and closed so far.
    public var closed: Int { lock.withLock { count } }
    private let fd: Int32
    private let lock = NSLock()
    private var count = 0

    public init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && listen(fd, 128) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else {
            close(fd)
            throw StandInError.notListening
        }
        self.fd = fd
        baseURL = "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))"
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    private func acceptLoop() {
        while true {
            let client = accept(fd, nil, nil)
            guard client >= 0 else { return }   // the listening socket was shut down
            // Read the request head (or whatever comes first), then drop the connection.
            var buffer = [UInt8](repeating: 0, count: 4096)
            _ = read(client, &buffer, buffer.count)
            close(client)
            lock.withLock { count += 1 }
        }
    }

    /// Stops accepting (the accept loop ends).
    public func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}
