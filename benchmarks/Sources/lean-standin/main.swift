// lean-standin: the benchmarks' Twilio stand-in, made to cost little: one thread, poll(2),
// non-blocking sockets, keep-alive, no JSON parsing. It answers every POST with Twilio's 201
// create answer (a new SID each time), every GET of a message by SID with that message delivered,
// the message list (for reconcile's sweep) as `--messages N` messages SM<32 hex digits of 1…N>,
// all delivered, newest (N) first, `PageSize` a page, `next_page_uri` with `Page`; every other
// request with 404, after an optional latency, and counts what it answered. It checks nothing a
// benchmark does not need: the test stand-in (Sources/TwilioStandIn) is the one that speaks
// Twilio's whole wire format.
//
//   lean-standin [--port N] [--latency-ms N] [--messages N]     prints its base URL on the first line
//
// SIGUSR1 prints "answered=N" on stderr.
import Glibc

var port: UInt16 = 0
var latencyNS: Int64 = 0
var listed = 0
var args = CommandLine.arguments.dropFirst().makeIterator()
while let arg = args.next() {
    switch arg {
    case "--port": port = UInt16(args.next() ?? "") ?? 0
    case "--latency-ms": latencyNS = (Int64(args.next() ?? "") ?? 0) * 1_000_000
    case "--messages": listed = Int(args.next() ?? "") ?? 0
    default: fputs("lean-standin: unknown argument \(arg)\n", stderr); exit(2)
    }
}

func now() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
var on: Int32 = 1
setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
var address = sockaddr_in()
address.sin_family = sa_family_t(AF_INET)
address.sin_addr.s_addr = inet_addr("127.0.0.1")
address.sin_port = port.bigEndian
var length = socklen_t(MemoryLayout<sockaddr_in>.size)
let bound = withUnsafeMutablePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && listen(listener, 4096) == 0 && getsockname(listener, $0, &length) == 0 }
}
guard bound else { fputs("lean-standin: cannot listen\n", stderr); exit(1) }
print("http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))")
fflush(stdout)

final class Connection {
    var input: [UInt8] = []
    var output: [UInt8] = []
}
var connections: [Int32: Connection] = [:]
/// Answers waiting for their latency: (due, fd, answer), in due order (one latency for all).
var delayed: [(due: Int64, fd: Int32, connection: Connection, answer: [UInt8])] = []
var delayedHead = 0
var answered = 0
var sid: UInt64 = 0

