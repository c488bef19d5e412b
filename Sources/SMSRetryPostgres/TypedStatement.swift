import Foundation

/// A statement as a type: its stored properties are its parameters, typed, and `Row` is what
/// one of its result rows decodes to, once. The SQL is the type's (`sql`); the instance is one
/// call of it. Parameters are encoded to libpq's text format in one place (`PGParameter`), rows
/// decoded in one (`PGRowDecodable`, by `PGRow.value`/`PGRow.optional`, which name a missing
/// column). The test that PREPAREs every statement also describes each typed one's result and
/// decodes a row of exactly those columns, so a column the decoder reads and the SQL does not
/// return fails there, not at run time.
public protocol TypedStatement: SQLStatement {
    associatedtype Row: PGRowDecodable
    static var name: String { get }
    static var sql: String { get }
    /// The parameters in `$n` order, encoded (`PGParameters.encode`).
    var parameters: [String?] { get }
}

extension TypedStatement {
    public var name: String { Self.name }
    public var sql: String { Self.sql }

    /// Decodes a row holding exactly `columns` (each "0", which reads as every type here): what
    /// the PREPARE test does with the columns the server describes for `sql`.
    public static func decodeSample(columns: [String]) throws {
        _ = try Row(PGRows(columns: columns, rows: [columns.map { _ in "0" }], affected: 1)[0])
    }
}

/// A value as one libpq text parameter (nil is SQL NULL): the one place Swift values become
/// parameter text.
public protocol PGParameter: Sendable {
    var pgText: String? { get }
}

extension String: PGParameter { public var pgText: String? { self } }
extension Int: PGParameter { public var pgText: String? { String(self) } }
extension Int32: PGParameter { public var pgText: String? { String(self) } }
extension Int64: PGParameter { public var pgText: String? { String(self) } }
extension Double: PGParameter { public var pgText: String? { String(self) } }
extension Bool: PGParameter { public var pgText: String? { self ? "t" : "f" } }
extension Date: PGParameter {
    /// UTC with milliseconds and an explicit offset (`2026-12-07T16:30:51.123Z`), as `timestamptz` reads it.
    public var pgText: String? { PGTimestamp.text(self) }
}
extension Optional: PGParameter where Wrapped: PGParameter {
    public var pgText: String? { self?.pgText ?? nil }
}
/// An array parameter (`$1::bigint[]`): one bound value for a whole batch.
extension Array: PGParameter where Element: PGParameter {
    public var pgText: String? { PGArray.literal(map(\.pgText)) }
}

public enum PGParameters {
    /// The parameters of a statement, in `$n` order.
    public static func encode(_ values: any PGParameter...) -> [String?] { values.map(\.pgText) }
}

public enum PGTimestamp {
    /// `date` as ISO 8601 UTC with milliseconds (what `JSONText.timestamp` writes into JSON too).
    public static func text(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded())
        var seconds = time_t(ms / 1000)
        var tm = Glibc.tm()
        gmtime_r(&seconds, &tm)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let milli = Int(ms % 1000)
        let frac = milli < 10 ? "00\(milli)" : milli < 100 ? "0\(milli)" : "\(milli)"
        return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)).\(frac)Z"
    }
}

/// A statement's row type: decoded once from a `PGRow`.
public protocol PGRowDecodable: Sendable {
    init(_ row: PGRow) throws(RowDecodingError)
}

/// For statements whose rows nobody reads (locks, writes without RETURNING).
public struct NoRow: PGRowDecodable {
    public init(_ row: PGRow) {}
}

/// A row that does not decode: the column it lacks, holds NULL where a value is required, or
/// holds text that is not its type.
public struct RowDecodingError: Error, Equatable, CustomStringConvertible {
    public enum Problem: Sendable, Equatable { case noColumn, null, unreadable(String) }
    public var column: String
    public var problem: Problem
    public init(column: String, problem: Problem) {
        self.column = column
        self.problem = problem
    }
    public var description: String {
        switch problem {
        case .noColumn: "no column \(column) in the row"
        case .null: "column \(column) is NULL"
        case .unreadable(let text): "column \(column) does not read as its type: \(text)"
        }
    }
}

/// A column's type as it reads from libpq's text format.
public protocol PGValue: Sendable {
    init?(pgText: String)
}
extension String: PGValue { public init?(pgText: String) { self = pgText } }
extension Int: PGValue { public init?(pgText: String) { self.init(pgText) } }
extension Int64: PGValue { public init?(pgText: String) { self.init(pgText) } }
extension Double: PGValue { public init?(pgText: String) { self.init(pgText) } }
extension Bool: PGValue { public init?(pgText: String) { self = pgText == "t" } }

extension PGRow {
    /// The column `name`, which must be there and not NULL.
    public func value<T: PGValue>(_ name: String, as type: T.Type = T.self) throws(RowDecodingError) -> T {
        guard let value = try optional(name, as: type) else { throw RowDecodingError(column: name, problem: .null) }
        return value
    }

    /// The column `name`, which must be there; nil when NULL. Text that does not read as `T`
    /// is an error, not nil.
    public func optional<T: PGValue>(_ name: String, as type: T.Type = T.self) throws(RowDecodingError) -> T? {
        guard let i = columns.firstIndex(of: name) else { throw RowDecodingError(column: name, problem: .noColumn) }
        guard let text = values[i] else { return nil }
        guard let value = T(pgText: text) else { throw RowDecodingError(column: name, problem: .unreadable(text)) }
        return value
    }
}

extension PGConnection {
    /// Runs a typed statement (prepared and named like any `SQLStatement`) and decodes its rows.
    @discardableResult
    public func run<S: TypedStatement>(_ statement: S) throws -> [S.Row] {
        try execute(statement, statement.parameters).all.map { try S.Row($0) }
    }
}

extension Database {
    /// Runs a typed statement and decodes its rows.
    @discardableResult
    public func run<S: TypedStatement>(_ statement: S) async throws -> [S.Row] {
        let rows = try await query(statement, statement.parameters)
        return try rows.all.map { try S.Row($0) }
    }
}
