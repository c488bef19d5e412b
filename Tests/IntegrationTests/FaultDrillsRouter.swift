import Foundation
import Synchronization
import Testing
@testable import SMSRetry
import TwilioStandIn

/// The router in the room: it keeps writing its own table while sms-retry works on it.
extension FaultDrills {
    /// An ORM router: reads a row, works for a while, then writes back what it read with its change
    /// (`wholeRow`: every column, as Django's save() or a reflected model does; else only the
    /// whole `sms_metadata` value, as SQLAlchemy does for a mutated JSON column). Returns how many
    /// stale writes it made.
    func staleWriter(_ t: TestDatabase, ids: [Int], wholeRow: Bool, until stop: StopFlag, seed: UInt64) async throws -> Int {
        let db = try await Database.connect(t.conninfo)
        var random = SeededRandom(seed: seed)
        var writes = 0
        while !stop.stopped {
            let id = ids[Int(random.next() % UInt64(ids.count))]
            guard let read = try await ORMRow.read(db, id: id) else { continue }
            try await Task.sleep(for: .milliseconds(Int64(20 + random.next() % 300)))
            try await read.write(db, wholeRow: wholeRow, change: writes)
            writes += 1
        }
        return writes
    }

    @Test("an ORM router's stale whole-row and whole-metadata writes during overlapping runs, a kill -9 and reconciles: nothing sent twice, no history lost")
    func ormRouter() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start(latency: .milliseconds(60))
        defer { Task { await twilio.stop() } }
        let numbers = try await t.seedDue(600, prefix: "+1415620")
        let ids = try await t.query("SELECT id FROM sms_usage_logs ORDER BY id").all.compactMap { $0.int("id") }
        // Forced: 10 rows read by the router before any run, written back once they were sent.
        let admin = try await Database.connect(t.conninfo)
        var stale: [ORMRow] = []
        for id in ids.suffix(10) { if let row = try await ORMRow.read(admin, id: id) { stale.append(row) } }
        // Every 7th number fails once with 30003 (a resend later), every 11th is created but
        // answered after --timeout (a doubt, looked up before any resend).
        for (i, number) in numbers.enumerated() {
            if (i + 1) % 11 == 0 { await twilio.server.script(number, [.acceptThenHang(.seconds(3))]) }
            else if (i + 1) % 7 == 0 { await twilio.server.script(number, [.fail(code: 30003)]) }
        }
        let stop = StopFlag()
        let writers = Task {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for w in 0..<6 { group.addTask { try await self.staleWriter(t, ids: ids, wholeRow: w % 2 == 0, until: stop, seed: UInt64(w + 1)) } }
                return try await group.reduce(0, +)
            }
        }
        let policy = FileManager.default.temporaryDirectory.appendingPathComponent("orm-\(UUID().uuidString).json").path
        try #"{"codes": {"30003": {"strategy": "linear", "base_delay_seconds": 1, "max_retries": 3}}, "transport": {"base_delay_seconds": 1}}"#
            .write(toFile: policy, atomically: true, encoding: .utf8)
        let run = ["run", "--database-url", t.conninfo, "--batch-size", "20", "--concurrency", "2", "--timeout", "1",
                   "--lease", "60", "--policy", policy]
        // Overlapping runs, one killed mid-batch, then reconciles and runs until nothing is due.
        let (victim, _) = try await spawnCLI(run, environment: twilio.environment, firstLine: false)
        let overlapping = try await withThrowingTaskGroup(of: Int32.self) { group in
            for _ in 0..<2 { group.addTask { try await runCLI(run, environment: twilio.environment).code } }
            try await Task.sleep(for: .milliseconds(700))
            kill(victim.processIdentifier, SIGKILL)
            victim.waitUntilExit()
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for (i, row) in stale.enumerated() { try await row.write(admin, wholeRow: i % 2 == 0, change: -1 - i) }
        var rounds = 0
        while rounds < 12 {
            rounds += 1
            try await t.expireLeases()
            let reconcile = try await runCLI(["reconcile", "--database-url", t.conninfo], environment: twilio.environment)
            #expect([0, 1].contains(reconcile.code), "reconcile: \(reconcile.code) \(reconcile.err.suffix(300))")
            try await t.makeDue()
            _ = try await runCLI(run, environment: twilio.environment)
            if try await t.count("next_retry_at IS NOT NULL") == 0 { break }
        }
        stop.stop()
        let staleWrites = try await writers.value

        let perNumber = await twilio.acceptedPerNumber()
        let twice = perNumber.values.filter { $0 > 1 }.count
        // Every message Twilio accepted is in its row's history (by SID): a rolled-back history would lose it.
        let accepted = Set(await twilio.server.received.compactMap(\.sid))
        let recorded = Set(try await t.query("""
            SELECT DISTINCT h ->> 'sid' AS sid FROM sms_usage_logs, jsonb_array_elements(sms_retry -> 'history') AS h
            WHERE h ? 'sid'
            """).all.compactMap { $0.string("sid") })
        let lost = accepted.subtracting(recorded).count
        let counted = try await t.query("""
            SELECT count(*) FILTER (WHERE retry_count <> (SELECT count(*) FROM jsonb_array_elements(sms_retry -> 'history') h
                                                          WHERE h ->> 'outcome' IN ('sent', 'rejected', 'transport_error', 'http_error')
                                                            AND NOT h ? 'uncertain')) AS off,
                   count(*) FILTER (WHERE sms_metadata ? 'orm_write') AS touched
            FROM sms_usage_logs
            """)[0]
        #expect(staleWrites > 100, "the router wrote: \(staleWrites)")
        let unsent = Set(numbers).subtracting(perNumber.keys)
        let unsentRows = try await t.query("SELECT phone_number, success, retry_count, final_status, next_retry_at, sms_retry::text AS s FROM sms_usage_logs WHERE phone_number = ANY($1::text[])",
                                           [PGArray.literal(unsent.sorted())]).all.map { "\($0.string("phone_number") ?? "") \($0.string("success") ?? "") \($0.string("final_status") ?? "") \($0.string("s") ?? "")" }
        #expect(unsent.isEmpty, "every row was sent: \(unsentRows.prefix(3))")
        #expect(twice == 0, "numbers sent twice: \(perNumber.filter { $0.value > 1 })")
        #expect(lost == 0, "accepted messages missing from every history: \(accepted.subtracting(recorded).prefix(5))")
        #expect(counted.int("off") == 0, "retry_count = the attempts in the history, on every row")
        #expect(try await t.count("next_retry_at IS NOT NULL OR sms_retry ? 'lease'") == 0, "nothing stuck")
        figure("ormRouter", "600 due rows; 10 rows written back (5 whole rows, 5 whole sms_metadata) from a read taken before any run, after they were sent; 6 router threads made \(staleWrites) more stale writes (whole rows and whole sms_metadata; \(counted.int("touched") ?? 0) rows touched) through 3 overlapping runs (1 killed: \(overlapping)), \(rounds) reconcile + run rounds; \(await twilio.server.requestsTotal) create requests, \(accepted.count) accepted: numbers sent twice \(twice), accepted messages missing from history \(lost), rows whose retry_count differs from their history \(counted.int("off") ?? -1)")
    }

    @Test("the router marks claimed rows delivered and mark-sent confirms others mid-run: not sent, the pending retry ends, its true never flipped")
    func routerMarksClaimedRowsDelivered() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start(latency: .milliseconds(250))
        defer { Task { await twilio.stop() } }
        _ = try await t.seedDue(60, prefix: "+1415621")
        let running = Task { try await runCLI(["run", "--database-url", t.conninfo, "--batch-size", "60", "--concurrency", "2"],
                                              environment: twilio.environment) }
        // Once the batch is claimed: the router's callback marks the last 20 delivered (its own
        // columns: success, and final_status as the original design writes it), mark-sent 5 more.
        let leased = try await t.waitForLeases(60)
        #expect(leased == 60, "the batch was claimed: \(leased)")
        let marked = try await t.query("""
            UPDATE sms_usage_logs SET success = true, final_status = 'delivered', delivery_confirmed_at = now()
            WHERE id IN (SELECT id FROM sms_usage_logs ORDER BY id DESC LIMIT 20) RETURNING id, phone_number
            """).all
        let viaCLI = try await t.query("SELECT id, phone_number FROM sms_usage_logs ORDER BY id DESC OFFSET 20 LIMIT 5").all
        for row in viaCLI {
            let r = try await runCLI(["mark-sent", "--log-id", String(row.int("id")!), "--sid", "SM" + String(repeating: "f", count: 31) + String(row.int("id")! % 10),
                                      "--database-url", t.conninfo])
            #expect(r.code == 0, "\(r)")
        }
        let confirmedAt = Date()
        let result = try await running.value
        let numbers = Set((marked + viaCLI).compactMap { $0.string("phone_number") })
        let sentAfter = await twilio.server.received.filter { numbers.contains($0.to) && $0.at > confirmedAt }.count
        let sentToMarked = await twilio.server.received.filter { numbers.contains($0.to) }.count
        let flipped = try await t.count("id = ANY('\(PGArray.literal((marked + viaCLI).map { $0.int("id") }))'::bigint[]) AND NOT success")
        let ended = try await t.count("sms_retry ->> 'reason' = 'router_confirmed' AND next_retry_at IS NULL")
        #expect(sentAfter == 0, "nothing sent to a confirmed row after its confirmation")
        #expect(flipped == 0, "the router's true is never flipped back")
        #expect(try await t.count("next_retry_at IS NOT NULL") == 0, "no pending retry left")
        #expect(try await t.count("final_status = 'delivered'") >= 20, "the router's delivered stands")
        #expect(result.code == 0 && summaryValue(result.out, "router_confirmed") >= 20 && summaryValue(result.out, "lost") == 0, "\(result)")
        figure("routerMarksClaimedRowsDelivered", "60 claimed rows, 2 sends at a time at 250 ms: the router marked 20 delivered and mark-sent confirmed 5 while the run held them; sends to those 25 after their confirmation \(sentAfter) (before it, in the race: \(sentToMarked)); router trues flipped \(flipped); pending retries ended as router_confirmed \(ended) (the rest by mark-sent); run: \(result.out.trimmingCharacters(in: .whitespacesAndNewlines))")
    }

    @Test("a retention DELETE of claimed rows mid-run: reported as deleted, not lost; the run goes on with the rest")
    func retentionDeleteMidRun() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start(latency: .milliseconds(100))
        defer { Task { await twilio.stop() } }
        _ = try await t.seedDue(120, prefix: "+1415622")
        let running = Task { try await runCLI(["run", "--database-url", t.conninfo, "--batch-size", "120", "--concurrency", "4"],
                                              environment: twilio.environment) }
        _ = try await t.waitForLeases(120)
        let deleted = try await t.query("DELETE FROM sms_usage_logs WHERE id IN (SELECT id FROM sms_usage_logs ORDER BY id DESC LIMIT 40) RETURNING phone_number").all
        let gone = Set(deleted.compactMap { $0.string("phone_number") })
        let deletedAt = Date()
        let result = try await running.value
        let sentAfter = await twilio.server.received.filter { gone.contains($0.to) && $0.at > deletedAt }.count
        #expect(result.code == 0, "rows the router deleted are no failure of the run: \(result)")
        #expect(summaryValue(result.out, "deleted") == 40 && summaryValue(result.out, "lost") == 0, "\(result.out)")
        #expect(sentAfter == 0, "nothing sent for a deleted row after its deletion")
        let left = try await t.count("true"), sent = try await t.count("success AND retry_count = 1")
        #expect(left == 80 && sent == 80, "the rest sent and recorded: \(left) rows, \(sent) sent")
        figure("retentionDeleteMidRun", "120 claimed rows, 40 deleted by the router mid-run: sends for them after the delete \(sentAfter); the other 80 sent and recorded; run: \(result.out.trimmingCharacters(in: .whitespacesAndNewlines))")
    }
}

