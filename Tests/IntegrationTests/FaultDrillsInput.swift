import Foundation
import Testing
@testable import SMSRetry
import TwilioStandIn

/// Bad input of every kind, and secrets kept out of the output.
extension FaultDrills {
    /// The router's own data, row by row: what must never be lost, `error_message` and
    /// `sms_metadata` included (sms-retry writes neither).
    func routerData(_ t: TestDatabase) async throws -> String {
        try await t.query("""
            SELECT count(*)::text || ':' || md5(string_agg(concat_ws('|', id, user_id, phone_number, message_direction,
                       message_length, message_content, processing_time_ms, created_at, error_message,
                       sms_metadata), ',' ORDER BY id)) AS digest
            FROM sms_usage_logs
            """)[0].string("digest") ?? ""
    }

    @Test("Bad input: each gets a clear error, nothing is lost")
    func badInput() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        var env = twilio.environment
        env["DATABASE_URL"] = t.conninfo
        var report: [String] = []
        let store = t.store()

        // Rows a run must close unsent, with the reason, leaving their data as it was.
        let unsendable: [(String, String?, String, String)] = [   // phone, body, direction, reason
            ("+14156070001", nil, "outbound", "empty_body"),
            ("+14156070002", "", "outbound", "empty_body"),
            ("+14156070003", " \n\t ", "outbound", "empty_body"),
            ("+14156070004", String(repeating: "0123456789", count: 1_024), "outbound", "body_too_long"),
            ("+1 (415) 607-0005", "hello", "outbound", "invalid_phone_number"),
            ("4156070006", "hello", "outbound", "invalid_phone_number"),
            ("+1415abc0007", "hello", "outbound", "invalid_phone_number"),
            ("+", "hello", "outbound", "invalid_phone_number"),
            ("+14156070009", "STOP", "inbound", "not_outbound"),
        ]
        var closedIDs: [(Int, String)] = []
        for (phone, body, direction, reason) in unsendable {
            closedIDs.append((try await t.insert(phone: phone, direction: direction, content: body), reason))
        }
        // sms_metadata that is not an object: kept whole, the message still sent.
        var oddMetadata: [Int] = []
        for (i, metadata) in ["[1, 2, 3]", #""a string""#, "42", "null", "true"].enumerated() {
            oddMetadata.append(try await t.insert(phone: "+1415607010\(i)", metadata: metadata))
        }
        let before = try await routerData(t)
        for ((id, _), (_, _, direction, _)) in zip(closedIDs, unsendable) {
            if direction == "outbound" {
                _ = try await store.recordFailure(logID: id, errorCode: 30003, errorMessage: nil)
            } else {
                // Nothing in sms-retry schedules an inbound row; someone's hand-made UPDATE did.
                try await t.query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), next_retry_at = now() WHERE id = $1", [String(id)])
            }
        }
        for id in oddMetadata { _ = try await store.recordFailure(logID: id, errorCode: 30003, errorMessage: nil) }
        try await t.makeDue()
        let run = try await runCLI(["run"], environment: env)
        #expect(run.code == 1, "bad rows make the run exit 1 (needs a look): \(run)")
        #expect(summaryValue(run.out, "skipped") == unsendable.count && summaryValue(run.out, "sent") == oddMetadata.count)
        let sentTo = Set(await twilio.server.received.map(\.to))
        #expect(sentTo == Set((0..<5).map { "+1415607010\($0)" }), "only the sendable rows reached Twilio: \(sentTo)")
        for (id, reason) in closedIDs {
            let row = try await t.row(id)
            #expect(row.string("reason") == reason && row.bool("pending") == false && row.int("retry_count") == 0, "\(id) \(reason)")
        }
        for id in oddMetadata {
            #expect(try await t.row(id).bool("success") == true)
        }
        #expect(try await routerData(t) == before, "every router column and metadata value is as it was")
        #expect(try await t.count("sms_metadata = '[1, 2, 3]'::jsonb") == 1)
        report.append("run over \(unsendable.count) unsendable rows → exit \(run.code), each closed with its reason, \(oddMetadata.count) rows with non-object sms_metadata sent and their value kept")

        // SQL metacharacters and invalid UTF-8 in an error message (bytes only a shell can pass).
        let target = try await t.insert(phone: "+14156070020")
        let nasty = #"x'); DROP TABLE sms_usage_logs; -- \\ $1 %s "#
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/bash")
        shell.arguments = ["-c", #""$0" schedule --log-id "$1" --error-code 30003 --error-message "$2$(printf '\xff\xfe\xc3')""#,
                           Paths.binaries + "/sms-retry", String(target), nasty]
        shell.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        let out = Pipe()
        shell.standardOutput = out
        try shell.run()
        shell.waitUntilExit()
        #expect(shell.terminationStatus == 0)
        let stored = try await t.row(target).string("retry_error") ?? ""
        #expect(stored.hasPrefix(nasty) && stored.hasSuffix("\u{FFFD}"), "kept as text, bytes replaced: \(stored)")
        #expect(try await t.count("true") > 0, "the table is still there")
        report.append("error message with SQL and bytes FF FE C3 → exit \(shell.terminationStatus), stored as text with U+FFFD")

        // An invalid policy file: exit 2 naming the key; nothing claimed.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("drill-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, content, expected) in [("syntax.json", "{\"codes\": {", "policy"),
                                          ("range.json", #"{"codes": {"30003": {"max_retries": -1}}}"#, "max_retries"),
                                          ("type.json", #"{"transport": {"base_delay": "soon"}}"#, "base_delay")] {
            let path = dir.appendingPathComponent(name).path
            try content.write(toFile: path, atomically: true, encoding: .utf8)
            let id = try await t.insert(phone: "+14156070030")
            _ = try await store.recordFailure(logID: id, errorCode: 30003, errorMessage: nil)
            try await t.makeDue()
            let r = try await runCLI(["run", "--policy", path], environment: env)
            #expect(r.code == 2 && r.err.contains(expected) && r.err.contains(name), "\(name): \(r.err)")
            #expect(try await t.row(id).string("state")?.contains("lease") == false, "nothing claimed")
            report.append("policy \(name) → exit \(r.code) \"\(r.err.replacingOccurrences(of: dir.path + "/", with: "").trimmingCharacters(in: .whitespacesAndNewlines))\"")
        }
        let missing = try await runCLI(["run", "--policy", dir.path + "/absent.json"], environment: env)
        #expect(missing.code == 2 && missing.err.contains("cannot read"))

        // An unknown callback status, a SID nobody has, ids that do not exist.
        var r = try await runCLI(["delivery-status", "--sid", "SM" + String(repeating: "a", count: 32), "--status", "teleported"], environment: env)
        #expect(r.code == 2 && r.err.contains("not a Twilio message status"), "\(r)")
        report.append("delivery-status teleported → exit \(r.code)")
        for command in [["schedule", "--error-code", "30003"], ["mark-sent", "--sid", "SM" + String(repeating: "c", count: 32)], ["retry-now"], ["cancel"]] {
            r = try await runCLI(command + ["--log-id", "987654321"], environment: env)
            #expect(r.code == 1 && r.err.contains("no sms_usage_logs row with id 987654321"), "\(command): \(r)")
        }
        report.append("schedule/mark-sent/retry-now/cancel --log-id 987654321 → exit 1 \"no sms_usage_logs row with id 987654321\"")

        // A wrong password: exit 3 with libpq's reason, the password nowhere.
        let password = "WrongPass_S3cret_42"
        try await t.query("DO $$ BEGIN CREATE ROLE drill_pw LOGIN PASSWORD 'right-password'; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        try await PostgresServer.requirePassword(for: "drill_pw")
        let port = ProcessInfo.processInfo.environment["PGPORT"] ?? "5432"
        for conninfo in ["postgresql://drill_pw:\(password)@127.0.0.1:\(port)/\(t.name)",
                         "host=127.0.0.1 port=\(port) user=drill_pw password=\(password) dbname=\(t.name)"] {
            for command in [["run"], ["stats"], ["health"]] {
                r = try await runCLI(command + ["--database-url", conninfo], environment: twilio.environment)
                // health speaks the monitoring-plugin convention: its verdict is on stdout.
                #expect(r.code == 3 && (r.err + r.out).contains("password authentication failed"), "\(command): \(r)")
                #expect(!r.err.contains(password) && !r.out.contains(password))
            }
            r = try await runCLI(["run"], environment: twilio.environment.merging(["DATABASE_URL": conninfo]) { $1 })
            #expect(r.code == 3 && !r.err.contains(password))
        }
        report.append("wrong password (URI and key=value, flag and DATABASE_URL; run, stats, health) → exit 3, password absent")
        _ = r.err.range(of: "FATAL:").map { report[report.count - 1] += " (libpq: \(r.err[$0.lowerBound...].trimmingCharacters(in: .whitespacesAndNewlines)))" }
        #expect(try await routerData(t) != "", "still readable")
        figure("badInput", report.joined(separator: "; "))
    }

    @Test("Secrets: the auth token, phone numbers and bodies appear nowhere in stdout/stderr at info level")
    func secretsStayOut() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        var env = twilio.environment
        env["DATABASE_URL"] = t.conninfo
        let numbers = ["+14159990101", "+14159990102", "+14159990103", "+14159990104", "+14159990105"]
        let body = "PIN 4242 for Jane Q. Example"
        var ids: [Int] = []
        for n in numbers { ids.append(try await t.insert(phone: n, content: body)) }
        await twilio.server.script(numbers[1], [.fail(code: 21211)])          // Twilio's message names the number
        await twilio.server.script(numbers[2], [.serverError(status: 503)])
        await twilio.server.script(numbers[3], [.throttle(retryAfter: 1)])
        var outputs: [(String, String)] = []
        func cli(_ arguments: [String], _ environment: [String: String] = env) async throws {
            let r = try await runCLI(arguments, environment: environment)
            outputs.append((arguments.joined(separator: " "), r.out + r.err))
        }
        for id in ids { try await cli(["schedule", "--log-id", String(id), "--error-code", "30003", "--error-message", "to \(numbers[0])"]) }
        try await t.makeDue()
        try await cli(["run", "--dry-run"])
        try await cli(["run"])
        try await t.makeDue()
        try await cli(["run", "--log-format", "json"])
        var wrong = env
        wrong["TWILIO_AUTH_TOKEN"] = "tok_WRONG_RECOGNISABLE_5a4b"
        try await t.makeDue()
        try await cli(["run"], wrong)
        try await cli(["reconcile"])
        try await cli(["stats"])
        try await cli(["stats", "--json"])
        try await cli(["health"])
        try await cli(["mark-sent", "--log-id", String(ids[4]), "--sid", "SM" + String(repeating: "b", count: 32)])
        try await cli(["delivery-status", "--sid", "SM" + String(repeating: "b", count: 32), "--status", "delivered"])
        try await cli(["cancel", "--log-id", String(ids[2]), "--reason", "drill"])
        let secrets = [StandIn.token, "tok_WRONG_RECOGNISABLE_5a4b", body, "Jane Q. Example"]
            + numbers + numbers.map { String($0.dropFirst()) } + numbers.map { String($0.dropFirst(2)) }
        var leaks: [String] = []
        for (command, text) in outputs {
            for secret in secrets where text.contains(secret) { leaks.append("\(command): \(secret)") }
        }
        #expect(leaks.isEmpty, "\(leaks)")
        let bytes = outputs.map(\.1.utf8.count).reduce(0, +)
        #expect(outputs.contains { $0.1.contains("+14*******") }, "numbers do appear, masked")
        figure("secretsStayOut", "\(outputs.count) commands (run with accepted/21211/503/429/401 answers, text and JSON logs, reconcile, stats, health, schedule, mark-sent, delivery-status, cancel): \(bytes) bytes of stdout+stderr at info, \(secrets.count) secret strings searched, \(leaks.count) found")
    }
}
