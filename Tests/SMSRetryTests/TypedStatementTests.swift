import Foundation
import Testing
@testable import SMSRetry

/// Typed statements encode their parameters as the positional text the statements always took,
/// and decode rows naming what is wrong with them.
@Suite struct TypedStatementTests {
    @Test func parametersAreTheTextLibpqReceives() {
        let at = Date(timeIntervalSince1970: 1_796_660_000.5)
        #expect(PGParameters.encode(5, 300.0, true, false, Int32(7), Int64(-1)) == ["5", "300.0", "t", "f", "7", "-1"])
        #expect(PGParameters.encode(at, Date?.none, String?.none, "x") == ["2026-12-07T16:13:20.500Z", nil, nil, "x"])
        #expect(PGParameters.encode([1, 2], ["a\"b", nil] as [String?], [0.5]) == ["{\"1\",\"2\"}", "{\"a\\\"b\",NULL}", "{\"0.5\"}"])
        #expect(JSONText.timestamp(at) == at.pgText, "one timestamp text for JSON and parameters")
    }

    @Test func theClaimTakesItsParametersInOrder() {
        let claim = ClaimDue(limit: 50, lease: 300, now: nil, runID: "run-1", uncertainOnly: true, keyPaths: ["from", "kind"])
        #expect(claim.parameters == ["50", "300.0", nil, "run-1", "t", "{\"from\",\"kind\"}"])
        #expect(claim.name == "claimDue" && claim.sql == Queries.claimDue)
    }

    @Test func theRecordEncodesEachColumnOnce() {
        var o = Outcome(id: 9, kind: .retry)
        o.counted = true
        o.delay = 60
        let record = OutcomesRecord(now: nil, keep: 20, outcomes: [o, Outcome(id: 10, kind: .release)])
        let p = record.parameters
        #expect(p.count == 2 + Outcome.recordColumns.count)
        #expect(p[0] == nil && p[1] == "20")
        let column = { (name: String) in p[2 + Outcome.recordColumns.firstIndex { $0.name == name }!] }
        #expect(column("id") == "{\"9\",\"10\"}")
        #expect(column("counted") == "{\"t\",\"f\"}")
        #expect(column("delay") == "{\"60.0\",NULL}")
        #expect(column("kind") == "{\"retry\",\"release\"}")
    }

    @Test func aRowThatDoesNotDecodeNamesItsColumn() {
        func row(_ pairs: [(String, String?)]) -> PGRow { PGRows(columns: pairs.map(\.0), rows: [pairs.map(\.1)], affected: 1)[0] }
        #expect(throws: RowDecodingError(column: "deleted", problem: .noColumn)) { try RouterWordRead.Row(row([("id", "1")])) }
        #expect(throws: RowDecodingError(column: "id", problem: .null)) { try RouterWordRead.Row(row([("id", nil), ("deleted", "t")])) }
        #expect(throws: RowDecodingError(column: "id", problem: .unreadable("one"))) {
            try RouterWordRead.Row(row([("id", "one"), ("deleted", "t")]))
        }
        let word = try? RouterWordRead.Row(row([("id", "4"), ("deleted", nil)]))
        #expect(word?.id == 4 && word?.deleted == false)
    }
}