extension TestDatabase {
    /// Waits (up to 4 s) until `count` rows carry a run's lease; returns how many do.
    func waitForLeases(_ count: Int) async throws -> Int {
        var leased = 0
        for _ in 0..<200 where leased < count {
            try await Task.sleep(for: .milliseconds(20))
            leased = try await self.count("sms_retry ? 'lease'")
        }
        return leased
    }
}

/// A row as an ORM read it: every column it maps, as text, and the whole sms_metadata.
struct ORMRow {
    static let columns = ["user_id", "phone_number", "message_direction", "message_length", "message_content", "success",
                          "processing_time_ms", "error_message", "created_at", "retry_count", "max_retries", "next_retry_at",
                          "twilio_message_sid", "final_status", "delivery_confirmed_at", "sms_retry"]
    var id: Int
    var values: [String?]
    var metadata: String?

    static func read(_ db: Database, id: Int) async throws -> ORMRow? {
        guard let row = try await db.query("SELECT \(columns.joined(separator: ", ")), sms_metadata::text AS sms_metadata FROM sms_usage_logs WHERE id = $1",
                                           [String(id)]).first else { return nil }
        return ORMRow(id: id, values: columns.map { row.string($0) }, metadata: row.string("sms_metadata"))
    }

    /// Writes it back with the router's change (a key of its own in sms_metadata): every column
    /// (`wholeRow`: Django's save(), a reflected model) or the whole sms_metadata value only
    /// (SQLAlchemy's mutated JSON column).
    func write(_ db: Database, wholeRow: Bool, change: Int) async throws {
        let metadata = #"{"orm_write": \#(change)}"#.quotedLiteral
        if wholeRow {
            let sets = Self.columns.enumerated().map { "\($0.element) = $\($0.offset + 3)" }.joined(separator: ", ")
            try await db.query("UPDATE sms_usage_logs SET sms_metadata = $2::jsonb || \(metadata)::jsonb, \(sets) WHERE id = $1",
                               [String(id), self.metadata] + values)
        } else {
            try await db.query("UPDATE sms_usage_logs SET sms_metadata = $2::jsonb || \(metadata)::jsonb WHERE id = $1", [String(id), self.metadata])
        }
    }
}

