import CLibPQ

/// A query's rows copied out of a `PGresult` as text, so they outlive it and cross threads.
public struct PGRows: Sendable {
    public let columns: [String]
    public let rows: [[String?]]
    /// Rows affected, for INSERT/UPDATE/DELETE without RETURNING.
    public let affected: Int

    public init(columns: [String], rows: [[String?]], affected: Int) {
        self.columns = columns
        self.rows = rows
        self.affected = affected
    }

    init(result: OpaquePointer) {
        let width = Int(PQnfields(result))
        let count = Int(PQntuples(result))
        columns = (0..<width).map { String(cString: PQfname(result, Int32($0))) }
        rows = (0..<count).map { r in
            (0..<width).map { c in
                PQgetisnull(result, Int32(r), Int32(c)) == 1
                    ? nil : String(cString: PQgetvalue(result, Int32(r), Int32(c)))
            }
        }
        affected = count
    }

    public var count: Int { rows.count }
    public var isEmpty: Bool { rows.isEmpty }

    public subscript(_ index: Int) -> PGRow { PGRow(columns: columns, values: rows[index]) }
    public var all: [PGRow] { rows.map { PGRow(columns: columns, values: $0) } }
    public var first: PGRow? { rows.first.map { PGRow(columns: columns, values: $0) } }
}

/// One row; values by column name, typed on read.
public struct PGRow: Sendable {
    let columns: [String]
    let values: [String?]

    public func string(_ name: String) -> String? {
        guard let i = columns.firstIndex(of: name) else { preconditionFailure("no column \(name)") }
        return values[i]
    }
    public func int(_ name: String) -> Int? { string(name).flatMap { Int($0) } }
    public func double(_ name: String) -> Double? { string(name).flatMap { Double($0) } }
    public func bool(_ name: String) -> Bool? { string(name).map { $0 == "t" } }
}

/// Text-format literals for array parameters (`$1::bigint[]`, `$2::text[]`), so a whole batch
/// travels as one bound value per column.
public enum PGArray {
    public static func literal(_ values: [String?]) -> String {
        // Built as bytes: appending to a String per character showed in a run's profile.
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(values.reduce(2) { $0 + ($1?.utf8.count ?? 4) + 3 })
        for (i, value) in values.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            guard let value else { out.append(contentsOf: "NULL".utf8); continue }
            out.append(UInt8(ascii: "\""))
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(byte)
                case 0: continue
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    public static func literal(_ values: [Int?]) -> String { literal(values.map { $0.map(String.init) }) }
    public static func literal(_ values: [Double?]) -> String { literal(values.map { $0.map { String($0) } }) }
}
