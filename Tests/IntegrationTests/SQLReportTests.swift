import Foundation
import Testing
@testable import SMSRetry

/// Migration 012's report functions, called as a router calls them (SQL, in its own
/// transaction), and held equal to the Swift library case by case. Since migration 015 both are
/// one implementation (the library calls the functions' `_at` forms with its clock and policy,
/// the router's doors call them with now() and sms_retry_policy()): these tests hold the doors
/// equal, and the library's inputs to be the ones that reach the decision.
@Suite struct SQLReportTests {
    func call(_ t: TestDatabase, _ sql: String, _ params: [String?]) async throws -> [String: Any] {
        let text = try await t.query("SELECT (\(sql))::text AS r", params)[0].string("r")!
        return try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
    }

    func failure(_ t: TestDatabase, _ id: Int, _ code: Int?, _ message: String? = "failed") async throws -> [String: Any] {
        try await call(t, "sms_retry_report_failure($1, $2, $3)", [String(id), code.map(String.init), message])
    }

    /// What a user compares between two rows: everything sms-retry wrote, less the instants.
    func written(_ t: TestDatabase, _ id: Int) async throws -> String {
        try await t.query("""
            SELECT jsonb_build_object('state', sms_retry - 'updated_at' - 'history' - 'rev',
                   'history', (SELECT jsonb_agg(e - 'at') FROM jsonb_array_elements(sms_retry -> 'history') AS e),
                   'success', success, 'final_status', final_status, 'retry_count', retry_count, 'max_retries', max_retries,
                   'sid', twilio_message_sid, 'pending', next_retry_at IS NOT NULL,
                   'metadata', sms_metadata, 'error_message', error_message)::text AS w
            FROM sms_usage_logs WHERE id = $1
            """, [String(id)])[0].string("w") ?? "(no row)"
    }

    func install(_ policy: RetryPolicy, _ t: TestDatabase) async throws {
        try await SQLPolicy.install(policy, on: t.db)
    }

    @Test("the built-in policy the functions read is RetryPolicy.default, as sqlJSON renders it")
    func defaultPolicyIsTheLibrarys() async throws {
        let t = try await TestDatabase.make()
        let same = try await t.query("SELECT sms_retry_policy() = $1::jsonb AS same", [RetryPolicy.default.sqlJSON])[0].bool("same")
        #expect(same == true)
        #expect(try await SQLPolicy.matches(RetryPolicy.default, on: t.db))
        #expect(try await SQLPolicy.matches(noJitter, on: t.db) == false, "check would say they disagree")
    }

