import FlyingSocks
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// FlyingFox's socket pool with TCP_NODELAY on every socket it waits on.
///
/// FlyingFox writes a response's head and body in two writes and leaves Nagle's algorithm on,
/// so the body waits for the client's delayed ACK of the head: ~40 ms per keep-alive request,
/// which capped a run at ~300 requests/s at concurrency 16. A connection's socket passes
/// through `suspendSocket` (waiting for its request) before any response is written, so
/// setting the option there covers every connection; setting it again is harmless.
struct NoDelayPool<Base: AsyncSocketPool>: AsyncSocketPool {
    let base: Base

    func prepare() async throws { try await base.prepare() }
    func run() async throws { try await base.run() }

    func suspendSocket(_ socket: Socket, untilReadyFor events: Socket.Events) async throws {
        var on: Int32 = 1
        _ = setsockopt(socket.file.rawValue, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        try await base.suspendSocket(socket, untilReadyFor: events)
    }
}
