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

    @Option(help: "Rows claimed per batch.") var batchSize = 100
    @Option(help: "Requests in flight at once.") var concurrency = 16
    @Option(help: "Claim at most this many rows in this run.") var limit: Int?
    @Option(help: "Stop claiming after this many seconds.") var maxRuntime = 110.0
    @Option(help: "Seconds a claim holds its rows before another run may take them.") var lease = 300.0
    @Flag(help: "List what would be sent; change nothing.") var dryRun = false
    @Option(help: "Close instead of sending messages older than this (90s, 15m, 24h, 7d): the limit of the default kind of message (the policy file's message_kinds set the others).")
    var maxAge = DurationArgument(seconds: 86_400)
    @Flag(help: "First classify failed outbound rows the router never reported (success = false, no retry state), by the Twilio code in sms_metadata or error_message. For routers that do not call the library.")
    var adoptFailures = false
    @Option(help: "With --adopt-failures: leave rows younger than this to the router's own report.")
    var adoptGrace = DurationArgument(seconds: 30)
    @Option(help: "At most this many requests per second for all runs working at the moment together (each takes its share, re-counted every second through PostgreSQL), shared by all senders (10, 10/s, 600/m).")
    var rate: RateArgument?
    @Option(help: "At most this many requests per second per sender (a From or Messaging Service), for all runs together: Twilio's MPS is per sender.")
    var senderRate: RateArgument?
    @Option(help: "Seconds a request to Twilio may take in all before it counts as a timeout.")
    var timeout = 20.0
    @Option(help: "Outage breaker: attempts looked at.") var breakerWindow = 20
    @Option(help: "Outage breaker: stop sending when this many of them failed for reasons that are not the message's (5xx, timeouts, connection errors).")
    var breakerFailures = 11
    @Option(help: "Write Prometheus metrics here for node_exporter's textfile collector (temp file + rename).")
    var metricsFile: String?

    func validate() throws {
        guard (1...10_000).contains(batchSize) else { throw ValidationError("--batch-size must be 1 to 10000") }
        guard (1...1_024).contains(concurrency) else { throw ValidationError("--concurrency must be 1 to 1024") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        guard maxRuntime > 0 else { throw ValidationError("--max-runtime must be positive") }
        guard (1...120).contains(timeout) else { throw ValidationError("--timeout must be 1 to 120 seconds") }
        guard lease >= 60, lease >= timeout + 40 else {
            throw ValidationError("--lease must be at least 60 seconds and 40 more than --timeout (a request may take timeout + 5 s to connect)")
        }
        guard breakerWindow >= 1 else { throw ValidationError("--breaker-window must be at least 1") }
        guard (1...breakerWindow).contains(breakerFailures) else {
            throw ValidationError("--breaker-failures must be 1 to --breaker-window (\(breakerWindow))")
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
                print("dry-run: \(due.count) due row(s); nothing changed")
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
            if summary.databaseError == nil { await hintAdoption(runner) }
            await writeMetrics(summary, exitCode: summary.exitCode, db: db, logger: logger)
            if summary.exitCode != 0 { throw CLIFailure(code: summary.exitCode, message: "") }
        } catch let error as DatabaseError {
            throw await databaseFailure(error, on: db, what: dryRun ? "the list of due rows" : "the run")
        }
    }
}

/// A rate: `10`, `10/s`, `600/m`, `3600/h` (requests per second, minute, hour).
struct RateArgument: ExpressibleByArgument, Sendable {
    var perSecond: Double

    init?(argument: String) {
        let parts = argument.split(separator: "/", omittingEmptySubsequences: false)
        let units: [String: Double] = ["s": 1, "m": 60, "h": 3600]
        guard (1...2).contains(parts.count), let n = Double(parts[0]), n > 0, n.isFinite,
              let per = parts.count == 2 ? units[String(parts[1])] : 1 else { return nil }
        perSecond = n / per
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
        let lastSuccess = RunMetrics.lastSuccess(exitCode: exitCode, now: Date().timeIntervalSince1970) {
            RunMetrics.previousLastSuccess(at: path)
        }
        do {
            try RunMetrics.write(RunMetrics.text(summary, exitCode: exitCode, due: due, lastSuccess: lastSuccess), to: path)
        } catch {
            logger.error("cannot write the metrics file", metadata: ["metrics.path": "\(path)"])
        }
    }
}
