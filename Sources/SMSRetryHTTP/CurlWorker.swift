import CCurl
import Foundation

/// The thread that owns the multi handle and every easy handle. Only `HTTPClient` talks to it,
/// through the inbox and `curl_multi_wakeup`.
final class CurlWorker: @unchecked Sendable {
    // @unchecked: created on the caller's thread, then used only by the worker thread it is
    // handed to; nothing else touches it after `Thread.start()`.
    private let multi: UnsafeMutableRawPointer
    private let inbox: Inbox
    private let options: HTTPClient.Options
    private var active: [UnsafeMutableRawPointer: Transfer] = [:]
    private var idle: [UnsafeMutableRawPointer] = []

    init(multi: UnsafeMutableRawPointer, inbox: Inbox, options: HTTPClient.Options) {
        self.multi = multi
        self.inbox = inbox
        self.options = options
    }

    func run() {
        while true {
            let (submissions, closed) = inbox.state.withLock { state in
                defer { state.pending.removeAll(keepingCapacity: true); state.wakeSent = false }
                return (state.pending, state.closed)
            }
            for submission in submissions { start(submission) }
            if closed && active.isEmpty { break }

            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            var left: Int32 = 0
            while let message = curl_multi_info_read(multi, &left) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
                finish(easy, code: message.pointee.data.result)
            }
            // "curl_multi_poll ... can be woken up from another thread with curl_multi_wakeup."
            curl_multi_poll(multi, nil, 0, 1000, nil)
        }
        for easy in idle { curl_easy_cleanup(easy) }
        curl_multi_cleanup(multi)
    }

    private func start(_ submission: Submission) {
        let easy = idle.popLast() ?? curl_easy_init()!
        let transfer = Transfer(continuation: submission.continuation)
        let request = submission.request
        let opaque = Unmanaged.passUnretained(transfer).toOpaque()

        _ = sr_easy_setopt_string(easy, CURLOPT_URL, request.url)
        _ = sr_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = sr_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(options.connectTimeout))
        _ = sr_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, Self.milliseconds(options.timeout))
        _ = sr_easy_setopt_string(easy, CURLOPT_USERAGENT, "sms-retry/1")
        if request.method == "POST" {
            // The body goes through a read callback that cannot rewind, never CURLOPT_POSTFIELDS.
            // When a reused connection dies before any answer byte, libcurl resends the request on
            // a fresh connection by itself (lib/transfer.c, Curl_retry_request: "Retry the same
            // request on a fresh connect!"); for a create, Twilio may already have taken the
            // first one. Before resending a body it has started sending, libcurl rewinds it
            // (lib/multi.c, readrewind): with a read callback whose seek callback says
            // CURL_SEEKFUNC_CANTSEEK that "fail[s] the entire transfer" with
            // CURLE_SEND_FAIL_REWIND, so the caller learns the fate is unknown instead of
            // getting a second message. A retry before any body byte left is still made: the
            // server cannot have acted on a request without its body.
            transfer.requestBody = Array((request.body ?? "").utf8)
            _ = sr_easy_setopt_long(easy, CURLOPT_POST, 1)
            _ = sr_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE, transfer.requestBody.count)
            _ = sr_easy_setopt_read(easy) { buffer, size, count, user in
                let transfer = Unmanaged<Transfer>.fromOpaque(user!).takeUnretainedValue()
                return transfer.readBody(into: buffer!, capacity: size * count)
            }
            _ = sr_easy_setopt_pointer(easy, CURLOPT_READDATA, opaque)
            _ = sr_easy_setopt_seek(easy) { _, _, _ in SR_CURL_SEEKFUNC_CANTSEEK }
        } else {
            _ = sr_easy_setopt_long(easy, CURLOPT_HTTPGET, 1)
        }
        if let auth = request.basicAuth {
            _ = sr_easy_setopt_long(easy, CURLOPT_HTTPAUTH, SR_CURLAUTH_BASIC)
            _ = sr_easy_setopt_string(easy, CURLOPT_USERNAME, auth.user)
            _ = sr_easy_setopt_string(easy, CURLOPT_PASSWORD, auth.password)
        }
        // An empty "Expect:" stops curl from waiting for 100-continue on larger bodies.
        for header in request.headers + ["Expect:"] {
            transfer.headerList = curl_slist_append(transfer.headerList, header)
        }
        _ = sr_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, transfer.headerList)
        _ = sr_easy_setopt_write(easy, CURLOPT_WRITEFUNCTION) { data, size, count, user in
            let transfer = Unmanaged<Transfer>.fromOpaque(user!).takeUnretainedValue()
            if let data { transfer.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: size * count)) }
            return size * count
        }
        _ = sr_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, opaque)
        _ = sr_easy_setopt_write(easy, CURLOPT_HEADERFUNCTION) { data, size, count, user in
            let transfer = Unmanaged<Transfer>.fromOpaque(user!).takeUnretainedValue()
            if let data { transfer.header(line: UnsafeRawBufferPointer(start: data, count: size * count)) }
            return size * count
        }
        _ = sr_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, opaque)
        active[easy] = transfer
        curl_multi_add_handle(multi, easy)
    }

    private func finish(_ easy: UnsafeMutableRawPointer, code: CURLcode) {
        curl_multi_remove_handle(multi, easy)
        guard let transfer = active.removeValue(forKey: easy) else { return }
        let result: Result<HTTPClient.Response, HTTPError>
        if code == CURLE_OK {
            var status = 0, connects = 0
            _ = sr_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            _ = sr_easy_getinfo_long(easy, CURLINFO_NUM_CONNECTS, &connects)
            result = .success(HTTPClient.Response(status: status, headers: transfer.headers, body: transfer.body,
                                                  seconds: transfer.elapsed, newConnections: connects))
        } else {
            result = .failure(HTTPError(code: Int32(code.rawValue), message: String(cString: curl_easy_strerror(code)),
                                        bodySent: transfer.bodyOffset > 0, hasBody: !transfer.requestBody.isEmpty))
        }
        curl_slist_free_all(transfer.headerList)
        curl_easy_reset(easy)
        idle.append(easy)
        transfer.continuation.resume(returning: result)
    }

    private static func milliseconds(_ d: Duration) -> Int {
        Int(d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000)
    }
}

