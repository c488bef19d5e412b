import Foundation
import Testing
import TwilioStandIn
@testable import SMSRetry

/// A router in Python (Tests/router-python/router.py, SQLAlchemy over psycopg2, the README's
/// example): it logs its rows, sends through the stand-in, and reports through the SQL functions
/// in its own transaction. Each row must end as the Swift library leaves its twin.
@Suite struct PythonRouterTests {
    // The library's and the CLI's twins: the same rows reported through RetryStore and through
    // `sms-retry schedule` / `mark-sent`.
    static let python = "/usr/bin/python3"
    static let script = Paths.root + "/Tests/router-python/router.py"

    func router(_ arguments: [String], _ t: TestDatabase, _ standIn: StandIn) async throws -> [[String: Any]] {
        let env = ProcessInfo.processInfo.environment.merging(standIn.environment.merging(["PGDATABASE": t.name]) { $1 }) { $1 }
        // The child is waited for off Swift's cooperative pool, which the runs beside it need.
        let (status, data, errors) = try await withCheckedThrowingContinuation { (done: CheckedContinuation<(Int32, Data, String), Error>) in
            DispatchQueue.global().async {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: Self.python)
                process.arguments = [Self.script] + arguments
                process.environment = env
                let out = Pipe(), err = Pipe()
                process.standardOutput = out
                process.standardError = err
                do { try process.run() } catch { done.resume(throwing: error); return }
                let data = out.fileHandleForReading.readDataToEndOfFile()
                let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                done.resume(returning: (process.terminationStatus, data, errors))
            }
        }
        #expect(status == 0, "router.py: \(errors)")
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map {
            try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    /// What a user compares between two rows: everything sms-retry wrote, less the instants.
    func written(_ t: TestDatabase, _ id: Int) async throws -> String {
        try await t.query("""
            SELECT jsonb_build_object('state', sms_retry - 'updated_at' - 'history' - 'rev' - 'uncertain' - 'error_message',
                   'history', (SELECT jsonb_agg(e - 'at' - 'error') FROM jsonb_array_elements(sms_retry -> 'history') AS e),
                   'uncertain', (sms_retry -> 'uncertain') - 'since',
                   'success', success, 'final_status', final_status, 'retry_count', retry_count, 'max_retries', max_retries,
                   'pending', next_retry_at IS NOT NULL)::text AS w
            FROM sms_usage_logs WHERE id = $1
            """, [String(id)])[0].string("w") ?? "(no row)"
    }

    @Test("a Python router reports every kind of outcome in SQL, in its transaction; each row ends as the Swift library leaves its twin")
    func everyOutcome() async throws {
        let t = try await TestDatabase.make()
        try await SQLPolicy.install(noJitter, on: t.db)
        let standIn = try await StandIn.start()
        defer { Task { await standIn.stop() } }
        // number → what the stand-in answers, and what the library is told for the twin row
        let cases: [(String, TwilioStandIn.Reply, Int?, Bool)] = [
            ("+14155551001", .accept, nil, true),
            ("+14155551002", .fail(code: 30003), 30003, false),
            ("+14155551003", .fail(code: 21211), 21211, false),
            ("+14155551004", .fail(code: 21610), 21610, false),
            ("+14155551005", .serverError(), nil, false),
            ("+14155551006", .drop(), nil, false),
        ]
        for (number, reply, _, _) in cases { await standIn.server.script(number, [reply]) }
        let lines = try await router(["send"] + cases.map { $0.0 }, t, standIn)
        #expect(lines.count == cases.count)
        let store = t.store(noJitter)
        for ((number, _, code, accepted), line) in zip(cases, lines) {
            let id = line["log_id"] as! Int
            let answer = line["answer"] as! [String: Any]
            let twin = try await t.insert(phone: number, success: false, error: nil, metadata: nil)
            let expected: String
            if accepted {
                let sid = try await t.row(id).string("twilio_message_sid")!
                #expect(try await store.recordSent(logID: twin, messageSID: sid) == .recorded)
                expected = "sent"
            } else {
                expected = switch try await store.recordFailure(logID: twin, errorCode: code, errorMessage: "x") {
                case .scheduled(let attempt, _): "scheduled \(attempt)"
                case .notRetryable: "closed not_retryable"
                case .exhausted: "closed exhausted"
                default: "other"
                }
            }
            let got = [answer["result"] as? String, (answer["attempt"] as? Int).map(String.init), answer["reason"] as? String]
                .compactMap { $0 }.joined(separator: " ")
            #expect(got == expected, "\(number)")
            #expect(try await written(t, id) == written(t, twin), "\(number)")
            // And the CLI a router in another language would have run.
            let cliTwin = try await t.insert(phone: number, success: false, error: nil, metadata: nil)
            let arguments = accepted
                ? ["mark-sent", "--log-id", String(cliTwin), "--sid", try await t.row(id).string("twilio_message_sid")!]
                : ["schedule", "--log-id", String(cliTwin), "--error-code", code.map(String.init) ?? "transport", "--error-message", "x"]
            let cli = try await runCLI(arguments, environment: ["DATABASE_URL": t.conninfo])
            #expect(cli.code == 0, "\(number): \(cli)")
            #expect(try await written(t, id) == written(t, cliTwin), "\(number): the CLI's row differs")
        }
        let committed = try await t.query("SELECT count(*) AS n FROM sms_usage_logs WHERE sms_retry IS NOT NULL")[0].int("n")
        #expect(committed == 3 * cases.count, "every report committed with its row")
    }

    @Test("the router reports while runs claim: every report lands, no row is sent twice")
    func reportingWhileRunsClaim() async throws {
        let t = try await TestDatabase.make()
        let standIn = try await StandIn.start()
        defer { Task { await standIn.stop() } }
        // Failures already due, for the runs to claim, while the router reports new ones.
        for i in 0..<40 {
            let id = try await t.insert(phone: "+1415556\(String(format: "%04d", i))")
            _ = try await t.store().recordFailure(logID: id, errorCode: 30003, errorMessage: "x")
        }
        try await t.makeDue()
        let numbers = (0..<40).map { "+1415557\(String(format: "%04d", $0))" }
        for (i, n) in numbers.enumerated() { await standIn.server.script(n, [i % 2 == 0 ? .fail(code: 30001) : .accept]) }
        async let runs: Void = {
            for _ in 0..<3 { _ = try await runOnce(t, standIn) }
        }()
        let lines = try await router(["send"] + numbers, t, standIn)
        try await runs
        #expect(lines.count == numbers.count)
        let results = lines.map { ($0["answer"] as! [String: Any])["result"] as! String }
        #expect(results.filter { $0 == "scheduled" }.count == 20 && results.filter { $0 == "sent" }.count == 20, "\(results)")
        let resent = try await t.query("SELECT count(*) AS n FROM sms_usage_logs WHERE phone_number LIKE '+1415556%' AND success")[0].int("n")
        #expect(resent == 40, "the runs sent every due row")
        let creates = await standIn.server.received.filter { $0.to.hasPrefix("+1415556") }.count
        #expect(creates == 40, "none twice")
    }
}
