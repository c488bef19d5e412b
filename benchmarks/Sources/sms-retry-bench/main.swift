import Foundation
import SMSRetry

// Helpers for `make bench`:
//
//   sms-retry-bench http --requests N --concurrency C
//       The raw HTTP ceiling: N messages through the same TwilioClient and libcurl wrapper
//       `sms-retry run` uses, C in flight, no database (TWILIO_* from the environment).
//   sms-retry-bench claim [--explain] [--times N] [--limit L]
//       The runtime claim statement for a batch of L, rolled back N times: p50/p99 (PG* env);
//       with --explain, its EXPLAIN (ANALYZE, BUFFERS).
//   sms-retry-bench writer --until-file PATH
//       A live application's writes: insert a row and update it, again and again, until PATH
//       exists; then prints how many writes were made and the longest one waited (PG* env).
var args = CommandLine.arguments.dropFirst()
if args.first == "claim" {
    // sms-retry-bench claim [--explain] [--times N] [--limit L]: the runtime claim statement
    // (RetryStore.probeClaim, not a copy), rolled back each time; p50/p99 in ms, or its plan.
    var times = 300, limit = 100, explain = false
    var it = args.dropFirst().makeIterator()
    while let a = it.next() {
        switch a {
        case "--times": times = Int(it.next() ?? "") ?? times
        case "--limit": limit = Int(it.next() ?? "") ?? limit
        case "--explain": explain = true
        default: FileHandle.standardError.write(Data("sms-retry-bench claim: unknown argument \(a)\n".utf8)); exit(2)
        }
    }
    let store = RetryStore(database: try await Database.connect(""))
    if explain {
        for line in try await store.probeClaim(limit: limit, explain: true) { print(line) }
        exit(0)
    }
    var ms: [Double] = []
    var claimed = 0
    for _ in 0..<times {
        let t0 = ContinuousClock.now
        claimed = Int(try await store.probeClaim(limit: limit, explain: false).first ?? "0") ?? 0
        let d = ContinuousClock.now - t0
        ms.append(Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
    }
    ms.sort()
    print(String(format: "claims=%d rows=%d p50_ms=%.2f p99_ms=%.2f", times, claimed, ms[ms.count / 2], ms[min(ms.count - 1, Int(Double(ms.count) * 0.99))]))
    exit(0)
}
if args.first == "writer" {
    guard args.count == 3, args.dropFirst().first == "--until-file", let stopFile = args.last else {
        FileHandle.standardError.write(Data("usage: sms-retry-bench writer --until-file PATH\n".utf8))
        exit(2)
    }
    let db = try await Database.connect("")
    var latencies: [Double] = []
    var errors = 0
    func timed(_ sql: String, _ params: [String?]) async -> PGRows? {
        let t0 = ContinuousClock.now
        defer {
            let d = ContinuousClock.now - t0
            latencies.append(Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
        }
        do { return try await db.query(sql, params) } catch { errors += 1; return nil }
    }
    while !FileManager.default.fileExists(atPath: stopFile) {
        let row = await timed("""
            INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content, success, created_at)
            VALUES (1, '+14155550123', 'outbound', 5, 'hello', true, localtimestamp) RETURNING id
            """, [])
        if let id = row?.first?.string("id") {
            _ = await timed("UPDATE sms_usage_logs SET processing_time_ms = 42 WHERE id = $1", [id])
        }
    }
    latencies.sort()
    let p99 = latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * 0.99))]
    print(String(format: "writes=%d errors=%d max_ms=%.1f p99_ms=%.2f", latencies.count, errors, latencies.last ?? 0, p99))
    exit(0)
}
guard args.first == "http" else {
    FileHandle.standardError.write(Data("usage: sms-retry-bench http --requests N --concurrency C | writer --until-file PATH\n".utf8))
    exit(2)
}
args = args.dropFirst()
var requests = 10_000, concurrency = 16
var it = args.makeIterator()
while let a = it.next() {
    switch a {
    case "--requests": requests = Int(it.next() ?? "") ?? requests
    case "--concurrency": concurrency = Int(it.next() ?? "") ?? concurrency
    default: FileHandle.standardError.write(Data("unknown argument \(a)\n".utf8)); exit(2)
    }
}
let config = try TwilioConfig.fromEnvironment()
var options = HTTPClient.Options()
options.maxConnections = max(concurrency, 4)
let http = HTTPClient(options: options)
let client = TwilioClient(config: config, http: http)
let started = ContinuousClock.now
let accepted = await withTaskGroup(of: Bool.self) { group in
    var next = 0
    func add(_ group: inout TaskGroup<Bool>) {
        let n = next
        next += 1
        group.addTask {
            if case .accepted = await client.send(to: "+1555" + String(format: "%07d", n % 10_000_000), body: "bench \(n)") { return true }
            return false
        }
    }
    for _ in 0..<min(concurrency, requests) { add(&group) }
    var ok = 0
    while let result = await group.next() {
        if result { ok += 1 }
        if next < requests { add(&group) }
    }
    return ok
}
let d = ContinuousClock.now - started
let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
print(String(format: "requests=%d accepted=%d seconds=%.2f rate=%.1f", requests, accepted, seconds, Double(requests) / seconds))
http.shutdown()
