import Foundation
import Testing
@testable import SMSRetry

/// README's alert examples, evaluated on the metrics file the built binary writes: an alert
/// that pages when runs finish (exit 0 or 1, README's success rule) pages falsely.
@Suite struct MetricsAlertTests {
    /// One alert expression from README, as simple as README writes them:
    /// `[time() - ]metric op number`.
    struct Alert: CustomStringConvertible {
        var minusFromNow: Bool
        var metric: String
        var op: String
        var threshold: Double
        var description: String { "\(minusFromNow ? "time() - " : "")\(metric) \(op) \(MetricsFormat.text(threshold))" }

        init?(_ text: String) {
            var words = text.split(separator: " ").map(String.init)
            minusFromNow = words.count == 5 && words[0] == "time()" && words[1] == "-"
            if minusFromNow { words.removeFirst(2) }
            guard words.count == 3, words[0].hasPrefix("sms_retry_"), ["<", ">", "<=", ">=", "==", "!="].contains(words[1]),
                  let n = Double(words[2]) else { return nil }
            metric = words[0]
            op = words[1]
            threshold = n
        }

        /// Whether it fires on `metrics` at `now`, as Prometheus would: a series the file does
        /// not have gives no result, so no alert.
        func fires(_ metrics: [String: Double], now: Double) -> Bool {
            guard let v = metrics[metric] else { return false }
            let x = minusFromNow ? now - v : v
            switch op {
            case "<": return x < threshold
            case ">": return x > threshold
            case "<=": return x <= threshold
            case ">=": return x >= threshold
            case "==": return x == threshold
            default: return x != threshold
            }
        }
    }

    enum MetricsFormat {
        static func text(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }
    }

    /// README's "Alert on:" bullet, each expression in backticks that names a metric.
    static func readmeAlerts() throws -> [Alert] {
        let readme = try String(contentsOfFile: Paths.root + "/README.md", encoding: .utf8)
        guard let start = readme.range(of: "- Alert on:") else { throw CocoaError(.fileReadCorruptFile) }
        let rest = readme[start.upperBound...]
        let end = rest.range(of: "\n\n")?.lowerBound ?? rest.endIndex
        let spans = rest[..<end].components(separatedBy: "`").enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        return spans.compactMap { Alert($0.replacingOccurrences(of: "\n", with: " ")) }
    }

    func metrics(_ path: String) throws -> [String: Double] {
        var out: [String: Double] = [:]
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            if parts.count == 2 { out[String(parts[0])] = Double(parts[1]) }
        }
        return out
    }

    @Test("README's alerts on the metrics file: silent after an exit 0 and an exit 1 (README's success rule), firing after a Twilio outage")
    func readmesAlertsFollowTheSuccessRule() async throws {
        let alerts = try Self.readmeAlerts()
        let names = Set(alerts.map(\.metric))
        #expect(names.isSuperset(of: ["sms_retry_last_success_timestamp_seconds", "sms_retry_run_outage", "sms_retry_due_backlog"]),
                "README's alerts: \(alerts)")
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("alerts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var env = twilio.environment
        env["DATABASE_URL"] = t.conninfo

        /// A run on one due row whose metrics file held a success of an hour ago (every run
        /// since had rows to look at, or failed): which of README's alerts fire on the file it leaves.
        func firing(phone: String, twilioURL: String? = nil, expectedExit: Int32) async throws -> [String] {
            let file = dir.appendingPathComponent("\(expectedExit).prom").path
            let hourAgo = Date().timeIntervalSince1970 - 3600
            try "sms_retry_last_success_timestamp_seconds \(MetricsFormat.text(hourAgo.rounded()))\n".write(toFile: file, atomically: true, encoding: .utf8)
            let id = try await t.insert(phone: phone)
            _ = try await t.store().recordFailure(logID: id, errorCode: 30001, errorMessage: nil)
            try await t.makeDue()
            var runEnv = env
            if let twilioURL { runEnv["TWILIO_API_BASE_URL"] = twilioURL }
            let r = try await runCLI(["run", "--metrics-file", file], environment: runEnv)
            #expect(r.code == expectedExit, "\(r.out) \(r.err)")
            let m = try metrics(file)
            #expect(m["sms_retry_run_exit_code"] == Double(expectedExit))
            let now = Date().timeIntervalSince1970
            return alerts.filter { $0.fires(m, now: now) }.map(\.description)
        }

        #expect(try await firing(phone: "+14155550701", expectedExit: 0) == [], "all done")
        #expect(try await firing(phone: "not-e164", expectedExit: 1) == [], "exit 1 is a success: rows to look at, not a run that did not finish")
        let closedPort = "http://127.0.0.1:\(try freePort())"
        let outage = try await firing(phone: "+14155550702", twilioURL: closedPort, expectedExit: 4)
        #expect(outage.contains("time() - sms_retry_last_success_timestamp_seconds > 900"), "no run has finished for an hour: \(outage)")
        #expect(outage.contains("sms_retry_run_outage == 1"), "\(outage)")
        #expect(!outage.contains("sms_retry_due_backlog > 1000"), "\(outage)")
    }
}
