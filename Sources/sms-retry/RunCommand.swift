import ArgumentParser
import Foundation
import Logging
import SMSRetry

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Claim the rows that are due, resend them through Twilio, record each outcome.",
        discussion: """
            Safe to run from several hosts at once: rows are claimed with FOR UPDATE SKIP LOCKED \
            and a lease. Prints one summary line. Exit: 0 all done, 1 some rows could not be \
            processed or a sender was stopped (Twilio said it cannot send: its rows handed back), 2 usage or configuration error, 3 database error (unreachable, or a statement a DBA's time limit \
            cancelled even in smaller pieces: the rows in flight are recorded first, and a line names the setting), 4 Twilio outage \
            (the breaker opened; unsent rows handed back without using an attempt).
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policyOptions: PolicyOptions

    @Option(parsing: .unconditional, help: "Rows claimed per batch.") var batchSize = 100
    @Option(parsing: .unconditional, help: "Requests in flight at once.") var concurrency = 16
    @Option(parsing: .unconditional, help: "Claim at most this many rows in this run.") var limit: Int?
    @Option(name: .customLong("max-runtime"), parsing: .unconditional, help: "Stop claiming after this long (90s, 2m, or seconds).")
    var maxRuntimeDuration = DurationArgument(seconds: 110)
    @Option(name: .customLong("lease"), parsing: .unconditional, help: "How long a claim holds its rows before another run may take them (300s, 5m, or seconds).")
    var leaseDuration = DurationArgument(seconds: 300)
    /// Seconds, as the run reads them.
    var maxRuntime: Double { maxRuntimeDuration.seconds }
    var lease: Double { leaseDuration.seconds }
    var timeout: Double { timeoutDuration.seconds }
    @Flag(help: "List what would be sent; change nothing.") var dryRun = false
    @Option(parsing: .unconditional, help: "Close instead of sending messages older than this (90s, 15m, 24h, 7d): the limit of the default kind of message (the policy file's message_kinds set the others).")
    var maxAge = DurationArgument(seconds: 86_400)
    @Flag(help: "First classify failed outbound rows the router never reported (success = false, no retry state), by the Twilio code in sms_metadata or error_message. For routers that do not call the library.")
    var adoptFailures = false
    @Option(parsing: .unconditional, help: "With --adopt-failures: leave rows younger than this to the router's own report.")
    var adoptGrace = DurationArgument(seconds: 30)
    @Option(parsing: .unconditional, help: "At most this many requests per second for all runs working at the moment together (each takes its share, re-counted every second through PostgreSQL), shared by all senders (10, 10/s, 600/m).")
    var rate: RateArgument?
    @Option(parsing: .unconditional, help: "At most this many requests per second per sender (a From or Messaging Service), for all runs together: Twilio's MPS is per sender.")
    var senderRate: RateArgument?
    @Option(name: .customLong("timeout"), parsing: .unconditional, help: "How long a request to Twilio may take in all before it counts as a timeout (20s, or seconds).")
    var timeoutDuration = DurationArgument(seconds: 20)
    @Option(parsing: .unconditional, help: "Outage breaker: attempts looked at.") var breakerWindow = 20
    @Option(parsing: .unconditional, help: "Outage breaker: stop sending when this many of them failed for reasons that are not the message's (5xx, timeouts, connection errors).")
    var breakerFailures = 11
    @Option(help: "Write Prometheus metrics here for node_exporter's textfile collector (temp file + rename).")
    var metricsFile: String?

    func validate() throws {
        try Bounds.check("--batch-size", batchSize, 1...10_000)
        try Bounds.check("--concurrency", concurrency, 1...1_024)
        try Bounds.check("--limit", limit, 1...Int.max)
        try maxRuntimeDuration.check("--max-runtime", 1...86_400)
        try timeoutDuration.check("--timeout", 1...120)
        try leaseDuration.check("--lease", 60...86_400)
        guard lease >= timeout + 40 else {
            throw ValidationError("--lease \(leaseDuration.text) is out of range: at least 40s more than --timeout \(timeoutDuration.text) (a request may take timeout + 5 s to connect)")
        }
        try maxAge.check("--max-age", 60...DurationArgument.longest)
        try adoptGrace.check("--adopt-grace", 0...86_400)
        try rate?.check("--rate")
        try senderRate?.check("--sender-rate")
        try Bounds.check("--breaker-window", breakerWindow, 1...1_000)
        guard (1...breakerWindow).contains(breakerFailures) else {
            throw ValidationError("--breaker-failures \(breakerFailures) is out of range: 1 to --breaker-window (\(breakerWindow))")
        }
    }

    func run() async throws {
        let logger = global.makeLogger("sms-retry.run")
        let policy = try policyOptions.load()
        // Twilio settings are needed even for --dry-run: a dry run that passes should mean a
        // real run would start.
        let config = try twilioConfig()
        let db = try await global.connect(.writes(command: "run"))
        if rate != nil || senderRate != nil, !db.pooling.keepsSession {
            throw CLIFailure(code: Exit.usage, message: "--rate / --sender-rate: the database connection goes through a pooler in transaction mode (PgBouncer pool_mode = transaction), which cannot keep the lock that counts the runs sharing the rate; run this through a session-mode pool or straight to PostgreSQL (--database-url)")
        }
        var options = RunOptions()
        options.batchSize = batchSize
        options.concurrency = concurrency
        options.limit = limit
        options.maxRuntime = .milliseconds(Int64(maxRuntime * 1000))
        options.lease = lease
        options.maxAge = maxAge.seconds
        options.adopt = adoptFailures
        options.adoptGrace = adoptGrace.seconds
        options.rate = rate?.perSecond
        options.senderRate = senderRate?.perSecond
        options.breakerWindow = breakerWindow
        options.breakerThreshold = breakerFailures
        var httpOptions = HTTPClient.Options()
        httpOptions.timeout = .milliseconds(Int64(timeout * 1000))
        httpOptions.maxConnections = max(concurrency, 4)
        let http = HTTPClient(options: httpOptions)
        defer { http.shutdown() }
        let runner = RetryRunner(store: RetryStore(database: db, policy: policy, logger: logger),
                                 twilio: TwilioClient(config: config, http: http), options: options, logger: logger)
        do {
            if dryRun {
                // The adoption a real run would make first, counted and classified, not written.
                if adoptFailures {
                    let preview = try await runner.adoptionPreview()
                    print("would adopt: \(preview.fields)")
                }
                let due = try await runner.dryRun()
                for m in due {
                    let verb = m.action == "send" ? "would send" : "would \(m.action):"
                    print("\(verb) log_id=\(m.logID) to=\(m.maskedPhone) kind=\(m.kind) attempt=\(m.attempt)/\(m.maxRetries) due=\(m.dueAt) last_error=\(m.lastErrorCode ?? "-")")
                }
                // What the spend guard would stop now, by reason (`run`'s summary names them alike).
                let guarded = SpendReason.allCases.compactMap { reason -> String? in
                    let n = due.filter { $0.spendReason == reason }.count
                    return n > 0 ? "\(reason.rawValue)=\(n)" : nil
                }
                print("dry-run: \(due.count) due row(s)\(guarded.isEmpty ? "" : ", " + guarded.joined(separator: " ") + " among them"); nothing changed")
                await hintAdoption(runner)
                return
            }
            let summary: RunSummary
            do { summary = try await runner.run() } catch let error as DatabaseError {
                await writeMetrics(RunSummary(), exitCode: databaseFailure(error).code, db: nil, logger: logger)
                throw error
            }
            print(summary.description)
            if let why = summary.stoppedBecause { FileHandle.standardError.write(Data("sms-retry: \(why)\n".utf8)) }
            if let limit = summary.databaseLimit { FileHandle.standardError.write(Data("sms-retry: \(limit)\n".utf8)) }
            if summary.unrecorded > 0 {
                FileHandle.standardError.write(Data("sms-retry: \(summary.unrecorded) outcome(s) could not be recorded (log ids in the log): those rows keep this run's lease and come back when it ends, looked up at Twilio before any resend\n".utf8))
            }
            for sender in summary.blockedSenders {
                FileHandle.standardError.write(Data("sms-retry: sender stopped for this run, its rows handed back uncounted: \(sender)\n".utf8))
            }
            for range in summary.stoppedRanges {
                FileHandle.standardError.write(Data("sms-retry: number range stopped for this run (Twilio's SMS pumping protection), its rows held uncounted: \(range)\n".utf8))
            }
            if summary.budgetHeld > 0 {
                FileHandle.standardError.write(Data("sms-retry: \(summary.budgetHeld) resend(s) held to the next day: the fleet's daily resend budget (max_resends_per_day / max_resend_cost_per_day) is spent\n".utf8))
            }
            if summary.databaseError == nil { await hintAdoption(runner) }
            await writeMetrics(summary, exitCode: summary.exitCode, db: db, logger: logger)
            if summary.exitCode != 0 { throw CLIFailure(code: summary.exitCode, message: "") }
        } catch let error as DatabaseError {
            throw await databaseFailure(error, on: db, what: dryRun ? "the list of due rows" : "the run")
        }
    }
}

/// A rate: `10`, `10/s`, `600/m`, `3600/h` (requests per second, minute, hour). A sign is read
/// so that `-5` is refused by `check` in one line rather than taken for a flag.
struct RateArgument: ExpressibleByArgument, Sendable {
    var perSecond: Double
    var text: String

    init?(argument: String) {
        let parts = argument.split(separator: "/", omittingEmptySubsequences: false)
        let units: [String: Double] = ["s": 1, "m": 60, "h": 3600]
        guard (1...2).contains(parts.count), let n = Double(parts[0]), n.isFinite,
              let per = parts.count == 2 ? units[String(parts[1])] : 1 else { return nil }
        perSecond = n / per
        text = argument
    }

    /// Refuses a rate that is not positive, or over 100,000 requests per second.
    func check(_ flag: String) throws {
        guard perSecond > 0, perSecond <= 100_000 else {
            throw ValidationError("\(flag) \(text) is out of range: more than 0 to 100000/s (10, 10/s, 600/m, 3600/h)")
        }
    }
}

extension RunCommand {
    /// A run without `--adopt-failures` that sees failures the router never reported says once,
    /// on stderr, how many and which flag adopts them (one bounded count through the adoption
    /// index; a count that fails says nothing).
    func hintAdoption(_ runner: RetryRunner) async {
        guard !adoptFailures, let count = await runner.unreportedFailures(),
              let line = AdoptionSplit.hint(unreported: count) else { return }
        FileHandle.standardError.write(Data("sms-retry: \(line)\n".utf8))
    }

    /// Writes the metrics file when asked (`db` nil: the backlog is unknown). A failure to write
    /// is logged, never fatal.
    func writeMetrics(_ summary: RunSummary, exitCode: Int32, db: Database?, logger: Logger) async {
        guard let path = metricsFile else { return }
        var due: Int? = nil
        if let db { due = try? await RetryStore(database: db).dueCount() }
        let lastSuccess = RunMetrics.lastSuccess(exitCode: exitCode, now: SMSRetryClock.system.wallNow().timeIntervalSince1970) {
            RunMetrics.previousLastSuccess(at: path)
        }
        do {
            try RunMetrics.write(RunMetrics.text(summary, exitCode: exitCode, due: due, lastSuccess: lastSuccess), to: path)
        } catch {
            logger.error("cannot write the metrics file", metadata: ["metrics.path": "\(path)"])
        }
    }
}
