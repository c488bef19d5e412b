import Foundation
import Logging

/// The library door for the router (`import SMSRetry`): report a send's result on its
/// `sms_usage_logs` row, and let sms-retry decide whether and when to try again.
///
///     let store = try await RetryStore.open()            // PG* environment, as psql
///     switch try await store.recordFailure(logID: id, errorCode: 30003, errorMessage: text) {
///     case .scheduled(let attempt, let at): …
///     case .held(let until, _): …                       // a pumping code: not counted
///     case .notRetryable, .exhausted, .rowNotFound, .notOutbound, .alreadySent: …
///     }
public final class RetryStore: Sendable {
    public let database: Database
    public let policy: RetryPolicy
    /// The time every statement and decision reads (a test's fixed instant, or the system's).
    public let clock: SMSRetryClock
    let logger: Logger
    /// `policy.sqlJSON` in pieces, made once: what the report functions decide by (migration 015).
    let policySQL: SQLPolicyText
    /// How many attempts `sms_retry.history` keeps (the newest).
    public static let historyLimit = 20

    public init(database: Database, policy: RetryPolicy = .default,
                logger: Logger = Logger(label: "sms-retry"), clock: SMSRetryClock = .system) {
        self.database = database
        self.policy = policy
        self.logger = logger
        self.clock = clock
        self.policySQL = SQLPolicyText(policy)
    }

    /// Opens a connection with a libpq conninfo (`""` = the `PG*` environment, `.pgpass`,
    /// service files) or a `postgresql://` URI.
    public static func open(conninfo: String = "", policy: RetryPolicy = .default,
                            logger: Logger = Logger(label: "sms-retry")) async throws -> RetryStore {
        RetryStore(database: try await Database.connect(conninfo), policy: policy, logger: logger)
    }

    /// What `recordFailure` decided.
    public enum FailureOutcome: Sendable, Equatable {
        /// Resend number `attempt` is due at `at`.
        case scheduled(attempt: Int, at: Date)
        /// Held until `until`, the attempt not counted: the code is one of the policy's
        /// `pumping_codes` (Twilio's SMS pumping protection, 30450); `reason` is `pumping_held`.
        case held(until: Date, reason: String)
        /// Closed: this code is never retried (`final_status = 'failed'`).
        case notRetryable(code: Int?, meaning: String)
        /// Closed: no attempts left after `attempts` resends.
        case exhausted(attempts: Int)
        case rowNotFound
        /// The row is not an outbound message: nothing to resend.
        case notOutbound
        /// The row says the message was sent (`success` is true: the router's word, `mark-sent`
        /// or a delivered callback): nothing was changed and nothing will be resent.
        case alreadySent
    }

    /// How far before the router's logged send a lookup for it starts: clocks differ, and a
    /// router may log the row before or after its request.
    static let routerSendSlack: TimeInterval = 30

    /// Reports that the send logged as row `logID` failed with Twilio `errorCode` (`nil` for an
    /// HTTP 5xx, a timeout or a connection error: a send whose fate is unknown, which Twilio is
    /// asked about before the first resend). Schedules a retry by the policy, or closes the row.
    /// A row whose `success` is true is left as it is (`alreadySent`).
    /// Decided in SQL (`sms_retry_report_failure_at`, migration 015), by this store's policy at
    /// its clock: one implementation with `sms_retry_report_failure`.
    public func recordFailure(logID: Int, errorCode: Int?, errorMessage: String?) async throws -> FailureOutcome {
        let answer = try await report(ReportFailure(logID: logID, errorCode: errorCode, errorMessage: errorMessage, now: clock.statementNow,
                                                       policy: policySQL.forCode(errorCode)))
        let result: FailureOutcome = switch answer.result {
        case "scheduled" where answer.reason != nil: .held(until: answer.nextRetryAt ?? clock.wallNow(), reason: answer.reason ?? "")
        case "scheduled": .scheduled(attempt: answer.attempt ?? 1, at: answer.nextRetryAt ?? clock.wallNow())
        case "closed" where answer.reason == "exhausted": .exhausted(attempts: answer.attempts ?? 0)
        case "closed": .notRetryable(code: errorCode, meaning: answer.meaning ?? "")
        case "not_found": .rowNotFound
        case "not_outbound": .notOutbound
        case "already_sent": .alreadySent
        default: throw answer.unexpected(ReportFailure.name)
        }
        let metadata: Logger.Metadata = ["sms.log_id": "\(logID)", "sms.error_code": "\(errorCode.map(String.init) ?? "transport")"]
        switch result {
        case .scheduled(let attempt, _):
            logger.info("retry scheduled", metadata: metadata.merging(["sms.attempt": "\(attempt)"]) { $1 })
        case .held(_, let reason):
            logger.info("retry held, not counted", metadata: metadata.merging(["sms.reason": "\(reason)"]) { $1 })
        case .notRetryable, .exhausted:
            logger.info("failure recorded; row closed", metadata: metadata)
        case .rowNotFound:
            logger.warning("failure reported for a row that does not exist", metadata: metadata)
        case .notOutbound:
            logger.warning("failure reported for a row that is not outbound; ignored", metadata: metadata)
        case .alreadySent:
            logger.warning("failure reported for a row whose success is true; nothing changed", metadata: metadata)
        }
        return result
    }

