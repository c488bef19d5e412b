import Foundation
import Testing
@testable import SMSRetry
import SMSRetryPostgres

/// What an operator meets at the command line, on the built binary: numbers and durations out
/// of range, bulk commands that show before they change, output a script can read, and the exit
/// codes README's table promises.
@Suite struct OperatorCLITests {
    /// A database no command reaches: validation happens before connecting, so a flag that is
    /// accepted ends in exit 3 (the database), one that is refused in exit 2 before it.
    static let nowhere = ["DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nowhere", "TWILIO_ACCOUNT_SID": StandIn.account,
                          "TWILIO_AUTH_TOKEN": StandIn.token, "TWILIO_FROM_NUMBER": StandIn.from]

    @Test("a negative or out-of-range number or duration is one line: the flag, the value, the range")
    func outOfRangeIsOneLine() async throws {
        let cases: [([String], String)] = [
            (["cancel", "--log-id", "-1"], "--log-id -1 is out of range: 1 to 9223372036854775807"),
            (["retry-now", "--log-id", "0"], "--log-id 0 is out of range: 1 to 9223372036854775807"),
            (["schedule", "--log-id", "-7", "--error-code", "30003"], "--log-id -7 is out of range: 1 to 9223372036854775807"),
            (["schedule", "--log-id", "7", "--error-code", "-30003"], "--error-code -30003 is out of range: 1 to 99999"),
            (["run", "--rate", "-5"], "--rate -5 is out of range: more than 0 to 100000/s (10, 10/s, 600/m, 3600/h)"),
            (["run", "--max-age", "-1h"], "--max-age -1h is out of range: 1m to 3650d (durations: 90s, 15m, 2h, 7d or seconds)"),
            (["run", "--max-runtime", "0"], "--max-runtime 0 is out of range: 1s to 1d"),
            (["run", "--timeout", "0"], "--timeout 0 is out of range: 1s to 2m"),
            (["run", "--lease", "30s"], "--lease 30s is out of range: 1m to 1d"),
            (["run", "--lease", "61", "--timeout", "30s"], "--lease 61 is out of range: at least 40s more than --timeout 30s"),
            (["run", "--concurrency", "0"], "--concurrency 0 is out of range: 1 to 1024"),
            (["run", "--batch-size", "-1"], "--batch-size -1 is out of range: 1 to 10000"),
            (["run", "--breaker-failures", "30"], "--breaker-failures 30 is out of range: 1 to --breaker-window (20)"),
            (["reconcile", "--settle", "-15m"], "--settle -15m is out of range: 1s to 3650d"),
            (["expire", "--max-age", "0"], "--max-age 0 is out of range: 1m to 3650d"),
            (["expire", "--max-age", "59s"], "--max-age 59s is out of range: 1m to 3650d"),
            (["expire", "--max-age", "1e300d"], "--max-age 1e300d is out of range: 1m to 3650d"),
            (["stats", "--period", "-1d"], "--period -1d is out of range: 1m to 3650d"),
            (["stats", "--days", "-3"], "--days -3 is out of range: 1 to 3650"),
            (["migrate", "--down", "--to", "-1"], "--to -1 is out of range: 0 to 999"),
        ]
        for (arguments, message) in cases {
            let r = try await runCLI(arguments, environment: Self.nowhere)
            #expect(r.code == 2, "\(arguments): \(r.err)")
            #expect(r.err.hasPrefix("sms-retry: \(message)"), "\(arguments): \(r.err)")
            #expect(r.err.split(separator: "\n").count == 1 && !r.err.contains("Usage:"), "\(arguments): one line, \(r.err)")
        }
        // health speaks the monitoring-plugin convention: a usage error is UNKNOWN (3).
        let health = try await runCLI(["health", "--warn-delay", "-5m"], environment: Self.nowhere)
        #expect(health.code == 3 && health.err == "sms-retry: --warn-delay -5m is out of range: 0s to 3650d (durations: 90s, 15m, 2h, 7d or seconds)\n", "\(health)")
        // Not a number at all: still one line naming the flag and the value.
        let word = try await runCLI(["cancel", "--log-id", "soon"], environment: Self.nowhere)
        #expect(word.code == 2 && word.err.contains("'soon'") && word.err.contains("--log-id") && word.err.split(separator: "\n").count == 1, "\(word)")
    }

