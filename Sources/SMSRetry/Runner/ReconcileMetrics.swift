import Foundation

/// `reconcile --metrics-file`: what the last reconcile found, in the Prometheus text format,
/// written as `RunMetrics` writes a run's (temp file + rename). A file of its own beside the
/// run's: the textfile collector reads every `*.prom` of its folder.
public enum ReconcileMetrics {
    public static func text(_ s: Reconciler.Summary, exitCode: Int32, seconds: Double) -> String {
        var out = ""
        func metric(_ name: String, _ help: String, _ values: [(labels: String, value: Double)]) {
            out += RunMetrics.gauge(name, help, values)
        }
        let rows: [(String, Int)] = [("found", s.found), ("not_found", s.notFound), ("swept", s.swept),
                                     ("confirmed", s.confirmed), ("undelivered", s.undelivered), ("failed", s.failed),
                                     ("pending", s.pending), ("unseen", s.unseen)]
        metric("sms_retry_reconcile_rows", "Rows of the last reconcile: unknown-fate sends found or not, and the sweep's by Twilio's word.",
               rows.map { ("{outcome=\"\($0.0)\"}", Double($0.1)) })
        metric("sms_retry_reconcile_requests", "Requests the last reconcile's sweep made to Twilio.", [("", Double(s.requests))])
        metric("sms_retry_reconcile_errors", "Questions Twilio did not answer in the last reconcile.", [("", Double(s.errors))])
        metric("sms_retry_reconcile_duration_seconds", "Wall time of the last reconcile.", [("", seconds)])
        metric("sms_retry_reconcile_exit_code", "Exit code of the last reconcile (0 all done).", [("", Double(exitCode))])
        return out
    }
}
