/// Splits a SQL file into statements the way psql sends them: on `;` outside quotes, dollar
/// quotes and comments, and on psql's `\gexec`, which ends a query whose result cells are
/// themselves statements to run, in order ("treats each column of each row of the query's
/// output (if any) as an SQL statement to be executed"). The migrator runs each statement on its
/// own, in autocommit as psql does, so `CREATE INDEX CONCURRENTLY` runs outside a transaction
/// and a file may hold BEGIN/COMMIT. Any other backslash command is refused.
enum SQLScript {
    struct Statement: Sendable, Equatable {
        var sql: String
        /// Ended by `\gexec`: run it, then each non-null cell of its result.
        var generates = false
    }

    struct UnsupportedCommand: Error, CustomStringConvertible {
        var command: String
        var description: String { "psql's \\\(command) is not supported here (only \\gexec is)" }
    }

    static func statements(_ text: String) throws(UnsupportedCommand) -> [Statement] {
        var result: [Statement] = []
        var current: [Character] = []
        let chars = Array(text)
        var i = 0
        func flush(generates: Bool = false) {
            let s = String(current).trimmingCharacters(in: .whitespacesAndNewlines)
            if !s.isEmpty && !isOnlyComments(s) { result.append(Statement(sql: s, generates: generates)) }
            current.removeAll()
        }
        while i < chars.count {
            let c = chars[i]
            let next: Character? = i + 1 < chars.count ? chars[i + 1] : nil
            if c == "-" && next == "-" {                       // line comment
                while i < chars.count && chars[i] != "\n" { current.append(chars[i]); i += 1 }
                continue
            }
            if c == "/" && next == "*" {                       // block comment (nesting allowed)
                var depth = 0
                repeat {
                    if chars[i] == "/" && i + 1 < chars.count && chars[i + 1] == "*" { depth += 1; current += ["/", "*"]; i += 2; continue }
                    if chars[i] == "*" && i + 1 < chars.count && chars[i + 1] == "/" { depth -= 1; current += ["*", "/"]; i += 2; continue }
                    current.append(chars[i]); i += 1
                } while depth > 0 && i < chars.count
                continue
            }
            if c == "'" || c == "\"" {                         // quoted literal or identifier
                current.append(c); i += 1
                while i < chars.count {
                    current.append(chars[i])
                    if chars[i] == c {
                        if i + 1 < chars.count && chars[i + 1] == c { current.append(c); i += 2; continue }
                        i += 1; break
                    }
                    i += 1
                }
                continue
            }
            if c == "$", let tag = dollarTag(chars, at: i) {   // $tag$ ... $tag$
                current += tag; i += tag.count
                while i < chars.count {
                    if chars[i] == "$" && Array(chars[i..<min(i + tag.count, chars.count)]) == tag {
                        current += tag; i += tag.count; break
                    }
                    current.append(chars[i]); i += 1
                }
                continue
            }
            if c == ";" { flush(); i += 1; continue }
            if c == "\\" {                                     // a psql meta-command
                var j = i + 1
                while j < chars.count, chars[j].isLetter { j += 1 }
                let command = String(chars[(i + 1)..<j])
                guard command == "gexec" else { throw UnsupportedCommand(command: command) }
                flush(generates: true)
                i = j
                continue
            }
            current.append(c); i += 1
        }
        flush()
        return result
    }

    private static func dollarTag(_ chars: [Character], at start: Int) -> [Character]? {
        var j = start + 1
        while j < chars.count, chars[j] == "_" || chars[j].isLetter || (chars[j].isNumber && j > start + 1) { j += 1 }
        guard j < chars.count, chars[j] == "$" else { return nil }
        return Array(chars[start...j])
    }

    private static func isOnlyComments(_ s: String) -> Bool {
        s.split(separator: "\n").allSatisfy { $0.trimmingCharacters(in: .whitespaces).hasPrefix("--") || $0.trimmingCharacters(in: .whitespaces).isEmpty }
    }
}