    @Test("every duration flag takes 90s, 15m, 2h, 7d and plain seconds")
    func everyDurationFlagTakesTheSameForms() async throws {
        let accepted: [[String]] = [
            ["run", "--max-runtime", "2m", "--lease", "5m", "--timeout", "20s", "--max-age", "7d", "--adopt-grace", "90s"],
            ["run", "--max-runtime", "110", "--lease", "300", "--timeout", "20"],
            ["run", "--lease", "1h", "--max-age", "2h"],
            ["reconcile", "--settle", "15m", "--window", "1d"],
            ["expire", "--max-age", "90s"],
            ["stats", "--period", "2h"],
        ]
        for arguments in accepted {
            let r = try await runCLI(arguments, environment: Self.nowhere)
            #expect(r.code == 3 && r.err.hasPrefix("sms-retry: cannot reach the database"), "\(arguments) was refused: \(r.err)")
        }
    }

    @Test("a log id past an integer column's range is not found (exit 1), not a database error")
    func aLogIdBeyondTheColumnIsNotFound() async throws {
        let t = try await TestDatabase.make()
        let env = ["DATABASE_URL": t.conninfo]
        for arguments in [["retry-now", "--log-id", "2147483648"], ["cancel", "--log-id", "2147483648"],
                          ["schedule", "--log-id", "2147483648", "--error-code", "30003"],
                          ["mark-sent", "--log-id", "9223372036854775807", "--sid", "SM" + String(repeating: "a", count: 32)]] {
            let r = try await runCLI(arguments, environment: env)
            #expect(r.code == 1 && r.err.hasSuffix("sms-retry: no sms_usage_logs row with id \(arguments[2])\n"), "\(arguments): \(r.err)")
            #expect(!r.err.contains("22003"))
        }
    }

    @Test("expire: --dry-run shows the rows and changes nothing; expire prints each row it closed; an age under a minute is refused")
    func expireShowsBeforeItChanges() async throws {
        let t = try await TestDatabase.make()
        let store = t.store()
        let old1 = try await t.insert(phone: "+14155550501")
        let old2 = try await t.insert(phone: "+14155550502")
        let fresh = try await t.insert(phone: "+14155550503")
        for id in [old1, old2, fresh] { _ = try await store.recordFailure(logID: id, errorCode: 30001, errorMessage: nil) }
        try await t.query("UPDATE sms_usage_logs SET created_at = localtimestamp - interval '2 days' WHERE id = ANY($1::bigint[])",
                          [PGArray.literal([old1, old2])])
        let env = ["DATABASE_URL": t.conninfo]
        let before = try await t.query("SELECT id, sms_retry::text AS state FROM sms_usage_logs ORDER BY id").all.map { $0.string("state") }

        let preview = try await runCLI(["expire", "--max-age", "24h", "--dry-run"], environment: env)
        #expect(preview.code == 0, "\(preview.err)")
        let lines = preview.out.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(preview.out)")
        #expect(lines[0].hasPrefix("would expire log_id=\(old1) created_at=\"") && lines[0].hasSuffix("\" attempts=0/3"), "\(lines[0])")
        #expect(lines[1].hasPrefix("would expire log_id=\(old2) "))
        #expect(lines[2] == "dry-run: 2 pending retries older than 24h would be expired; nothing changed")
        let afterPreview = try await t.query("SELECT id, sms_retry::text AS state FROM sms_usage_logs ORDER BY id").all.map { $0.string("state") }
        #expect(afterPreview == before, "a dry run writes nothing")

        let refused = try await runCLI(["expire", "--max-age", "30s"], environment: env)
        #expect(refused.code == 2 && refused.out.isEmpty && refused.err.hasPrefix("sms-retry: --max-age 30s is out of range: 1m to 3650d"), "\(refused)")
        #expect(try await t.row(fresh).bool("pending") == true, "a refused expire changes nothing")

        let done = try await runCLI(["expire", "--max-age", "24h"], environment: env)
        #expect(done.code == 0, "\(done.err)")
        let closed = done.out.split(separator: "\n").map(String.init)
        #expect(closed.count == 3 && closed[0].hasPrefix("expired log_id=\(old1) created_at=") && closed[1].hasPrefix("expired log_id=\(old2) ")
                && closed[2] == "expired=2", "\(done.out)")
        for id in [old1, old2] { #expect(try await t.row(id).string("reason") == "expired") }
        #expect(try await t.row(fresh).bool("pending") == true)
        let again = try await runCLI(["expire", "--max-age", "24h", "--dry-run"], environment: env)
        #expect(again.out == "dry-run: 0 pending retries older than 24h would be expired; nothing changed\n")
    }