/// Tells the router's threads to stop.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var stopped: Bool { flag.load(ordering: .relaxed) }
    func stop() { flag.store(true, ordering: .relaxed) }
}

/// A small deterministic generator for the drills (SplitMix64).
struct SeededRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The router's own sends that timed out: Twilio may have created them.
extension FaultDrills {
    @Test("the router's timed-out first sends, reported and adopted: Twilio asked first; created ones (delivered, still queued, beyond the first page) never resent, never-arrived ones sent once")
    func routersTimedOutSends() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        // The router's client gives up after 1 s, as a router with a short read timeout does.
        let (router, routerHTTP) = twilio.client(timeout: .seconds(1))
        defer { routerHTTP.shutdown() }
        let groups = ["delivered", "queued", "busy", "never"]
        var rows: [(group: String, id: Int, phone: String, reported: Bool)] = []
        for (g, group) in groups.enumerated() {
            for i in 0..<12 {
                let phone = "+1415623\(g)\(String(format: "%03d", i))"
                let body = "Your \(group) code is \(g)\(i)"
                await twilio.server.script(phone, [group == "never" ? .drop() : .acceptThenHang(.seconds(3))])
                switch group {
                case "queued": await twilio.server.deliver(phone, [.init("queued")])
                default: await twilio.server.deliver(phone, [.init("sent"), .init("delivered")])
                }
                let started = Date()
                let result = await router.send(to: phone, body: body)
                guard case .transport(let why, _) = result else { Issue.record("the router's send did not time out: \(result)"); return }
                let ms = Int(Date().timeIntervalSince(started) * 1000)
                let id = try await t.query("""
                    INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content,
                                                success, processing_time_ms, error_message, sms_metadata)
                    VALUES (1, $1, 'outbound', $2, $3, false, $4, $5, '{"source": "router"}') RETURNING id
                    """, [phone, String(body.count), body, String(ms), "HTTP request failed: \(why)"])[0].int("id")!
                if group == "busy" {
                    // The number is busy: 60 newer messages push the router's off the first page.
                    for n in 0..<60 { await twilio.server.preload(to: phone, body: "other message \(n)") }
                }
                rows.append((group, id, phone, i % 2 == 0))
            }
        }
        // Half reported as a router reports a timeout (no Twilio code), half left to adoption.
        for row in rows where row.reported {
            let r = try await runCLI(["schedule", "--log-id", String(row.id), "--error-code", "transport", "--database-url", t.conninfo])
            #expect(r.code == 0, "\(r)")
        }
        try await Task.sleep(for: .milliseconds(1200))
        let adopt = try await runCLI(["run", "--adopt-failures", "--adopt-grace", "1", "--database-url", t.conninfo], environment: twilio.environment)
        #expect(summaryValue(adopt.out, "adopted") == 24, "\(adopt)")
        try await t.makeDue()
        let listsBefore = await twilio.server.listRequestsTotal
        let run = try await runCLI(["run", "--database-url", t.conninfo], environment: twilio.environment)
        let lists = await twilio.server.listRequestsTotal - listsBefore
        #expect(run.code == 0 && summaryValue(run.out, "reconciled") == 36 && summaryValue(run.out, "sent") == 12, "\(run)")

