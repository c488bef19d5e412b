import Foundation
import Testing
@testable import SMSRetry

@Suite struct OperatorTests {
    @Test func retryNowCancelAndTheirRefusals() async throws {
        let t = try await TestDatabase.make()
        let store = t.store()
        let pending = try await t.insert(phone: "+14155550301")
        _ = try await store.recordFailure(logID: pending, errorCode: 30003, errorMessage: "x")
        #expect(try await store.retryNow(logID: pending) == .scheduled(attempt: 1))
        #expect((try await t.row(pending).double("due_in") ?? 1) <= 0.5)

        #expect(try await store.cancel(logID: pending, note: "customer called") == .canceled)
        var row = try await t.row(pending)
        #expect(row.string("final_status") == "failed" && row.string("reason") == "canceled" && row.bool("pending") == false)
        #expect(row.string("state")?.contains("customer called") == true)
        #expect(try await store.cancel(logID: pending) == .notPending)

        // A canceled (or exhausted) message can be given one more attempt.
        #expect(try await store.retryNow(logID: pending) == .scheduled(attempt: 1))
        row = try await t.row(pending)
        #expect(row.string("final_status") == "unknown" && row.string("reason") == nil && row.int("max_retries")! >= 1)

        let blocked = try await t.insert(phone: "+14155550302")
        _ = try await store.recordFailure(logID: blocked, errorCode: 21610, errorMessage: "STOP")
        #expect(try await store.retryNow(logID: blocked) == .refused(reason: "not_retryable"))
        let sent = try await t.insert(success: true, error: nil)
        #expect(try await store.retryNow(logID: sent) == .alreadySent)
        #expect(try await store.cancel(logID: sent) == .alreadySent)
        let inbound = try await t.insert(direction: "inbound")
        #expect(try await store.retryNow(logID: inbound) == .notOutbound)
        #expect(try await store.retryNow(logID: 987_654) == .rowNotFound)

        // A row a run holds right now is left alone.
        let leased = try await t.insert(phone: "+14155550303")
        _ = try await store.recordFailure(logID: leased, errorCode: 30001, errorMessage: nil)
        _ = try await t.store(clock: t.clockAtDue()).claim(limit: 10, lease: 300, runID: "busy")
        #expect(try await store.cancel(logID: leased) == .inFlight)
        #expect(try await store.retryNow(logID: leased) == .inFlight)
    }

    @Test func expireClosesStaleRetriesAndRunAppliesTheSameAge() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let store = t.store()
        let old = try await t.insert(phone: "+14155550401")
        let fresh = try await t.insert(phone: "+14155550402")
        let oldForRun = try await t.insert(phone: "+14155550403")
        for id in [old, fresh, oldForRun] { _ = try await store.recordFailure(logID: id, errorCode: 30001, errorMessage: nil) }
        try await t.query("UPDATE sms_usage_logs SET created_at = localtimestamp - interval '2 days' WHERE id = ANY($1::bigint[])",
                          [PGArray.literal([old, oldForRun])])
        #expect(try await store.expire(olderThan: 86_400 * 3) == 0)
        // expire closes both stale ones…
        #expect(try await store.expire(olderThan: 86_400) == 2)
        var row = try await t.row(old)
        #expect(row.string("reason") == "expired" && row.string("final_status") == "failed" && row.bool("pending") == false)
        #expect(try await t.query("SELECT count(*) AS n FROM sms_usage_logs")[0].int("n") == 3, "rows are never deleted")
        #expect(try await t.row(fresh).bool("pending") == true)

