import Foundation
import TwilioStandIn

// A Twilio stand-in for the demo and the benchmarks: listens on 127.0.0.1, prints its base URL
// on the first line of stdout, and runs until stopped.
//
//   twilio-standin [--port N] [--latency-ms N] [--fail-to NUMBER:CODE ...]
//
// Credentials come from TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN (and TWILIO_API_KEY_SID /
// TWILIO_API_KEY_SECRET when set), so the same environment drives both sides.
let env = ProcessInfo.processInfo.environment
var port: UInt16 = 0
var latencyMS = 0
var failures: [(String, Int)] = []
var args = CommandLine.arguments.dropFirst().makeIterator()
while let arg = args.next() {
    switch arg {
    case "--port": port = UInt16(args.next() ?? "") ?? 0
    case "--latency-ms": latencyMS = Int(args.next() ?? "") ?? 0
    case "--fail-to":
        let spec = (args.next() ?? "").split(separator: ":")
        if spec.count == 2, let code = Int(spec[1]) { failures.append((String(spec[0]), code)) }
    default:
        FileHandle.standardError.write(Data("twilio-standin: unknown argument \(arg)\n".utf8))
        exit(2)
    }
}
guard let account = env["TWILIO_ACCOUNT_SID"], let token = env["TWILIO_AUTH_TOKEN"] else {
    FileHandle.standardError.write(Data("twilio-standin: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN\n".utf8))
    exit(2)
}
var credentials = [account: token]
if let key = env["TWILIO_API_KEY_SID"], let secret = env["TWILIO_API_KEY_SECRET"] { credentials[key] = secret }
let standIn = TwilioStandIn(accountSID: account, credentials: credentials, latency: .milliseconds(latencyMS))
// The configured sender is on the stand-in's account, as `sms-retry check` expects of a real one.
if let sender = env["TWILIO_MESSAGING_SERVICE_SID"] ?? env["TWILIO_FROM_NUMBER"] { await standIn.setOwnedSenders([sender]) }
for (number, code) in failures { await standIn.script(number, Array(repeating: .fail(code: code), count: 1000)) }
let url = try await standIn.start(port: port)
FileHandle.standardOutput.write(Data((url + "\n").utf8))
while true { try await Task.sleep(for: .seconds(3600)) }
