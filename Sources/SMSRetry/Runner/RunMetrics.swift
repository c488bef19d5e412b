import Foundation

/// The Prometheus text format for node_exporter's textfile collector, written by
/// `run --metrics-file`: a temp file in the same folder, then a rename, so the collector never
/// reads half a file.
public enum RunMetrics {
    /// Whether a run that exits `exitCode` counts as a success, README's rule: 0 (all done) and
    /// 1 (done, some rows need a look, each logged) are; 2, 3 and 4 (configuration, database,
    /// Twilio outage) are not. `sms_retry_last_success_timestamp_seconds` follows it, so the
    /// alert on its age pages only when no run has finished, not when a run has rows to look at.
    public static func isSuccess(exitCode: Int32) -> Bool { exitCode == 0 || exitCode == 1 }

    /// The last-success time to write after a run that exited `exitCode` at `now`: `now` for a
    /// success, else the previous file's (nil when there is none).
    public static func lastSuccess(exitCode: Int32, now: Double, previous: () -> Double?) -> Double? {
        isSuccess(exitCode: exitCode) ? now : previous()
    }

    /// The file's text. `lastSuccess` is carried over from the previous file when this run failed.
    public static func text(_ s: RunSummary, exitCode: Int32, due: Int?, lastSuccess: Double?) -> String {
        var out = ""
        func metric(_ name: String, _ help: String, _ values: [(labels: String, value: Double)]) {
            out += gauge(name, help, values)
        }
        let outcomes: [(String, Int)] = [("sent", s.sent), ("rescheduled", s.rescheduled), ("failed", s.failed),
                                         ("skipped", s.skipped), ("expired", s.expired), ("reconciled", s.reconciled),
                                         ("opted_out", s.optedOut), ("released", s.released), ("sender_blocked", s.senderBlocked), ("lost", s.lost)]
        metric("sms_retry_run_rows", "Rows of the last run by outcome.",
               outcomes.map { ("{outcome=\"\($0.0)\"}", Double($0.1)) })
        let adoption: [(String, Int)] = [("scheduled", s.adoption.scheduled), ("expired", s.adoption.expired),
                                          ("not_retryable", s.adoption.notRetryable), ("exhausted", s.adoption.exhausted)]
        metric("sms_retry_run_adopted_rows", "Unreported failures the last run adopted (--adopt-failures), by what became of them.",
               adoption.map { ("{result=\"\($0.0)\"}", Double($0.1)) })
        let held: [(String, Int)] = [("country_not_allowed", s.countryNotAllowed), ("budget_held", s.budgetHeld),
                                      ("prefix_held", s.prefixHeld), ("pumping_held", s.pumpingHeld)]
        metric("sms_retry_run_spend_guarded_rows", "Resends the spend guard stopped in the last run, by reason: closed for the recipient's country, held for the daily budget, the range's hourly cap, or SMS pumping protection.",
               held.map { ("{reason=\"\($0.0)\"}", Double($0.1)) })
        metric("sms_retry_run_claimed_rows", "Rows claimed by the last run.", [("", Double(s.claimed))])
        metric("sms_retry_run_throttled_responses", "429 answers Twilio gave the last run.", [("", Double(s.throttled))])
        metric("sms_retry_run_unreachable_requests", "Requests of the last run that never reached Twilio (refused, DNS, TLS).",
               [("", Double(s.unreachable))])
        metric("sms_retry_run_outage", "1 when the last run stopped because Twilio looked down (exit 4).",
               [("", s.providerOutage ? 1 : 0)])
        metric("sms_retry_run_duration_seconds", "Wall time of the last run.", [("", s.seconds)])
        metric("sms_retry_run_exit_code", "Exit code of the last run (0 all done).", [("", Double(exitCode))])
        if let due { metric("sms_retry_due_backlog", "Rows due for a retry when the last run ended.", [("", Double(due))]) }
        if let lastSuccess {
            metric("sms_retry_last_success_timestamp_seconds", "Unix time of the last run that finished (exit 0, or 1: done with rows that need a look).", [("", lastSuccess)])
        }
        return out
    }

    /// Reads `sms_retry_last_success_timestamp_seconds` from a previous file, if any.
    public static func previousLastSuccess(at path: String) -> Double? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("sms_retry_last_success_timestamp_seconds ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    /// One gauge in the Prometheus text format: its HELP and TYPE lines, then a line per value.
    static func gauge(_ name: String, _ help: String, _ values: [(labels: String, value: Double)]) -> String {
        "# HELP \(name) \(help)\n# TYPE \(name) gauge\n" + values.map { "\(name)\($0.labels) \(format($0.value))\n" }.joined()
    }

    /// Writes `text` to `path` atomically (temp file in the same folder + rename).
    public static func write(_ text: String, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let temp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
        try Data(text.utf8).write(to: temp)
        if rename(temp.path, url.path) != 0 {
            try? FileManager.default.removeItem(at: temp)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
    }

    static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}