    /// A router's send with no Twilio code may have created the message: the row carries that
    /// doubt (`sms_retry.uncertain`, the router's, uncounted) so Twilio is asked before the
    /// first resend. Nil for a failure with a code (Twilio answered: nothing was created).
    static func routerDoubt(_ failure: Failure, sentEpoch: Double?) -> Outcome.Uncertainty? {
        guard case .transport = failure, let sentEpoch else { return nil }
        return .since(Date(timeIntervalSince1970: sentEpoch - routerSendSlack), counted: false, router: true)
    }

    public enum SentOutcome: Sendable, Equatable {
        case recorded
        case rowNotFound
        case notOutbound
    }

    /// Reports that the send logged as row `logID` was accepted by Twilio as `messageSID`
    /// (`sms_retry_report_sent_at`, migration 015).
    public func recordSent(logID: Int, messageSID: String) async throws -> SentOutcome {
        let answer = try await report(ReportSent(logID: logID, messageSID: messageSID, now: clock.statementNow))
        switch answer.result {
        case "sent": return .recorded
        case "not_found": return .rowNotFound
        case "not_outbound": return .notOutbound
        default: throw answer.unexpected(ReportSent.name)
        }
    }

    /// What a report function of migration 015 answered (its jsonb's keys).
    struct ReportAnswer: Sendable {
        var result: String
        var logID: Int?
        var attempt: Int?
        var attempts: Int?
        var reason: String?
        var meaning: String?
        var status: String?
        var current: String?
        var nextRetryAt: Date?

        /// An answer this build does not know: the installed functions are not this build's.
        func unexpected(_ statement: String) -> DatabaseError {
            DatabaseError(kind: .query, message: "\(statement) answered '\(result)', which this sms-retry does not know: run sms-retry migrate",
                          statement: statement)
        }
    }

    /// Runs one report function (one statement, committed when it returns).
    func report<S: TypedStatement>(_ statement: S) async throws -> ReportAnswer where S.Row == ReportAnswer {
        try await database.run(statement).first ?? ReportAnswer(result: "")
    }

    // MARK: - What a run uses

    struct ClaimedRow: Sendable {
        var id: Int
        var phoneNumber: String
        var direction: String
        var content: String?
        var retryCount: Int
        var maxRetries: Int
        var leaseUntil: String
        var previousLease: String?
        /// When set, an earlier send may have created a message Twilio has not told us about
        /// (a dead run's lease, a timeout, a reset, a 5xx): Twilio must be asked before resending.
        var doubt: Doubt?
        /// The SID of the message last known for this row (excluded from the search).
        var sid: String?
        /// Seconds since the router created the row (nil when created_at is NULL).
        var ageSeconds: Double?
        /// The number's latest opt-out event ('STOP'-family keyword or '21610') when it has not
        /// opted in again since: the row must not be sent.
        var optOut: String? = nil
        /// The `sms_metadata` values at the policy's `MessageKeys`, as JSON text, in its order.
        var original: [String?] = []
        /// What is left of the message's maximum age by its kind (set when triage lets it go).
        var secondsLeft: Double? = nil
        /// SMS segments of the body (`sms_retry_segments`, migration 005): what a resend costs.
        var segments = 1
        /// The spend guard's verdict made at the claim, when the fleet's spend was counted.
        var spend: SpendGuard.Verdict? = nil
        /// The kind of message (`MessageKeys.kind`), nil when the row names none.
        var kind: String? { MessageKeys.string(original.count > MessageKeys.kindIndex ? original[MessageKeys.kindIndex] : nil) }
    }

