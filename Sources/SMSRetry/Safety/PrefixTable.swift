/// Number prefixes (E.164 digits, no `+`) mapped to values, read once from a generated data
/// file's lines, and looked up by a number's longest prefix: the one mechanism behind
/// `RecipientZones` and `RecipientCountries`.
struct PrefixTable<Value: Sendable>: Sendable {
    private let table: [Substring: Value]
    private let longest: Int

    /// One entry per line of `data` that `entry` reads (nil: the line is skipped).
    init(_ data: String, entry: (Substring) -> (prefix: Substring, value: Value)?) {
        var table: [Substring: Value] = [:]
        for line in data.split(separator: "\n") {
            if let (prefix, value) = entry(line) { table[prefix] = value }
        }
        self.table = table
        longest = table.keys.map(\.count).max() ?? 0
    }

    var count: Int { table.count }

    /// The value of the longest prefix of `digits` in the table.
    func longestMatch(_ digits: Substring) -> Value? {
        for length in stride(from: min(longest, digits.count), through: 1, by: -1) {
            if let value = table[digits.prefix(length)] { return value }
        }
        return nil
    }
}
