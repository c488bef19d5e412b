import Foundation
import SMSRetry

// The raw HTTP ceiling for `make bench`: creates N messages through the same TwilioClient and
// libcurl wrapper `sms-retry run` uses, C in flight, with no database, and prints requests/s.
//
//   sms-retry-bench http --requests N --concurrency C     (TWILIO_* from the environment)
var args = CommandLine.arguments.dropFirst()
guard args.first == "http" else {
    FileHandle.standardError.write(Data("usage: sms-retry-bench http --requests N --concurrency C\n".utf8))
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