    /// A row the record statement wrote (its RETURNING's retry_count and next_retry_epoch are
    /// what the SQL report functions answer with; the library's reports read them there).
    struct WrittenRow: Sendable {
        var id: Int
    }

    /// Claims up to `limit` due rows for `lease` seconds; committed when this returns.
    /// `uncertainOnly`: only rows whose last send's fate is unknown (`reconcile`).
    func claim(limit: Int, lease: Double, runID: String, uncertainOnly: Bool = false) async throws -> [ClaimedRow] {
        Self.claimedRows(try await database.run(claimStatement(limit: limit, lease: lease, runID: runID, uncertainOnly: uncertainOnly)))
    }

    func claimStatement(limit: Int, lease: Double, runID: String, uncertainOnly: Bool) -> ClaimDue {
        ClaimDue(limit: limit, lease: lease, now: clock.statementNow, runID: runID, uncertainOnly: uncertainOnly,
                 keyPaths: policy.messageKeys.paths)
    }

    /// The claim's rows, in the order they fell due.
    static func claimedRows(_ rows: [ClaimDue.Row]) -> [ClaimedRow] {
        // RETURNING comes in no particular order: sent in the order they fell due.
        rows.sorted { ($0.dueEpoch, $0.claimed.id) < ($1.dueEpoch, $1.claimed.id) }.map(\.claimed)
    }

