import Foundation

/// Finds the Twilio error code in what a router wrote about a failure it never reported:
/// `sms_metadata` (`error_code`, `twilio_error_code`, `code`, …) or the `error_message` text
/// (`HTTP 400 error: Unable to create record: …`, `https://www.twilio.com/docs/errors/21211`,
/// `Twilio error 30003`). A number followed by a unit ("30000 ms") or part of a phone number is
/// not a code.
public enum ErrorCodeParser {
    static let metadataKeys = ["error_code", "twilio_error_code", "errorCode", "ErrorCode", "code"]
    static let units: Set<String> = ["ms", "msec", "millis", "milliseconds", "s", "sec", "secs", "second", "seconds",
                                     "min", "mins", "minutes", "b", "bytes", "kb", "chars", "characters", "%", "ms)"]

    public static func code(errorMessage: String?, metadata: String?) -> Int? {
        fromMetadata(metadata) ?? errorMessage.flatMap(fromText)
    }

    static func fromMetadata(_ json: String?) -> Int? {
        guard let data = json?.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        for key in metadataKeys {
            if let n = object[key] as? Int, isCode(n) { return n }
            if let s = object[key] as? String, let n = Int(s.trimmingCharacters(in: .whitespaces)), isCode(n) { return n }
        }
        return nil
    }

    static func isCode(_ n: Int) -> Bool { (10_000...99_999).contains(n) }

    /// The first five-digit number standing alone, preferring one after "code", "error" or `/errors/`.
    static func fromText(_ text: String) -> Int? {
        let chars = Array(text.unicodeScalars)
        var candidates: [(code: Int, named: Bool)] = []
        var i = 0
        while i < chars.count {
            guard ("0"..."9").contains(chars[i]) else { i += 1; continue }
            var j = i
            while j < chars.count, ("0"..."9").contains(chars[j]) { j += 1 }
            defer { i = j }
            guard j - i == 5 else { continue }
            let before = i > 0 ? chars[i - 1] : " "
            if before == "+" || before == "." || before == "-" || before == "," { continue }
            if j < chars.count, [".", ",", "-"].contains(chars[j]), j + 1 < chars.count, ("0"..."9").contains(chars[j + 1]) { continue }
            // The word after it: a unit means a quantity, not a code.
            var k = j
            while k < chars.count, chars[k] == " " { k += 1 }
            var word = ""
            while k < chars.count, !chars[k].properties.isWhitespace, word.count < 12 { word.unicodeScalars.append(chars[k]); k += 1 }
            let unit = word.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: ".,;:)]"))
            if units.contains(unit) || (word.hasPrefix("%")) { continue }
            let prefix = String(String.UnicodeScalarView(chars[max(0, i - 12)..<i])).lowercased()
            let named = prefix.contains("code") || prefix.contains("error") || prefix.hasSuffix("/errors/")
            candidates.append((Int(String(String.UnicodeScalarView(chars[i..<j])))!, named))
        }
        return (candidates.first { $0.named } ?? candidates.first)?.code
    }
}
