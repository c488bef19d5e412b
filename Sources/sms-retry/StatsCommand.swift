import ArgumentParser
import Foundation
import SMSRetry

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Print the analytics views: aligned tables for a person, JSON for a script.",
        discussion: "Exit: 0; 2 usage, or the views are missing (run sms-retry migrate); 3 database unreachable or a DBA's time limit.")

    @OptionGroup var global: GlobalOptions
    @Flag(help: "One JSON object keyed by view.") var json = false
    @Option(name: [.customLong("period"), .customLong("window")],
            parsing: .unconditional,
            help: "Period of overview, by_attempt, by_error_code and health (sets sms_retry.period; 90s, 15m, 2h, 7d). --window is its old name.")
    var period: DurationArgument?
    @Option(parsing: .unconditional, help: "Days shown by daily (sets sms_retry.days).") var days: Int?
    @Option(parsing: .unconditional, help: "Estimated price of one SMS segment (sets sms_retry.price_per_segment).") var pricePerSegment: Double?

    func validate() throws {
        try period?.check("--period", 60...DurationArgument.longest)
        try Bounds.check("--days", days, 1...3650)
        try Bounds.check("--price-per-segment", pricePerSegment, 0...100)
    }

    func run() async throws {
        let db = try await global.connect(.reads)
        let analytics = Analytics(database: db)
        do {
            if let period { try await analytics.set("sms_retry.period", "\(Int(period.seconds)) seconds") }
            if let days { try await analytics.set("sms_retry.days", String(days)) }
            if let pricePerSegment { try await analytics.set("sms_retry.price_per_segment", String(pricePerSegment)) }
            if json {
                print(try await analytics.json())
                return
            }
            for (i, view) in Analytics.views.enumerated() {
                if i > 0 { print("") }
                print("== \(view)")
                print(TextTable.render(try await analytics.rows(of: view)))
            }
        } catch let error as DatabaseError {
            throw await databaseFailure(error, on: db, what: error.statement.map { "the view \($0)" } ?? "a view of stats")
        }
    }
}

/// Aligned columns, numbers right-aligned, NULL as blank.
enum TextTable {
    static func render(_ rows: PGRows) -> String {
        let cells = rows.rows.map { $0.map { $0 ?? "" } }
        let widths = rows.columns.indices.map { c in max(rows.columns[c].count, cells.map { $0[c].count }.max() ?? 0) }
        let numeric = rows.columns.indices.map { c in !cells.isEmpty && cells.allSatisfy { Double($0[c]) != nil || $0[c].isEmpty } }
        func line(_ values: [String]) -> String {
            values.enumerated().map { c, v in
                let pad = String(repeating: " ", count: widths[c] - v.count)
                return numeric[c] ? pad + v : v + pad
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        var out = [line(rows.columns), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
        out += cells.map(line)
        if cells.isEmpty { out.append("(no rows)") }
        return out.joined(separator: "\n")
    }
}
