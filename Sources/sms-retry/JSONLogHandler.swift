import Foundation
import Logging
import SMSRetry

/// One JSON object per line on stderr: `{"time", "level", "label", "message", ...metadata}`.
/// Metadata keys stay as the library wrote them (`sms.log_id`, `run.claimed`, …); values are
/// already masked where they could identify a person.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var object: [String: Any] = [
            "time": ISO8601DateFormatter().string(from: SMSRetryClock.system.wallNow()),
            "level": event.level.rawValue,
            "label": label,
            "message": "\(event.message)",
        ]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            object[key] = Self.jsonValue(value)
        }
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(UInt8(ascii: "\n"))
        FileHandle.standardError.write(data)   // one write per line: lines never interleave
    }

    /// A number stays a number: a value written as an integer (`42`, `-3`) or a decimal (`0.25`)
    /// becomes a JSON number; anything else (a masked phone number, a SID, `transport`, a number
    /// with leading zeros or a `+`, which is an identifier, not a quantity) stays a string.
    /// Arrays and dictionaries keep their shape.
    static func jsonValue(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let s): return number(s) ?? s
        case .stringConvertible(let c):
            switch c {
            case let i as any BinaryInteger:
                if let n = Int64(exactly: i) { return NSNumber(value: n) }
                return "\(c)"
            case let d as Double where d.isFinite: return NSNumber(value: d)
            case let b as Bool: return b
            default: return number("\(c)") ?? "\(c)"
            }
        case .array(let values): return values.map(jsonValue)
        case .dictionary(let values): return values.mapValues(jsonValue)
        }
    }

    /// `s` as a JSON number when it is written as one: an optional `-`, digits without a leading
    /// zero (unless the zero is alone), an optional fraction; at most 15 significant digits, so
    /// that it reads back as written.
    static func number(_ s: String) -> NSNumber? {
        let u = Array(s.utf8)
        var i = u.first == UInt8(ascii: "-") ? 1 : 0
        let digitsStart = i
        while i < u.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(u[i]) { i += 1 }
        let intDigits = i - digitsStart
        guard intDigits > 0, intDigits == 1 || u[digitsStart] != UInt8(ascii: "0") else { return nil }
        var fraction = 0
        if i < u.count, u[i] == UInt8(ascii: ".") {
            i += 1
            let start = i
            while i < u.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(u[i]) { i += 1 }
            fraction = i - start
            guard fraction > 0 else { return nil }
        }
        guard i == u.count, intDigits + fraction <= 15 else { return nil }
        return fraction == 0 ? Int64(s).map { NSNumber(value: $0) } : Double(s).map { NSNumber(value: $0) }
    }
}