    /// The claim statement exactly as a run sends it, for a batch of `limit`, inside a
    /// transaction that is rolled back (the benchmarks): with `explain`, the lines of its
    /// `EXPLAIN (ANALYZE, BUFFERS)`; else one line, how many rows it claimed.
    public func probeClaim(limit: Int, explain: Bool) async throws -> [String] {
        let statement = claimStatement(limit: limit, lease: 300, runID: "probe", uncertainOnly: false)
        return try await database.withConnection { conn in
            try conn.executeScript("BEGIN")
            defer { _ = try? conn.executeScript("ROLLBACK") }
            if explain {
                return try conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + ClaimDue.sql, statement.parameters).rows.compactMap { $0.first ?? nil }
            }
            return ["\(try conn.run(statement).count)"]
        }
    }

    /// Writes a batch of outcomes in one statement; returns the rows actually written (a row
    /// whose lease was lost is not).
    func record(_ outcomes: [Outcome]) async throws -> [WrittenRow] {
        guard !outcomes.isEmpty else { return [] }
        let now = clock.statementNow
        return try await database.withConnection { try Self.record(outcomes, now: now, on: $0) }
    }

    static func record(_ outcomes: [Outcome], now: Date? = nil, on conn: PGConnection) throws -> [WrittenRow] {
        try conn.run(OutcomesRecord(now: now, keep: historyLimit, outcomes: outcomes))
    }

    struct DueRow: Sendable {
        var id: Int
        var phoneNumber: String
        var direction: String
        var retryCount: Int
        var maxRetries: Int
        var nextRetryAt: String
        var errorCode: String?
        var ageSeconds: Double?
        var kind: String?
        /// SMS segments of the body: what the spend guard's cost estimate counts.
        var segments = 1
    }

    func dueList(limit: Int) async throws -> [DueRow] {
        try await database.run(DueList(limit: limit, now: clock.statementNow, kindPath: policy.messageKeys.kind))
    }

    /// Classifies up to `batch` failed outbound rows the router never reported (no retry state,
    /// written at least `grace` seconds ago): the Twilio code from `sms_metadata` or
    /// `error_message`, through the policy; rows older than `maxAge` are closed as expired. One
    /// transaction locks, classifies and writes them, so concurrent runs adopt disjoint rows.
    /// Returns what became of the rows adopted (those the record wrote).
    func adopt(batch: Int, grace: Double, maxAge: Double) async throws -> AdoptionSplit {
        let policy = self.policy
        return try await database.transaction { conn -> AdoptionSplit in
            let rows = try conn.run(UnadoptedLock(batch: batch, grace: grace, now: self.clock.statementNow)).map(\.failure)
            let outcomes = rows.map {
                Self.adopted(id: $0.id, errorMessage: $0.errorMessage, metadata: $0.metadata,
                             ageSeconds: $0.ageSeconds, sentEpoch: $0.sentEpoch, policy: policy, maxAge: maxAge)
            }
            let written = Set(try Self.record(outcomes, now: self.clock.statementNow, on: conn).map(\.id))
            var split = AdoptionSplit()
            for outcome in outcomes where written.contains(outcome.id) { split.count(outcome) }
            return split
        }
    }

    /// What `adopt` would do now with every unreported failure, read only: those older than
    /// `maxAge` are counted (they would be closed as expired whatever their code), the younger
    /// ones read and classified by `adopted` exactly as adoption does. Both through the work
    /// index; the rows read are at most `maxAge`'s worth of the router's unreported failures.
    func adoptionPreview(grace: Double, maxAge: Double) async throws -> AdoptionSplit {
        let policy = self.policy
        let now = clock.statementNow
        return try await database.withConnection { conn -> AdoptionSplit in
            var split = AdoptionSplit()
            split.expired = try conn.run(UnadoptedCount(cap: nil, minAge: max(grace, maxAge), now: now)).first?.n ?? 0
            for r in try conn.run(UnadoptedRecent(grace: grace, maxAge: maxAge, now: now)).map(\.failure) {
                split.count(Self.adopted(id: r.id, errorMessage: r.errorMessage, metadata: r.metadata,
                                         ageSeconds: r.ageSeconds, policy: policy, maxAge: maxAge))
            }
            return split
        }
    }

    /// How many rows adoption would take now (written at least `grace` seconds ago), counted
    /// up to `cap` through the work index (its adoption arm).
    func unreportedCount(grace: Double, cap: Int) async throws -> Int {
        try await database.run(UnadoptedCount(cap: cap, minAge: grace, now: clock.statementNow)).first?.n ?? 0
    }

    /// What an unreported failure becomes (pure): scheduled by its code, or expired.
    static func adopted(id: Int, errorMessage: String?, metadata: String?, ageSeconds: Double?, sentEpoch: Double? = nil,
                        policy: RetryPolicy, maxAge: Double) -> Outcome {
        let code = ErrorCodeParser.code(errorMessage: errorMessage, metadata: metadata)
        let failure: Failure = code.map { .twilio(code: $0) } ?? .transport
        var outcome: Outcome
        if let age = ageSeconds, age > maxAge {
            outcome = Outcome(id: id, kind: .failed, errorCode: code, reason: .expired, outcome: .expired)
        } else {
            outcome = .failure(id: id, decision: policy.decide(failure, attemptsMade: 0), failure: failure,
                               message: errorMessage, countedAttempt: false)
            outcome.outcome = .failed
            outcome.uncertain = routerDoubt(failure, sentEpoch: sentEpoch)
        }
        outcome.note = "adopted: the router did not report this failure"
        return outcome
    }

    /// What the router said of rows `ids` since they were claimed (`RouterWordRead`): the
    /// ones it confirmed or deleted; the others are absent from the answer.
    func routerWord(ids: [Int]) async throws -> [Int: RouterWord] {
        guard !ids.isEmpty else { return [:] }
        return try await database.run(RouterWordRead(ids: ids))
            .reduce(into: [:]) { words, r in words[r.id] = r.deleted ? .deleted : .confirmed }
    }

    /// Whether a row other than `row` holds message `sid`: a message found for a doubtful send
    /// that another row already holds is that row's.
    func sidHeldElsewhere(_ sid: String, notRow row: Int) async throws -> Bool {
        try await surviving("look up a message's row") {
            try await self.database.run(SIDHeld(sid: sid, notRow: row)).first?.held ?? false
        }
    }

    /// Takes (or keeps) this session's presence slot among the runs sharing a rate (advisory
    /// lock class `lockClass`) and returns how many runs are present.
    func runsPresent(lockClass: Int32) async throws -> Int {
        try await database.run(RunPresence(lockClass: lockClass)).first?.runs ?? 1
    }

    /// Gives back this session's presence slots of `lockClass`.
    func leavePresence(lockClass: Int32) async throws {
        try await database.run(RunLeave(lockClass: lockClass))
    }

    /// `work` (statements safe to repeat), re-run through a lost connection for up to `budget`.
    func surviving<T: Sendable>(budget: Duration = .seconds(15), logger: Logger? = nil, _ what: String,
                                _ work: () async throws -> T) async throws -> T {
        try await database.surviving(budget: budget, logger: logger, clock: clock, what, work)
    }

    /// Only outbound rows are ever sent (`Direction`: Twilio's spellings, any case).
    static func isOutbound(_ direction: String?) -> Bool { Direction(direction) == .outbound }
}