signal(SIGUSR1) { _ in
    let text = "answered=\(answered)\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}
signal(SIGPIPE, SIG_IGN)

let created: [UInt8] = Array("HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: ".utf8)
let ok: [UInt8] = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ".utf8)
/// Every listed message was created when the stand-in started (RFC 2822, as Twilio writes dates).
let dateCreated: String = {
    var t = time(nil)
    var parts = tm()
    gmtime_r(&t, &parts)
    var text = [CChar](repeating: 0, count: 64)
    let n = strftime(&text, text.count, "%a, %d %b %Y %H:%M:%S +0000", &parts)
    return String(decoding: text.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}()
func sidOf(_ n: Int) -> String {
    let hex = String(n, radix: 16)
    return "SM" + String(repeating: "0", count: 32 - hex.count) + hex
}
func delivered(_ sid: String) -> String {
    "{\"sid\": \"\(sid)\", \"status\": \"delivered\", \"error_code\": null, \"date_created\": \"\(dateCreated)\", \"date_sent\": \"\(dateCreated)\"}"
}
/// A query parameter's integer value in the request line, or nil.
func parameter(_ line: String, _ name: String) -> Int? {
    guard let range = line.firstRange(of: name + "=") else { return nil }
    return Int(line[range.upperBound...].prefix { $0.isNumber })
}
func get(_ request: ArraySlice<UInt8>) -> [UInt8] {
    let line = String(decoding: request.prefix { $0 != 13 }, as: UTF8.self)
    let path = line.split(separator: " ").dropFirst().first.map(String.init) ?? ""
    var body: String
    if let range = path.firstRange(of: "/Messages/"), path.hasSuffix(".json") {
        body = delivered(String(path[range.upperBound...].dropLast(5)))
    } else if path.contains("/Messages.json") {
        let size = min(parameter(path, "PageSize") ?? 50, 1000), page = parameter(path, "Page") ?? 0
        let top = listed - page * size, bottom = max(top - size, 0)
        body = "{\"messages\": [" + (top > bottom ? stride(from: top, to: bottom, by: -1).map { delivered(sidOf($0)) }.joined(separator: ", ") : "")
        let base = String(path.prefix { $0 != "?" })
        body += "], \"next_page_uri\": " + (bottom > 0 ? "\"\(base)?PageSize=\(size)&Page=\(page + 1)\"" : "null") + "}"
    } else {
        return Array("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}".utf8)
    }
    let bytes = Array(body.utf8)
    return ok + Array("\(bytes.count)\r\n\r\n".utf8) + bytes
}

func answer(for request: ArraySlice<UInt8>) -> [UInt8] {
    guard request.starts(with: "POST ".utf8) else {
        return request.starts(with: "GET ".utf8) ? get(request) : Array("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}".utf8)
    }
    sid &+= 1
    var hex = String(sid, radix: 16)
    hex = String(repeating: "0", count: 32 - hex.count) + hex
    let body = Array("{\"sid\": \"SM\(hex)\", \"status\": \"queued\"}".utf8)
    return created + Array("\(body.count)\r\n\r\n".utf8) + body
}

func flush(_ fd: Int32, _ c: Connection) {
    while !c.output.isEmpty {
        let n = c.output.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n > 0 { c.output.removeFirst(n); continue }
        if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }   // poll asks for POLLOUT while output waits
        close(fd); connections[fd] = nil; return
    }
}

/// (Only to the connection that asked: a closed one's descriptor may belong to a new one.)
func deliver(_ fd: Int32, _ bytes: [UInt8], to asker: Connection) {
    guard let c = connections[fd], c === asker else { return }
    answered += 1
    c.output += bytes
    flush(fd, c)
}

/// Complete requests at the front of `c.input` (head up to CRLF CRLF, then Content-Length bytes).
func requests(_ fd: Int32, _ c: Connection) {
    while true {
        guard let end = find(c.input) else { return }
        var contentLength = 0
        let head = c.input[..<end]
        if let range = firstRange(head, of: Array("ontent-Length:".utf8)) ?? firstRange(head, of: Array("ontent-length:".utf8)) {
            var i = range
            while i < end, c.input[i] == 32 { i += 1 }
            while i < end, (48...57).contains(c.input[i]) { contentLength = contentLength * 10 + Int(c.input[i] - 48); i += 1 }
        }
        let total = end + 4 + contentLength
        guard c.input.count >= total else { return }
        let bytes = answer(for: c.input[..<end])
        c.input.removeFirst(total)
        if latencyNS > 0 { delayed.append((now() + latencyNS, fd, c, bytes)) } else { deliver(fd, bytes, to: c) }
    }
}

func find(_ b: [UInt8]) -> Int? {
    guard b.count >= 4 else { return nil }
    for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
    return nil
}
func firstRange(_ b: ArraySlice<UInt8>, of needle: [UInt8]) -> Int? {
    guard b.count >= needle.count else { return nil }
    var i = b.startIndex
    while i <= b.endIndex - needle.count {
        if b[i..<(i + needle.count)].elementsEqual(needle) { return i + needle.count }
        i += 1
    }
    return nil
}

var buffer = [UInt8](repeating: 0, count: 65_536)
var fds: [pollfd] = []
while true {
    var timeout: Int32 = -1
    if delayedHead < delayed.count { timeout = Int32(max(0, (delayed[delayedHead].due - now() + 999_999) / 1_000_000)) }
    fds.removeAll(keepingCapacity: true)
    fds.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0))
    for (fd, c) in connections { fds.append(pollfd(fd: fd, events: Int16(POLLIN) | (c.output.isEmpty ? 0 : Int16(POLLOUT)), revents: 0)) }
    let n = poll(&fds, nfds_t(fds.count), timeout)
    if n > 0 {
        for p in fds where p.revents != 0 {
            let fd = p.fd
            if fd == listener {
                while true {
                    let client = accept(listener, nil, nil)
                    guard client >= 0 else { break }
                    _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
                    setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
                    connections[client] = Connection()
                }
                continue
            }
            guard let c = connections[fd] else { continue }
            if p.revents & Int16(POLLOUT) != 0 { flush(fd, c) }
            if p.revents & (Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)) != 0 {
                var closed = false
                while true {
                    let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if got > 0 { c.input.append(contentsOf: buffer[0..<got]); continue }
                    if got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) { closed = true }
                    break
                }
                requests(fd, c)
                if closed { close(fd); connections[fd] = nil }
            }
        }
    }
    let t = now()
    while delayedHead < delayed.count, delayed[delayedHead].due <= t {
        deliver(delayed[delayedHead].fd, delayed[delayedHead].answer, to: delayed[delayedHead].connection)
        delayedHead += 1
    }
    if delayedHead > 4096 && delayedHead * 2 > delayed.count { delayed.removeFirst(delayedHead); delayedHead = 0 }
}
