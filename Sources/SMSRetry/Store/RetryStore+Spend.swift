import Foundation

extension RetryStore {
    /// The advisory-lock class under which claims count and reserve the fleet's spend
    /// (`Queries.spendLock`), apart from the fleet rate's presence class.
    static let spendLockClass: Int32 = 0x534D_5350

    /// How a claim keeps to the spend guard's fleet-wide limits: how far back a resent row can
    /// have been created (the longest maximum age), and which claimed rows would be sent (the
    /// others reserve nothing: closed, held for quiet hours).
    struct SpendClaim: Sendable {
        var window: Double
        var sendable: @Sendable (ClaimedRow) -> Bool
    }

    /// The fleet's spend so far (`Queries.spendSoFar`), read on `conn`: today's resends in the
    /// budget's zone and their estimated cost, each range's in the last hour.
    static func spendSoFar(_ conn: PGConnection, policy: SpendPolicy, dayStart: Date, window: Double, now: Date?) throws -> SpendSoFar {
        var soFar = SpendSoFar()
        for r in try conn.run(SpendSoFarRead(now: now, dayStart: dayStart, window: window, defaultPrice: policy.defaultPrice)) {
            soFar.resends += r.resendsToday ?? 0
            soFar.cost += r.costToday ?? 0
            if let range = r.range, !range.isEmpty, let hour = r.resendsHour, hour > 0 { soFar.rangeLastHour[range] = hour }
        }
        return soFar
    }

    /// Claims up to `limit` due rows as `claim` does, within the fleet's spend: in one
    /// transaction under `Queries.spendLock`, counts what the fleet has resent today and in the
    /// last hour per range, claims, lets `SpendGuard` decide each sendable row in order (the
    /// batch's own sends count toward the next), and reserves the sends it allowed on their rows.
    /// Rows it held carry the verdict (`ClaimedRow.spend`) and are recorded as held by the run.
    /// Two runs at once cannot both spend what is left: the second waits for the first's commit
    /// and then counts its reservations.
    func claimWithinSpend(limit: Int, lease: Double, runID: String, spend: SpendClaim) async throws -> [ClaimedRow] {
        let statement = claimStatement(limit: limit, lease: lease, runID: runID, uncertainOnly: false)
        let policy = self.policy.spend
        let clock = self.clock
        return try await database.transaction { conn -> [ClaimedRow] in
            try conn.run(SpendLock(lockClass: Self.spendLockClass))
            let now = clock.wallNow()
            let dayStart = SpendGuard(policy: policy, now: now).dayStart
            let soFar = try Self.spendSoFar(conn, policy: policy, dayStart: dayStart, window: spend.window, now: clock.statementNow)
            var rows = Self.claimedRows(try conn.run(statement))
            var guardian = SpendGuard(policy: policy, soFar: soFar, now: now)
            var reserve: [(row: ClaimedRow, country: String?, range: String?, cost: Double)] = []
            for i in rows.indices where spend.sendable(rows[i]) {
                let verdict = guardian.decide(number: rows[i].phoneNumber, segments: rows[i].segments)
                rows[i].spend = verdict
                if case .send(let country, let range, let cost) = verdict { reserve.append((rows[i], country, range, cost)) }
            }
            if !reserve.isEmpty {
                try conn.run(SpendReserve(ids: reserve.map(\.row.id), countries: reserve.map(\.country), ranges: reserve.map(\.range),
                                          costs: reserve.map(\.cost), leasesUntil: reserve.map(\.row.leaseUntil)))
            }
            return rows
        }
    }

    /// The fleet's spend so far, read alone (health, metrics, tests).
    public func spendSoFar(window: Double = 30 * 86_400) async throws -> SpendSoFar {
        let policy = self.policy.spend
        let clock = self.clock
        return try await database.transaction { conn in
            try Self.spendSoFar(conn, policy: policy, dayStart: SpendGuard(policy: policy, now: clock.wallNow()).dayStart,
                                window: window, now: clock.statementNow)
        }
    }

    /// The pending rows the spend guard holds, by reason and range (`prefix_digits`).
    public func spendHeld() async throws -> [(reason: SpendReason, range: String, rows: Int)] {
        var held: [String: (reason: SpendReason, range: String, rows: Int)] = [:]
        for r in try await database.run(SpendHeldRead()) {
            guard let label = r.reason, let reason = SpendReason(rawValue: label) else { continue }
            let range = RecipientCountries.range(r.phoneNumber ?? "", digits: policy.spend.prefixDigits) ?? ""
            held["\(label) \(range)", default: (reason, range, 0)].rows += r.rows ?? 0
        }
        return held.values.sorted { ($0.reason.rawValue, $0.range) < ($1.reason.rawValue, $1.range) }
    }

    /// What `health` says of spending (`SpendHealth`): the fleet's budget and the held rows.
    public func spendHealth() async throws -> (level: Int32, reasons: [String]) {
        let soFar = policy.spend.maxResendsPerDay != nil || policy.spend.maxCostPerDay != nil ? try await spendSoFar() : nil
        return SpendHealth.judge(soFar: soFar, policy: policy.spend, held: try await spendHeld())
    }
}
