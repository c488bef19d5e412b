import Foundation
import Testing
@testable import SMSRetry

/// The words the runner writes and the words the migrations' views and constraints read are one set.
@Suite struct LabelTests {
    func sql() throws -> String {
        try FileManager.default.contentsOfDirectory(atPath: Paths.migrations).filter { $0.hasSuffix(".up.sql") }.sorted()
            .map { try String(contentsOfFile: Paths.migrations + "/" + $0, encoding: .utf8) }.joined(separator: "\n")
    }

    /// Every quoted word compared with `->> 'key'` in the migrations (`= 'x'`, `<> 'x'`, `IN ('x', 'y')`).
    func compared(_ key: String, in text: String) -> Set<String> {
        let pattern = "->> '\(key)'(?:, '')?\\)?\\s*(?:=|<>|IN)\\s*\\(?((?:\\s*'[a-z_]+'\\s*,?)+)"
        let regex = try! NSRegularExpression(pattern: pattern)
        var words = Set<String>()
        for match in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            let list = String(text[Range(match.range(at: 1), in: text)!])
            words.formUnion(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines).trimmingCharacters(in: ["'"]) })
        }
        return words
    }

    @Test("the views compare history labels and reasons the runner writes")
    func viewsReadTheRunnersWords() throws {
        let text = try sql()
        let outcomes = compared("outcome", in: text), reasons = compared("reason", in: text)
        #expect(outcomes.count >= 4 && reasons.count >= 3, "found \(outcomes) and \(reasons): the pattern no longer matches the views")
        #expect(outcomes.isSubset(of: Set(HistoryLabel.allCases.map(\.rawValue))), "\(outcomes.subtracting(HistoryLabel.allCases.map(\.rawValue)))")
        #expect(reasons.isSubset(of: Set(CloseReason.allCases.map(\.rawValue))), "\(reasons.subtracting(CloseReason.allCases.map(\.rawValue)))")
    }

    @Test("final_status: the CHECK that migration 009's down puts back allows exactly FinalStatus")
    func finalStatusMatchesTheConstraint() throws {
        let text = try String(contentsOfFile: Paths.migrations + "/009_router_safe_state.down.sql", encoding: .utf8)
        let range = try #require(text.range(of: #"CHECK \(final_status IN \(([^)]*)\)\)"#, options: .regularExpression))
        let inside = text[range].drop { $0 != "(" }.dropFirst().drop { $0 != "(" }.dropFirst().prefix { $0 != ")" }
        let allowed = Set(inside.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: ["'"]) })
        #expect(allowed == Set(FinalStatus.allCases.map(\.rawValue)), "\(allowed)")
    }
}