    @Test("the record function is the library's record statement, byte for byte")
    func writeIsTheRecordStatement() async throws {
        let t = try await TestDatabase.make()
        let body = try await t.query("""
            SELECT prosrc FROM pg_proc WHERE oid = 'sms_retry_write(timestamptz, integer, bigint[], text[], bool[], float8[], text[], integer[], text[], integer[], integer[], text[], text[], integer[], timestamptz[], text[], text[], text[], text[], text[], bool[], text[])'::regprocedure
            """)[0].string("prosrc")
        #expect(body == "\nBEGIN\n    RETURN QUERY WITH w AS (\n" + Queries.outcomesRecord
                + "\n    ) SELECT w.id::bigint, w.retry_count::integer, w.next_retry_epoch FROM w;\nEND\n")
    }

    @Test("sms_retry_decide is RetryPolicy.decide: every listed code, unlisted ones, no code, attempts 0-5, with and without jitter; the library's one-code policy decides as the whole")
    func decideAgrees() async throws {
        let t = try await TestDatabase.make()
        let codes: [Int?] = RetryPolicy.default.codes.keys.sorted() + [30999, 21999, 12345, 20429, 20003, nil]
        for policy in [noJitter, RetryPolicy.default] {
            for code in codes {
                for made in 0...5 {
                    let failure: Failure = code.map { .twilio(code: $0) } ?? .transport
                    let sql = try await call(t, "sms_retry_decide($1::jsonb, $2, $3)", [policy.sqlJSON, code.map(String.init), String(made)])
                    let what = "\(code.map(String.init) ?? "no code") after \(made), jitter \(policy.jitter)"
                    switch policy.decide(failure, attemptsMade: made) {
                    case .giveUp(let reason):
                        #expect(sql["decision"] as? String == "give_up" && sql["reason"] as? String == reason.rawValue, "\(what): \(sql)")
                    case .retry(let after, let rule, let counted):
                        #expect(sql["decision"] as? String == "retry" && sql["strategy"] as? String == rule.strategy.rawValue
                                && sql["counted"] as? Bool == counted, "\(what): \(sql)")
                        let delay = try #require((sql["delay"] as? NSNumber)?.doubleValue)
                        let base = counted ? policy.baseDelay(rule, attemptsMade: made) : policy.transport.baseDelay
                        if policy.jitter == 0 {
                            #expect(delay == after, "\(what)")
                        } else {
                            #expect(delay >= min(base * (1 - policy.jitter), policy.maxDelay) - 1e-6
                                    && delay <= min(base * (1 + policy.jitter), policy.maxDelay) + 1e-6, "\(what): \(delay) for \(base)")
                        }
                        if counted { #expect(sql["max_retries"] as? Int == rule.maxRetries, "\(what)") }
                    }
                    #expect(sql["meaning"] as? String == policy.rule(for: failure).rule.meaning || code == 20429 || code == 20003, "\(what)")
                    if policy.jitter == 0 {   // the library's policy for one code decides as the whole one
                        let one = try await call(t, "sms_retry_decide($1::jsonb, $2, $3)",
                                                 [SQLPolicyText(policy).forCode(code), code.map(String.init), String(made)])
                        #expect(one as NSDictionary == sql as NSDictionary, "\(what): \(one) vs \(sql)")
                    }
                }
            }
        }
    }

    @Test("the SQL report and the Swift library agree, case by case")
    func sqlAndSwiftAgree() async throws {
        let t = try await TestDatabase.make()
        try await install(noJitter, t)
        let store = t.store(noJitter)
        // (what, error code, retry_count already made, direction, success)
        let cases: [(String, Int?, Int, String, Bool)] = [
            ("retryable linear", 30003, 0, "outbound", false), ("retryable exponential, 2 made", 30001, 2, "outbound", false),
            ("exhausted", 30008, 1, "outbound", false), ("permanent", 21211, 0, "outbound", false),
            ("unlisted 3xxxx", 30999, 0, "outbound", false), ("unlisted 2xxxx", 21999, 0, "outbound", false),
            ("outside 2xxxx/3xxxx", 12345, 0, "outbound", false), ("throttled", 20429, 3, "outbound", false),
            ("unknown fate", nil, 0, "outbound", false), ("unknown fate, exhausted", nil, 3, "outbound", false),
            ("inbound", 30003, 0, "inbound", false), ("already sent", 30003, 0, "outbound", true),
            ("another spelling", 30003, 0, "Outbound", false),
        ]
        for (what, code, made, direction, success) in cases {
            let a = try await t.insert(direction: direction, success: success)
            let b = try await t.insert(direction: direction, success: success)
            // Twins to the microsecond: an unknown-fate send's lookup window starts from created_at.
            try await t.query("UPDATE sms_usage_logs SET created_at = (SELECT created_at FROM sms_usage_logs WHERE id = $1) WHERE id = $2",
                              [String(a), String(b)])
            if made > 0 {
                try await t.query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), retry_count = $1 WHERE id IN ($2, $3)",
                                  [String(made), String(a), String(b)])
            }
            let swift = try await store.recordFailure(logID: a, errorCode: code, errorMessage: "failed")
            let sql = try await failure(t, b, code)
            let expected: String = switch swift {
            case .scheduled(let attempt, _): "scheduled \(attempt)"
            case .held(_, let reason): "scheduled \(made + 1) \(reason)"
            case .notRetryable: "closed not_retryable"
            case .exhausted: "closed exhausted"
            case .rowNotFound: "not_found"
            case .notOutbound: "not_outbound"
            case .alreadySent: "already_sent"
            }
            let got = [sql["result"] as? String, (sql["attempt"] as? Int).map(String.init), sql["reason"] as? String]
                .compactMap { $0 }.joined(separator: " ")
            #expect(got == expected, "\(what)")
            #expect(try await written(t, a) == written(t, b), "\(what): the rows differ")
            if case .scheduled(_, let at) = swift, let next = sql["next_retry_at"] as? String {
                let due = try await t.query("SELECT extract(epoch FROM $1::timestamptz)::float8 AS e", [next])[0].double("e")!
                #expect(abs(due - at.timeIntervalSince1970) < 2, "\(what): \(next) vs \(at)")
            }
        }
        #expect(try await failure(t, 999_999, 30003)["result"] as? String == "not_found")
        #expect(try await store.recordFailure(logID: 999_999, errorCode: 30003, errorMessage: nil) == .rowNotFound)
    }

    @Test("the library decides in SQL by its own policy at its own clock, not by the installed policy or the server's time")
    func libraryPolicyAndClock() async throws {
        let t = try await TestDatabase.make()   // the installed policy: the built-in one, jitter 0.1
        var policy = noJitter
        policy.codes[30003] = RetryRule(retryable: true, strategy: .linear, maxRetries: 4, baseDelay: 77, meaning: "a test's own rule")
        let at = Date(timeIntervalSince1970: 1_893_456_000)   // 2030-01-01T00:00:00Z
        let store = t.store(policy, clock: .at(at))
        let id = try await t.insert()
        #expect(try await store.recordFailure(logID: id, errorCode: 30003, errorMessage: "x") == .scheduled(attempt: 1, at: at.addingTimeInterval(77)))
        let row = try await t.query("""
            SELECT extract(epoch FROM next_retry_at)::float8 AS due, max_retries, (sms_retry ->> 'updated_at')::timestamptz = $2::timestamptz AS at_clock
            FROM sms_usage_logs WHERE id = $1
            """, [String(id), JSONText.timestamp(at)])[0]
        #expect(row.double("due") == at.timeIntervalSince1970 + 77 && row.int("max_retries") == 4 && row.bool("at_clock") == true)
        #expect(try await store.recordFailure(logID: try await t.insert(), errorCode: 21211, errorMessage: nil)
                == .notRetryable(code: 21211, meaning: policy.codes[21211]!.meaning))

        // A run's lease that ends after the store's clock: in flight for this store.
        try await t.query("UPDATE sms_usage_logs SET next_retry_at = $2::timestamptz + interval '1 minute', sms_retry = sms_retry_step(sms_retry || '{\"lease\": \"x\"}') WHERE id = $1",
                          [String(id), JSONText.timestamp(at)])
        #expect(try await store.cancel(logID: id, note: "why") == .inFlight)
        #expect(try await store.retryNow(logID: id) == .inFlight)
        let later = t.store(policy, clock: .at(at.addingTimeInterval(120)))
        #expect(try await later.cancel(logID: id, note: "the customer called") == .canceled)
        #expect(try await t.query("SELECT sms_retry ->> 'note' AS note FROM sms_usage_logs WHERE id = $1", [String(id)])[0].string("note")
                == "the customer called")
        #expect(try await later.retryNow(logID: id) == .scheduled(attempt: 1))

        // A delivery status: its time is the clock's, its retry the store's rule.
        let sid = "SM" + String(repeating: "7", count: 32)
        let sent = try await t.insert(success: true, error: nil)
        #expect(try await store.recordSent(logID: sent, messageSID: sid) == .recorded)
        #expect(try await store.recordDeliveryStatus(messageSID: sid, status: "undelivered", errorCode: 30003)
                == .scheduled(logID: sent, attempt: 1, at: at.addingTimeInterval(77)))
        #expect(try await t.query("SELECT sms_retry -> 'delivery' ->> 'at' AS at FROM sms_usage_logs WHERE id = $1", [String(sent)])[0].string("at")
                == JSONText.timestamp(at))
        // The router's door, on a twin, reads the installed policy and the server's time.
        let twin = try await t.insert()
        let door = try await failure(t, twin, 30003)
        let due = try await t.query("SELECT extract(epoch FROM next_retry_at - now())::float8 AS s FROM sms_usage_logs WHERE id = $1", [String(twin)])[0].double("s")!
        #expect(door["attempt"] as? Int == 1 && due > 300 * 0.9 - 5 && due < 300 * 1.1 + 5, "\(door), due in \(due) s")
    }

    @Test("sent, cancel, retry-now and state: the library's answers, in SQL")
    func operatorsAndState() async throws {
        let t = try await TestDatabase.make()
        let id = try await t.insert()
        #expect(try await call(t, "sms_retry_state($1)", [String(id)])["result"] as? String == "none")
        #expect(try await call(t, "sms_retry_cancel($1)", [String(id)])["result"] as? String == "not_pending")
        let scheduled = try await failure(t, id, 30003)
        #expect(scheduled["result"] as? String == "scheduled" && scheduled["attempt"] as? Int == 1)
        let state = try await call(t, "sms_retry_state($1)", [String(id)])
        #expect(state["result"] as? String == "scheduled" && state["max_retries"] as? Int == 2)
        #expect(try await call(t, "sms_retry_cancel($1)", [String(id)]) as NSDictionary == ["result": "closed", "log_id": id, "reason": "canceled"])
        #expect(try await call(t, "sms_retry_state($1)", [String(id)])["reason"] as? String == "canceled")
        let again = try await call(t, "sms_retry_retry_now($1)", [String(id)])
        #expect(again["result"] as? String == "scheduled" && again["attempt"] as? Int == 1)
        #expect(try await t.row(id).double("due_in").map { $0 <= 1 } == true, "due now")

        let closed = try await t.insert()
        #expect(try await failure(t, closed, 21211)["reason"] as? String == "not_retryable")
        #expect(try await call(t, "sms_retry_retry_now($1)", [String(closed)]) as NSDictionary
                == ["result": "refused", "log_id": closed, "reason": "not_retryable"])

        let sent = try await call(t, "sms_retry_report_sent($1, $2)", [String(id), "SM0123456789abcdef0123456789abcdef"])
        #expect(sent["result"] as? String == "sent")
        let row = try await t.row(id)
        #expect(row.bool("success") == true && row.string("final_status") == "sent" && row.bool("pending") == false
                && row.string("twilio_message_sid") == "SM0123456789abcdef0123456789abcdef")
        #expect(try await failure(t, id, 30003)["result"] as? String == "already_sent", "success is never turned false")
        #expect(try await t.row(id).bool("success") == true)
        #expect(try await call(t, "sms_retry_state($1)", [String(id)])["result"] as? String == "sent")
        #expect(try await call(t, "sms_retry_cancel($1)", [String(id)])["result"] as? String == "already_sent")
        let inbound = try await t.insert(direction: "inbound", content: "STOP", success: true, error: nil)
        for f in ["sms_retry_state($1)", "sms_retry_cancel($1)", "sms_retry_retry_now($1)"] {
            #expect(try await call(t, f, [String(inbound)])["result"] as? String == "not_outbound", "\(f)")
            #expect(try await call(t, f, ["424242"])["result"] as? String == "not_found", "\(f)")
        }
        #expect(try await call(t, "sms_retry_report_sent($1, $2)", [String(inbound), "SMx1"])["result"] as? String == "not_outbound")
    }

    @Test("bad input is an error with a SQLSTATE, never a silent no-op")
    func badInput() async throws {
        let t = try await TestDatabase.make()
        let id = try await t.insert()
        for (sql, params, state) in [("sms_retry_report_failure($1, $2, $3)", [nil, "30003", "x"], "22004"),
                                     ("sms_retry_report_failure($1, $2, $3)", [String(id), "-5", "x"], "22023"),
                                     ("sms_retry_report_sent($1, $2)", [String(id), ""], "22023"),
                                     ("sms_retry_report_sent($1, $2)", [String(id), nil], "22023"),
                                     ("sms_retry_cancel($1)", [nil], "22004"), ("sms_retry_retry_now($1)", [nil], "22004"),
                                     ("sms_retry_state($1)", [nil], "22004")] as [(String, [String?], String)] {
            do {
                _ = try await call(t, sql, params)
                Issue.record("\(sql) \(params) was accepted")
            } catch let error as DatabaseError {
                #expect(error.sqlState == state && error.message.contains("sms_retry_"), "\(sql): \(error)")
            }
        }
        #expect(try await t.row(id).string("state") == nil, "nothing was written")
    }

    @Test("a role granted EXECUTE reports, with no privilege on sms-retry's columns; others cannot call")
    func securityDefiner() async throws {
        let t = try await TestDatabase.make()
        let role = "router_" + t.name.suffix(8)
        try await t.query("CREATE ROLE \(role)")
        try await t.query("GRANT SELECT, INSERT ON sms_usage_logs TO \(role)")
        let id = try await t.insert()
        try await t.db.transaction { conn in
            try conn.executeScript("SET LOCAL ROLE \(role)")
            do {
                _ = try conn.execute("SELECT sms_retry_report_failure($1, 30003, 'x')", [String(id)])
                Issue.record("PUBLIC can call the report functions")
            } catch let error as DatabaseError { #expect(error.sqlState == "42501") }
        }
        try await t.query("GRANT EXECUTE ON FUNCTION sms_retry_report_failure(bigint, integer, text) TO \(role)")
        let result = try await t.db.transaction { conn in
            try conn.executeScript("SET LOCAL ROLE \(role)")
            return try conn.execute("SELECT sms_retry_report_failure($1, 30003, 'x') ->> 'result' AS r", [String(id)]).first?.string("r")
        }
        #expect(result == "scheduled")
        // The library's forms take a policy and a time: never the router's to call.
        try await t.db.transaction { conn in
            try conn.executeScript("SET LOCAL ROLE \(role)")
            do {
                _ = try conn.execute("SELECT sms_retry_report_failure_at($1, 30003, 'x', NULL, '{}'::jsonb)", [String(id)])
                Issue.record("a router's role can pass its own policy")
            } catch let error as DatabaseError { #expect(error.sqlState == "42501") }
        }
        let invoker = try await t.query("""
            SELECT count(*) AS n FROM pg_proc WHERE proname IN ('sms_retry_report_failure_at', 'sms_retry_report_sent_at',
                'sms_retry_report_status_at', 'sms_retry_cancel_at', 'sms_retry_retry_now_at') AND NOT prosecdef
                AND NOT has_function_privilege('public', oid, 'EXECUTE')
            """)[0].int("n")
        #expect(invoker == 5, "SECURITY INVOKER, not PUBLIC's")
        try await t.query("DROP OWNED BY \(role)")
        try await t.query("DROP ROLE \(role)")
    }

    /// The default policy without jitter, with 30007 (permanent in the table) as a pumping code too:
    /// the pumping keys reach the SQL side through `sms_retry_policy()`.
    static let pumpingPolicy: RetryPolicy = { var p = noJitter; p.spend.pumpingCodes = [30450, 30007]; return p }()

    /// The fleet's resends today as the claim counts them, and as `sms_retry_spend_daily` shows them.
    func spent(_ t: TestDatabase, _ store: RetryStore) async throws -> [Int] {
        [try await store.spendSoFar().resends,
         try await t.query("SELECT coalesce(sum(resends), 0)::int AS n FROM sms_retry_spend_daily")[0].int("n") ?? -1]
    }

    @Test("a router's report of a pumping code holds the row as a status with it does: uncounted, ≥ 30 min, pumping_held; by the SQL door, the library and the CLI alike (migration 016)")
    func pumpingReportIsHeld() async throws {
        let t = try await TestDatabase.make()
        let policy = Self.pumpingPolicy
        try await install(policy, t)
        let store = t.store(policy)
        // (what, error code, resends already made)
        let cases: [(String, Int, Int)] = [
            ("30450 on the router's send", 30450, 0),
            ("30450 with its rule's attempts used up: held, not closed", 30450, 2),
            ("30450 after 1: the rule's 2400 s outlasts the 1800 s hold", 30450, 1),
            ("a permanent code listed in pumping_codes: held, not closed", 30007, 0),
        ]
        for (what, code, made) in cases {
            let a = try await t.insert(), b = try await t.insert()
            if made > 0 {
                try await t.query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), retry_count = $1 WHERE id IN ($2, $3)",
                                  [String(made), String(a), String(b)])
            }
            let spentBefore = try await spent(t, store)
            let swift = try await store.recordFailure(logID: a, errorCode: code, errorMessage: "blocked")
            let sql = try await failure(t, b, code, "blocked")
            #expect(sql["result"] as? String == "scheduled" && sql["counted"] as? Bool == false
                    && sql["reason"] as? String == "pumping_held" && sql["attempt"] as? Int == made + 1, "\(what): \(sql)")
            guard case .held(_, "pumping_held") = swift else { Issue.record("\(what): \(swift)"); continue }
            #expect(try await written(t, a) == written(t, b), "\(what): the rows differ")
            let hold = max(policy.spend.pumpingHold, policy.baseDelay(policy.rule(for: .twilio(code: code)).rule, attemptsMade: made))
            for id in [a, b] {
                let row = try await t.row(id)
                #expect(row.string("reason") == "pumping_held" && row.string("last_outcome") == "failed"
                        && row.int("retry_count") == made && row.int("max_retries") == 3 && row.bool("success") == false,
                        "\(what): \(row.string("state") ?? "")")
                let dueIn = try #require(row.double("due_in"))
                #expect(abs(dueIn - hold) < 5 && dueIn >= 1790, "\(what): due in \(dueIn) s, not \(hold)")
                #expect(row.string("state")?.contains("SMS pumping protection); held \(Int(hold / 60)) min") == true, "\(what): the note")
            }
            // The router's send is no resend: the budget and the view count nothing, on a row
            // sms-retry already resent too (retry_count > 0, as after the hold's resend).
            #expect(try await spent(t, store) == spentBefore, "\(what): the router's own send is no resend")
        }

        // Any other code still follows its rule: 30003, linear 300 s, counted, up to 2 attempts.
        let other = try await t.insert()
        let answer = try await failure(t, other, 30003)
        #expect(answer["result"] as? String == "scheduled" && answer["counted"] as? Bool == true && answer["reason"] == nil, "\(answer)")
        let row = try await t.row(other)
        #expect(row.string("reason") == nil && row.string("last_outcome") == "failed" && row.int("max_retries") == 2
                && row.double("due_in").map { abs($0 - 300) < 5 } == true, "\(row.string("state") ?? "")")

        // The CLI (`schedule`, the built-in policy: 30450 is a pumping code, jitter 0.1 on rules, none on the hold).
        let cli = try await t.insert()
        let r = try await runCLI(["schedule", "--log-id", String(cli), "--error-code", "30450", "--error-message", "blocked"],
                                 environment: ["DATABASE_URL": t.conninfo])
        #expect(r.code == 0 && r.out.hasPrefix("held log_id=\(cli) reason=pumping_held until=") && r.out.contains("counted=false"), "\(r)")
        let held = try await t.row(cli)
        #expect(held.string("reason") == "pumping_held" && held.int("retry_count") == 0
                && held.double("due_in").map { abs($0 - 1800) < 5 } == true, "\(held.string("state") ?? "")")
    }

    @Test("a delivery status in SQL does what recordDeliveryStatus does, status by status")
    func statusAgrees() async throws {
        let t = try await TestDatabase.make()
        let policy = Self.pumpingPolicy
        try await install(policy, t)
        let store = t.store(policy)
        // (what, the statuses in order, the last one's error code, resends already made)
        let cases: [(String, [String], Int?, Int)] = [
            ("sent", ["sent"], nil, 0), ("delivered", ["sent", "delivered"], nil, 0), ("read", ["delivered", "read"], nil, 0),
            ("undelivered retryable", ["sent", "undelivered"], 30003, 0), ("failed permanent", ["failed"], 21211, 0),
            ("undelivered no code", ["undelivered"], nil, 0), ("canceled", ["canceled"], nil, 0),
            ("older status after delivered", ["delivered", "sent"], nil, 0), ("the same twice", ["undelivered", "undelivered"], 30003, 0),
            ("Twilio's capitals", [" Delivered "], nil, 0),
            ("undelivered 30450: held", ["sent", "undelivered"], 30450, 0),
            ("failed 30450 with its rule's attempts used up: held, not closed", ["failed"], 30450, 2),
            ("30450 after 1: the rule's 2400 s outlasts the 1800 s hold", ["undelivered"], 30450, 1),
            ("a permanent code listed in pumping_codes: held", ["undelivered"], 30007, 0),
            ("30450 twice", ["undelivered", "undelivered"], 30450, 0),
        ]
        for (i, (what, statuses, code, made)) in cases.enumerated() {
            let a = try await t.insert(success: true, error: nil)
            let b = try await t.insert(success: true, error: nil)
            let sidA = "SM" + String(format: "%032x", 2 * i), sidB = "SM" + String(format: "%032x", 2 * i + 1)
            #expect(try await store.recordSent(logID: a, messageSID: sidA) == .recorded)
            #expect(try await call(t, "sms_retry_report_sent($1, $2)", [String(b), sidB])["result"] as? String == "sent")
            if made > 0 {
                try await t.query("UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), retry_count = $1 WHERE id IN ($2, $3)",
                                  [String(made), String(a), String(b)])
            }
            let spentBefore = try await spent(t, store)
            var swift = "", sql = ""
            for status in statuses {
                let last = status == statuses.last
                let outcome = try await store.recordDeliveryStatus(messageSID: sidA, status: status, errorCode: last ? code : nil)
                swift = switch outcome {
                case .delivered: "delivered"
                case .progress(_, let s): "progress \(s)"
                case .scheduled(_, let attempt, _): "scheduled \(attempt)"
                case .closed(_, let reason): "closed \(reason)"
                case .unchanged(_, let current): "unchanged \(current)"
                default: "other"
                }
                let answer = try await call(t, "sms_retry_report_status($1, $2, $3)", [sidB, status, last ? code.map(String.init) : nil])
                sql = [answer["result"] as? String, answer["status"] as? String, (answer["attempt"] as? Int).map(String.init),
                       answer["reason"] as? String, answer["current"] as? String].compactMap { $0 }.joined(separator: " ")
            }
            #expect(sql == swift, "\(what)")
            let strip = "(SELECT jsonb_agg(e - 'at' - 'sid') FROM jsonb_array_elements(sms_retry -> 'history') AS e)"
            let rows = try await t.query("""
                SELECT jsonb_build_object('state', sms_retry - 'updated_at' - 'history' - 'rev' - 'delivery',
                       'delivery', (sms_retry -> 'delivery') - 'at' - 'sid', 'history', \(strip), 'success', success,
                       'final_status', final_status, 'retry_count', retry_count, 'pending', next_retry_at IS NOT NULL,
                       'confirmed', delivery_confirmed_at IS NOT NULL)::text AS w
                FROM sms_usage_logs WHERE id IN ($1, $2) ORDER BY id
                """, [String(a), String(b)]).all.map { $0.string("w") ?? "" }
            #expect(rows.count == 2 && rows[0] == rows[1], "\(what): the rows differ")
            if let code, policy.spend.pumpingCodes.contains(code) {
                // What a user checks: held, uncounted, for the hold or the rule's longer delay.
                let hold = max(policy.spend.pumpingHold, policy.baseDelay(policy.rule(for: .twilio(code: code)).rule, attemptsMade: made))
                for id in [a, b] {
                    let row = try await t.row(id)
                    #expect(row.string("reason") == "pumping_held" && row.string("last_outcome") == "pumping_held"
                            && row.int("retry_count") == made && row.bool("success") == false, "\(what): \(row.string("state") ?? "")")
                    let dueIn = try #require(row.double("due_in"))
                    #expect(abs(dueIn - hold) < 5 && dueIn >= 1790, "\(what): due in \(dueIn) s, not \(hold)")
                }
                // A status about a resend already counted is no new request: the budget and the view count nothing more.
                #expect(try await spent(t, store) == spentBefore, "\(what)")
            }
        }
        #expect(try await call(t, "sms_retry_report_status($1, 'delivered', NULL)", ["SM" + String(repeating: "f", count: 32)])["result"] as? String == "not_found")
        do {
            _ = try await call(t, "sms_retry_report_status($1, 'deliverd', NULL)", ["SM" + String(repeating: "f", count: 32)])
            Issue.record("an unknown status was accepted")
        } catch let error as DatabaseError {
            #expect(error.sqlState == "22023" && error.message.contains("not a Twilio message status"))
        }
    }
}