/// Per-transfer state the C callbacks write into.
final class Transfer {
    let continuation: CheckedContinuation<Result<HTTPClient.Response, HTTPError>, Never>
    let started = ContinuousClock.now
    var body: [UInt8] = []
    var headers: [String: String] = [:]
    var headerList: UnsafeMutablePointer<curl_slist>?
    /// A POST's body, handed to libcurl by `readBody`; `bodyOffset` bytes of it so far.
    var requestBody: [UInt8] = []
    var bodyOffset = 0

    init(continuation: CheckedContinuation<Result<HTTPClient.Response, HTTPError>, Never>) {
        self.continuation = continuation
    }

    /// CURLOPT_READFUNCTION: the next part of the body (0 at its end).
    func readBody(into buffer: UnsafeMutablePointer<CChar>, capacity: Int) -> Int {
        let n = min(capacity, requestBody.count - bodyOffset)
        guard n > 0 else { return 0 }
        requestBody.withUnsafeBytes { bytes in
            UnsafeMutableRawPointer(buffer).copyMemory(from: bytes.baseAddress! + bodyOffset, byteCount: n)
        }
        bodyOffset += n
        return n
    }

    var elapsed: Double {
        let d = ContinuousClock.now - started
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// One header line as libcurl hands it over (with its CRLF), read as bytes: a profile showed
    /// Foundation's trimmingCharacters here at ~5% of a run's CPU.
    func header(line: UnsafeRawBufferPointer) {
        let bytes = line.bindMemory(to: UInt8.self)
        if bytes.starts(with: "HTTP/".utf8) { headers.removeAll(); return }  // a new response (100, redirect)
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return }
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0A }
        var start = colon + 1, end = bytes.endIndex
        while start < end, isSpace(bytes[start]) { start += 1 }
        while end > start, isSpace(bytes[end - 1]) { end -= 1 }
        let name = String(decoding: bytes[..<colon].lazy.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
        headers[name] = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
    }
}
