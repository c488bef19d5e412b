import Logging

/// One rate for all runs working at a moment, through PostgreSQL only: each run holds one
/// session-level advisory lock (key `presenceClass`, any free slot) as its presence, and four
/// times a second counts the runs present and takes its share of `--rate` (and of `--sender-rate` for
/// each sender). A run that dies drops its connection, and so its lock: the others see one run
/// fewer at their next count and take up its share; one that ends gives its slot back. A run
/// whose connection goes through a pooler in transaction mode (`Pooling.transaction`) cannot hold
/// a session lock, and `run` refuses --rate there.
final class FleetRate: Sendable {
    /// The advisory-lock class of sms-retry's run presence ('SMSR').
    static let presenceClass: Int32 = 0x534D_5352
    let store: RetryStore
    let logger: Logger

    init(store: RetryStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// How often a run counts the runs present.
    static let countEvery = Duration.milliseconds(250)
    /// How long a run waits before its first send: one count of the others, and a margin.
    static let joining = countEvery + .milliseconds(50)

    /// This run's share: `rate / runs`.
    static func share(_ rate: Double, runs: Int) -> Double { rate / Double(max(1, runs)) }

    /// Holds a presence slot (taken again after a reconnect) and returns how many runs are present.
    func present() async throws -> Int {
        try await store.runsPresent(lockClass: Self.presenceClass)
    }

    /// Gives the presence slot back (a pooler in session mode hands the server connection to its
    /// next client, with whatever it still holds where its reset query is not the default
    /// `DISCARD ALL`). A failure only logs: the lock goes with the session in any case.
    func leave() async {
        do { try await store.leavePresence(lockClass: Self.presenceClass) } catch {
            logger.warning("cannot give back this run's place among the runs sharing --rate", metadata: ["db.error": "\(error)"])
        }
    }

    /// Four times a second until cancelled: the count of runs, handed to `apply` (so a run that
    /// joins or dies shifts the others' shares within a quarter of a second).
    func follow(_ apply: @escaping @Sendable (Int) -> Void) async {
        while !Task.isCancelled {
            do { apply(try await present()) } catch {
                logger.warning("cannot count the runs sharing --rate; keeping the last share", metadata: ["db.error": "\(error)"])
            }
            try? await store.clock.sleep(for: Self.countEvery)
        }
    }
}