        // …and run closes an old message it claims instead of sending it (an operator reopened
        // this one, but the message is still two days old).
        _ = try await store.retryNow(logID: oldForRun)
        let summary = try await runOnce(t, twilio, clock: t.clockAtDue()) { $0.maxAge = 86_400 }
        #expect(summary.expired == 1 && summary.sent == 1 && summary.exitCode == 0)
        row = try await t.row(oldForRun)
        #expect(row.string("reason") == "expired" && row.int("retry_count") == 0)
        #expect(await twilio.server.received.map(\.to) == ["+14155550402"])
    }

    @Test func operatorCommands() async throws {
        let t = try await TestDatabase.make()
        let id = try await t.insert()
        _ = try await t.store().recordFailure(logID: id, errorCode: 30003, errorMessage: nil)
        let env = ["DATABASE_URL": t.conninfo]
        var r = try await runCLI(["retry-now", "--log-id", String(id)], environment: env)
        #expect(r.code == 0 && r.out == "due now log_id=\(id) attempt=1\n")
        r = try await runCLI(["cancel", "--log-id", String(id), "--reason", "duplicate"], environment: env)
        #expect(r.code == 0 && r.out == "canceled log_id=\(id)\n")
        r = try await runCLI(["cancel", "--log-id", String(id)], environment: env)
        #expect(r.code == 1 && r.err.contains("has no pending retry"))
        r = try await runCLI(["expire", "--max-age", "1h"], environment: env)
        #expect(r.code == 0 && r.out == "expired=0\n")
        r = try await runCLI(["expire", "--max-age", "soon"], environment: env)
        #expect(r.code == 2)
    }

    @Test func runWritesAMetricsFileThatParsesBack() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let a = try await t.insert(phone: "+14155550501")
        let b = try await t.insert(phone: "not-e164")
        for id in [a, b] { _ = try await t.store().recordFailure(logID: id, errorCode: 30001, errorMessage: nil) }
        try await t.makeDue()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("sms_retry.prom").path
        var env = twilio.environment
        env["DATABASE_URL"] = t.conninfo
        let before = Date().timeIntervalSince1970
        var r = try await runCLI(["run", "--metrics-file", file], environment: env)
        #expect(r.code == 1)   // one row closed unsent
        var metrics = try parse(file)
        #expect(metrics["sms_retry_run_rows{outcome=\"sent\"}"] == 1)
        #expect(metrics["sms_retry_run_rows{outcome=\"skipped\"}"] == 1)
        #expect(metrics["sms_retry_run_claimed_rows"] == 2)
        #expect(metrics["sms_retry_due_backlog"] == 0)
        #expect(metrics["sms_retry_run_exit_code"] == 1)
        #expect(metrics["sms_retry_run_duration_seconds"] != nil)
        let finished = metrics["sms_retry_last_success_timestamp_seconds"] ?? 0
        #expect(finished >= before && finished <= Date().timeIntervalSince1970 + 1, "exit 1 is a run that finished (README's rule)")

        r = try await runCLI(["run", "--metrics-file", file], environment: env)
        #expect(r.code == 0)
        metrics = try parse(file)
        let success = metrics["sms_retry_last_success_timestamp_seconds"] ?? 0
        #expect(success >= finished && success <= Date().timeIntervalSince1970 + 1)
        env["TWILIO_AUTH_TOKEN"] = "wrong"
        let c = try await t.insert(phone: "+14155550503")
        _ = try await t.store().recordFailure(logID: c, errorCode: 30001, errorMessage: nil)
        try await t.makeDue()
        r = try await runCLI(["run", "--metrics-file", file], environment: env)
        #expect(r.code == 2)
        metrics = try parse(file)
        #expect(metrics["sms_retry_run_exit_code"] == 2)
        #expect(metrics["sms_retry_last_success_timestamp_seconds"] == success, "a failed run keeps the last success")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["sms_retry.prom"], "no temp file left")
    }

    /// Prometheus text format: `# HELP`/`# TYPE` lines, then `name{labels} value`.
    func parse(_ path: String) throws -> [String: Double] {
        var out: [String: Double] = [:]
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            #expect(parts.count == 2, "bad line: \(line)")
            out[String(parts[0])] = Double(parts[1])
        }
        return out
    }

    @Test func jsonLogsAreOneObjectPerLineWithMaskedNumbers() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let id = try await t.insert(phone: "+14155550601", content: "Top secret body")
        _ = try await t.store().recordFailure(logID: id, errorCode: 30001, errorMessage: nil)
        try await t.makeDue()
        var env = twilio.environment
        env["DATABASE_URL"] = t.conninfo
        let r = try await runCLI(["run", "--log-format", "json", "--log-level", "debug"], environment: env)
        #expect(r.code == 0)
        let lines = r.err.split(separator: "\n")
        #expect(lines.count >= 3)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["level"] != nil && object?["message"] != nil && object?["label"] != nil)
        }
        let attempt = lines.first { $0.contains("\"sms.outcome\"") }
        #expect(attempt?.contains("\"sms.to\":\"+14*******01\"") == true, "\(attempt ?? "")")
        #expect(attempt?.contains("\"sms.log_id\":\(id)") == true, "a number stays a number: \(attempt ?? "")")
        for secret in [StandIn.token, "Top secret body", "+14155550601"] { #expect(!r.err.contains(secret)) }
    }
}
