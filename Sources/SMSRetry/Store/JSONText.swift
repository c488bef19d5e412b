import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The JSON and timestamp text a run writes and reads for every row, without Foundation's
/// general coders and formatters, which a profile of a run showed spending most of its own CPU
/// (an `ISO8601DateFormatter` built per attempt alone was ~38%).
enum JSONText {
    /// A JSON value as `#>` returns it, as a plain string: a JSON string unquoted, anything else
    /// (a number, `true`) as written; nil for SQL NULL and JSON null.
    static func string(_ raw: String?) -> String? {
        guard let raw, raw != "null" else { return nil }
        let utf8 = raw.utf8
        guard utf8.first == UInt8(ascii: "\""), utf8.count >= 2, utf8.last == UInt8(ascii: "\"") else { return raw }
        if !utf8.contains(UInt8(ascii: "\\")) { return String(raw.dropFirst().dropLast()) }
        return try? JSONDecoder().decode(String.self, from: Data(utf8))
    }

    /// `s` as a JSON string literal.
    static func quote(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// A JSON object of string values, keys sorted.
    static func object(_ values: [String: String]) -> String {
        "{" + values.keys.sorted().map { "\(quote($0)): \(quote(values[$0]!))" }.joined(separator: ", ") + "}"
    }

    /// `2026-12-02T01:02:03.456Z`: an instant in UTC, to the millisecond, as PostgreSQL and
    /// ISO 8601 read it.
    static func timestamp(_ date: Date) -> String { PGTimestamp.text(date) }
}
