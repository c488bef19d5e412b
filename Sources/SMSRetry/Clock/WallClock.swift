import Foundation

/// The one clock of a store and everything working through it (runs, reconcile, the router's
/// reports, operator commands): the system's, or a fixed instant a test sets. Its `sql` is
/// every statement's "now" parameter, so the database and the Swift decisions read one time.
public struct WallClock: Sendable {
    public var fixed: Date?
    public static let system = WallClock(fixed: nil)
    public static func at(_ instant: Date) -> WallClock { WallClock(fixed: instant) }

    public func now() -> Date { fixed ?? Date() }
    /// The statements' "now" parameter: nil (the server's `now()`) unless fixed.
    var sql: String? { fixed.map(JSONText.timestamp) }
}
