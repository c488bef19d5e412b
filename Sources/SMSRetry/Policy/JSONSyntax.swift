import Foundation

/// Finds where a JSON text stops being JSON (RFC 8259), for a message a person can act on:
/// `line 3, column 14: expected ',' or '}'`. Pure; it only reads the text.
enum JSONSyntax {
    struct Problem: Error, Equatable, CustomStringConvertible {
        var line: Int
        var column: Int
        var problem: String
        var description: String { "line \(line), column \(column): \(problem)" }
    }

    /// The first syntax error in `data`, or nil when it is one JSON value.
    static func firstProblem(_ data: Data) -> Problem? {
        var reader = Reader(bytes: Array(data))
        do {
            reader.skipSpace()
            try reader.value(depth: 0)
            reader.skipSpace()
            if reader.i < reader.bytes.count { throw reader.error("unexpected \(reader.shown) after the end of the JSON value") }
            return nil
        } catch let problem as Problem {
            return problem
        } catch {
            return nil
        }
    }

    private struct Reader {
        let bytes: [UInt8]
        var i = 0

        init(bytes: [UInt8]) {
            // A UTF-8 byte order mark is not part of the text.
            self.bytes = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
        }

        var shown: String {
            guard i < bytes.count else { return "end of file" }
            let b = bytes[i]
            return b >= 0x20 && b < 0x7F ? "'\(Character(Unicode.Scalar(b)))'" : String(format: "byte 0x%02X", b)
        }

        func error(_ problem: String) -> Problem {
            var line = 1, column = 1
            for b in bytes[..<min(i, bytes.count)] {
                if b == UInt8(ascii: "\n") { line += 1; column = 1 } else if b & 0xC0 != 0x80 { column += 1 }
            }
            return Problem(line: line, column: column, problem: problem)
        }

        mutating func skipSpace() {
            while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
        }

        mutating func expect(_ c: Character, _ what: String) throws {
            guard i < bytes.count, bytes[i] == c.asciiValue! else { throw error("expected \(what), found \(shown)") }
            i += 1
        }

        mutating func value(depth: Int) throws {
            guard depth < 512 else { throw error("nested too deeply") }
            guard i < bytes.count else { throw error("expected a value, found end of file") }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return }
                while true {
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw error("expected a key in double quotes, found \(shown)") }
                    try string()
                    skipSpace()
                    try expect(":", "':' after the key")
                    skipSpace()
                    try value(depth: depth + 1)
                    skipSpace()
                    if i < bytes.count, bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    try expect("}", "',' or '}'")
                    return
                }
            case UInt8(ascii: "["):
                i += 1
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return }
                while true {
                    skipSpace()
                    try value(depth: depth + 1)
                    skipSpace()
                    if i < bytes.count, bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    try expect("]", "',' or ']'")
                    return
                }
            case UInt8(ascii: "\""): try string()
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            default:
                for word in ["true", "false", "null"] where bytes[i...].starts(with: Array(word.utf8)) {
                    i += word.utf8.count
                    return
                }
                throw error("expected a value (an object, array, string, number, true, false or null), found \(shown)")
            }
        }

        mutating func string() throws {
            i += 1
            while i < bytes.count {
                switch bytes[i] {
                case UInt8(ascii: "\""): i += 1; return
                case UInt8(ascii: "\\"):
                    i += 1
                    guard i < bytes.count else { break }
                    if bytes[i] == UInt8(ascii: "u") {
                        let hex = bytes[(i + 1)..<min(i + 5, bytes.count)]
                        guard hex.count == 4, hex.allSatisfy({ Character(Unicode.Scalar($0)).isHexDigit }) else {
                            throw error("expected 4 hex digits after \\u")
                        }
                        i += 5
                    } else {
                        guard Array("\"\\/bfnrt".utf8).contains(bytes[i]) else { throw error("unknown escape \\\(shown.trimmingCharacters(in: ["'"]))") }
                        i += 1
                    }
                case 0x00..<0x20: throw error("a control character (a line break?) inside a string")
                default: i += 1
                }
            }
            throw error("a string is not closed (a missing '\"')")
        }

        mutating func number() throws {
            if bytes[i] == UInt8(ascii: "-") { i += 1 }
            func digits() -> Int {
                let start = i
                while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
                return i - start
            }
            let start = i
            guard digits() > 0 else { throw error("expected a digit, found \(shown)") }
            if bytes[start] == UInt8(ascii: "0"), i - start > 1 { i = start; throw error("a number cannot start with 0") }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                i += 1
                guard digits() > 0 else { throw error("expected a digit after '.', found \(shown)") }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard digits() > 0 else { throw error("expected a digit in the exponent, found \(shown)") }
            }
        }
    }
}