    @Test("JSON logs keep numbers as numbers")
    func jsonLogsKeepNumbers() async throws {
        let t = try await TestDatabase.make()
        let id = try await t.insert(phone: "+14155550601")
        let r = try await runCLI(["schedule", "--log-id", String(id), "--error-code", "30001", "--log-format", "json"],
                                 environment: ["DATABASE_URL": t.conninfo])
        #expect(r.code == 0, "\(r.err)")
        let line = try #require(r.err.split(separator: "\n").first { $0.contains("retry scheduled") })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["sms.log_id"] as? Int == id, "\(line)")
        #expect(object["sms.error_code"] as? Int == 30001, "\(line)")
        #expect(object["sms.attempt"] as? Int == 1, "\(line)")
        #expect(object["message"] as? String == "retry scheduled")
        // In the text itself: a number, not a string holding one.
        #expect(line.contains("\"sms.log_id\":\(id)") && !line.contains("\"sms.log_id\":\"\(id)\""), "\(line)")
    }

    @Test("check prints every line after a failed Twilio line: the sender says why it was not checked, the callbacks are checked")
    func checkPrintsEveryLine() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        var env = twilio.environment
        env["DATABASE_URL"] = t.conninfo
        env["TWILIO_AUTH_TOKEN"] = "wrong-token-0000"
        env["TWILIO_STATUS_CALLBACK_URL"] = "http://sms.example.com/twilio/status"
        let r = try await runCLI(["check", "--callbacks"], environment: env)
        #expect(r.code == 2)
        let names = r.out.split(separator: "\n").compactMap { line in
            line.split(separator: ":", maxSplits: 1).first.map { $0.split(separator: " ").last.map(String.init) ?? "" }
        }
        #expect(Array(names.suffix(3)) == ["twilio", "sender", "callbacks"], "\(r.out)")
        #expect(r.out.contains("problem  twilio: Twilio refused the credentials"), "\(r.out)")
        #expect(r.out.contains("warning  sender: \(StandIn.from) not checked: Twilio did not answer for the account"), "\(r.out)")
        #expect(r.out.contains("warning  callbacks: TWILIO_STATUS_CALLBACK_URL http://sms.example.com/twilio/status is not HTTPS"), "\(r.out)")
    }

    // MARK: README's exit codes, run

    /// README's "Commands and exit codes" table: each command's exit-code cell as (code, words).
    static func documentedExitCodes() throws -> [String: [(code: Int32, words: String)]] {
        let readme = try String(contentsOfFile: Paths.root + "/README.md", encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "### Commands and exit codes").dropFirst().first)
        var table: [String: [(Int32, String)]] = [:]
        for line in section.components(separatedBy: "\n### ")[0].split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 4, let command = cells[1].dropFirst().split(separator: " ").first.map({ String($0.filter { $0 != "`" }) }) else { continue }
            guard table[command] == nil else { continue }   // `run … --adopt-failures` says "as run"
            // "0 …; 1 …; 2 … (20003; no attempt counted …)": a piece that does not start with a
            // code belongs to the one before it.
            var segments: [(Int32, String)] = []
            for piece in cells[cells.count - 2].split(separator: ";") {
                let words = piece.trimmingCharacters(in: .whitespaces)
                if let code = words.split(separator: " ").first.flatMap({ Int32($0) }) {
                    segments.append((code, words))
                } else if !segments.isEmpty {
                    segments[segments.count - 1].1 += "; " + words
                }
            }
            table[command] = segments
        }
        return table
    }

    @Test("each command's documented failure cases exit as README's table says")
    func exitCodesAsReadmeSays() async throws {
        let table = try Self.documentedExitCodes()
        let readme = try String(contentsOfFile: Paths.root + "/README.md", encoding: .utf8)
        #expect(readme.contains("Usage and configuration errors\nexit 2 (3 for `health`)") || readme.contains("Usage and configuration errors exit 2 (3 for `health`)"))
        let unmigrated = try await TestDatabase.make(migrated: false)
        try await unmigrated.query("CREATE TABLE sms_usage_logs (id serial PRIMARY KEY, phone_number text, message_direction text, message_content text, success boolean, error_message text, sms_metadata jsonb, processing_time_ms int, created_at timestamp DEFAULT now())")
        let t = try await TestDatabase.make()
        let db = ["DATABASE_URL": t.conninfo]
        let badPolicy = NSTemporaryDirectory() + "/operator-bad-policy-\(UUID().uuidString).json"
        try Data("{\"jitter\" 0.1}".utf8).write(to: URL(fileURLWithPath: badPolicy))
        defer { try? FileManager.default.removeItem(atPath: badPolicy) }
        let sid = "SM" + String(repeating: "0", count: 32)
        // (arguments, environment, words of README's cell that name the case)
        let cases: [([String], [String: String], String)] = [
            (["stats"], ["DATABASE_URL": unmigrated.conninfo], "views missing"),
            (["stats"], Self.nowhere, "database unreachable"),
            (["stats", "--period", "-1h"], db, "usage"),
            (["health"], Self.nowhere, "database unreachable"),
            (["health", "--warn-backlog", "-1"], db, "usage error"),
            (["health"], ["DATABASE_URL": unmigrated.conninfo], "views missing"),
            (["schedule", "--log-id", "999999", "--error-code", "30003"], db, "no such row"),
            (["mark-sent", "--log-id", "999999", "--sid", sid], db, "no such row"),
            (["retry-now", "--log-id", "999999"], db, "no row"),
            (["cancel", "--log-id", "999999"], db, "no row"),
            (["expire", "--max-age", "30s"], db, "an age under 1m"),
            (["expire"], ["DATABASE_URL": unmigrated.conninfo], "the migrations not applied"),
            (["delivery-status", "--sid", sid, "--status", "delivered"], db, "no row has this SID"),
            (["delivery-status", "--sid", sid, "--status", "teleported"], db, "unknown status"),
            (["run"], Self.nowhere, "database unreachable"),
            (["run"], Self.nowhere.merging(["DATABASE_URL": unmigrated.conninfo]) { $1 }, "a database the migrations were not applied to"),
            (["reconcile"], Self.nowhere, "database unreachable"),
            (["serve-callbacks", "--public-url", "https://sms.example.com/s"], db, "usage/configuration"),
            (["migrate", "--to", "3"], db, "usage"),
            (["check"], Self.nowhere, "a problem"),
            (["policy", "--policy", badPolicy], [:], "bad file"),
        ]
        var checked: Set<String> = []
        for (arguments, environment, words) in cases {
            let command = arguments[0]
            let cell = try #require(table[command], "\(command) is not in README's table")
            let documented = try #require(cell.first { $0.words.localizedCaseInsensitiveContains(words) },
                                          "README's cell for \(command) does not name '\(words)': \(cell.map(\.words))")
            let r = try await runCLI(arguments, environment: environment)
            #expect(r.code == documented.code, "\(arguments.joined(separator: " ")): README says \(documented.code) (\(documented.words)), the binary exits \(r.code): \(r.err)")
            checked.insert(command)
        }
        // Every command in the table has at least one failure case run.
        #expect(Set(table.keys).subtracting(checked).isEmpty, "not run: \(Set(table.keys).subtracting(checked).sorted())")
    }
}