        let received = await twilio.server.received
        var report: [String] = []
        for group in groups {
            let mine = rows.filter { $0.group == group }
            var creates = 0, accepted = 0, recorded = 0
            for row in mine {
                let requests = received.filter { $0.to == row.phone }
                creates += requests.count
                accepted += requests.filter { $0.sid != nil }.count
                let state = try await t.query("""
                    SELECT success, retry_count, twilio_message_sid AS sid, next_retry_at IS NULL AS done,
                           sms_retry -> 'history' -> 0 ->> 'sid' AS first_sid, sms_retry -> 'history' -> 0 ->> 'outcome' AS first_outcome
                    FROM sms_usage_logs WHERE id = $1
                    """, [String(row.id)])[0]
                let routerSID = requests.first?.sid
                if group == "never" {
                    #expect(requests.count == 2 && requests.filter { $0.sid != nil }.count == 1, "\(row.phone): sent exactly once")
                    if state.bool("success") == true && state.int("retry_count") == 1 { recorded += 1 }
                } else {
                    #expect(requests.count == 1, "\(group) \(row.phone): the router's message was found, not sent again")
                    if state.bool("success") == true && state.int("retry_count") == 0 && state.string("sid") == routerSID
                        && state.string("first_sid") == routerSID && state.bool("done") == true { recorded += 1 }
                }
            }
            #expect(recorded == mine.count, "\(group): recorded \(recorded) of \(mine.count)")
            report.append("\(group): \(mine.count) messages, \(creates) create requests (\(accepted) created), \(recorded) recorded right")
        }
        figure("routersTimedOutSends", "48 router sends timed out (12 created and delivered, 12 created and still queued with no date_sent, 12 created with 60 newer messages to their number, 12 never arrived), half reported with schedule --error-code transport, half adopted: \(report.joined(separator: "; ")); \(lists) list requests for 48 lookups; run: \(run.out.trimmingCharacters(in: .whitespacesAndNewlines))")
    }
}
