/// The few top-level fields sms-retry reads from Twilio's answers (`sid`, `status`, `code`,
/// `message`), scanned from the bytes: JSONDecoder, building Data and a decoder per answer, was
/// ~4% of a run's CPU for two strings out of a ~900-byte body. Nested values are skipped whole,
/// so a `sid` inside `subresource_uris` is never taken for the message's.
enum TwilioJSON {
    enum Value: Equatable {
        case string(String)
        case number(Double)
        case other
    }

    /// The top-level members of a JSON object whose keys are in `keys`; nil when `bytes` is not
    /// one well-formed JSON object.
    static func fields(_ bytes: [UInt8], _ keys: Set<String>) -> [String: Value]? {
        var scanner = Scanner(bytes: bytes)
        guard let found = scanner.object(keys), scanner.end() else { return nil }
        return found
    }

    private struct Scanner {
        let bytes: [UInt8]
        var i = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func space() {
            while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
        }

        mutating func eat(_ c: UInt8) -> Bool {
            space()
            guard i < bytes.count, bytes[i] == c else { return false }
            i += 1
            return true
        }

        mutating func object(_ keys: Set<String>) -> [String: Value]? {
            guard eat(UInt8(ascii: "{")) else { return nil }
            var found: [String: Value] = [:]
            if eat(UInt8(ascii: "}")) { return found }
            repeat {
                space()
                guard let key = string(), eat(UInt8(ascii: ":")) else { return nil }
                space()
                if keys.contains(key) {
                    guard let value = scalarOrSkip() else { return nil }
                    found[key] = value
                } else {
                    guard skipValue() else { return nil }
                }
            } while eat(UInt8(ascii: ","))
            return eat(UInt8(ascii: "}")) ? found : nil
        }

        mutating func end() -> Bool {
            space()
            return i == bytes.count
        }

        /// A string at `i` (its quotes included), unescaped.
        mutating func string() -> String? {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
            i += 1
            var out: [UInt8] = []
            while i < bytes.count {
                let b = bytes[i]
                i += 1
                switch b {
                case UInt8(ascii: "\""):
                    return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard i < bytes.count else { return nil }
                    let e = bytes[i]
                    i += 1
                    switch e {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "u"):
                        guard var scalar = hex4() else { return nil }
                        if (0xD800..<0xDC00).contains(scalar), i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"),
                           bytes[i + 1] == UInt8(ascii: "u") {
                            i += 2
                            guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        out.append(contentsOf: String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8)
                    default: out.append(e)   // \" \\ \/
                    }
                default:
                    guard b >= 0x20 else { return nil }
                    out.append(b)
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16) else { return nil }
            i += 4
            return v
        }

        /// A string or a number as a value, anything else skipped as `.other`.
        mutating func scalarOrSkip() -> Value? {
            guard i < bytes.count else { return nil }
            if bytes[i] == UInt8(ascii: "\"") { return string().map(Value.string) }
            let start = i
            guard skipValue() else { return nil }
            let text = String(decoding: bytes[start..<i], as: UTF8.self)
            return Double(text).map(Value.number) ?? .other
        }

        /// Skips one value (nested ones whole); false when it is not well formed.
        mutating func skipValue() -> Bool {
            space()
            guard i < bytes.count else { return false }
            switch bytes[i] {
            case UInt8(ascii: "\""):
                return string() != nil
            case UInt8(ascii: "{"):
                return object([]) != nil
            case UInt8(ascii: "["):
                i += 1
                if eat(UInt8(ascii: "]")) { return true }
                repeat { guard skipValue() else { return false } } while eat(UInt8(ascii: ","))
                return eat(UInt8(ascii: "]"))
            default:
                let start = i
                while i < bytes.count, !([UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x09, 0x0A, 0x0D].contains(bytes[i])) { i += 1 }
                let word = String(decoding: bytes[start..<i], as: UTF8.self)
                return word == "true" || word == "false" || word == "null" || Double(word) != nil
            }
        }
    }
}
