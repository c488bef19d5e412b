import Foundation

/// Read access to the analytics views (migration 005) for `stats` and `health`. The views are
/// the product: psql users read them directly; this only fetches them.
public struct Analytics: Sendable {
    public let database: Database

    public init(database: Database) { self.database = database }

    /// The view names, in display order.
    public static var views: [String] { Queries.views }

    /// Sets a `sms_retry.*` setting for this connection (period, thresholds, price).
    public func set(_ name: String, _ value: String) async throws {
        precondition(name.hasPrefix("sms_retry."), "only sms_retry.* settings")
        try await database.set(name, value)
    }

    /// One view's rows. `name` must be one of `views`.
    public func rows(of name: String) async throws -> PGRows {
        precondition(Queries.views.contains(name), "not an analytics view: \(name)")
        // A name from the fixed list above, not a value: it cannot be a bound parameter.
        return try await Self.naming(name) { try await database.query("SELECT * FROM \(name)") }
    }

    /// `work`, its error naming the view (`DatabaseError.statement`): which one a DBA's
    /// `statement_timeout` cancelled.
    static func naming<T>(_ view: String, _ work: () async throws -> T) async throws -> T {
        do { return try await work() } catch var error as DatabaseError {
            error.statement = error.statement ?? view
            throw error
        }
    }

    /// Every view as one JSON object keyed by the view's short name. One statement per view:
    /// each reads the rows of its period, and together they took ~0.7 s over 100k failed rows,
    /// past an ordinary `statement_timeout` that each alone fits.
    public func json() async throws -> String {
        var parts: [String] = []
        for name in Queries.views {
            // A name from the fixed list, not a value: it cannot be a bound parameter.
            let rows = try await Self.naming(name) {
                try await database.query("SELECT coalesce(json_agg(v), '[]'::json)::text AS rows FROM \(name) v")
            }
            parts.append("\"\(name.dropFirst("sms_retry_".count))\" : \(rows.first?.string("rows") ?? "[]")")
        }
        return "{" + parts.joined(separator: ", ") + "}"
    }

    public struct Health: Sendable, Equatable {
        public var status: String
        public var reasons: [String]
        public var retrySuccessRate: Double?
        public var finishedRetries: Int
        public var backlog: Int
        public var oldestDueSeconds: Int

        /// The monitoring-plugin convention: 0 healthy, 1 warning, 2 critical.
        public var exitCode: Int32 { status == "healthy" ? 0 : status == "warning" ? 1 : 2 }
    }

    public func health() async throws -> Health {
        guard let r = try await database.run(HealthRead()).first else {
            throw DatabaseError(kind: .query, message: "sms_retry_health returned no row")
        }
        let reasons = (try? JSONDecoder().decode([String].self, from: Data((r.reasons ?? "[]").utf8))) ?? []
        return Health(status: r.status ?? "unknown", reasons: reasons,
                      retrySuccessRate: r.retrySuccessRate, finishedRetries: r.finishedRetries ?? 0,
                      backlog: r.backlog ?? 0, oldestDueSeconds: r.oldestDueSeconds ?? 0)
    }
}
