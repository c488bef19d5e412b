import Foundation
import Testing
@testable import SMSRetry

/// The metrics file's text and its last-success rule, without a database.
@Suite struct RunMetricsTests {
    @Test func lastSuccessFollowsReadmesRuleExitZeroAndOne() {
        for code: Int32 in [0, 1] {
            #expect(RunMetrics.lastSuccess(exitCode: code, now: 1000) { 10 } == 1000, "exit \(code) is a success")
        }
        for code: Int32 in [2, 3, 4] {
            #expect(RunMetrics.lastSuccess(exitCode: code, now: 1000) { 10 } == 10, "exit \(code) keeps the previous success")
            #expect(RunMetrics.lastSuccess(exitCode: code, now: 1000) { nil } == nil)
        }
        let text = RunMetrics.text(RunSummary(), exitCode: 1, due: 0, lastSuccess: 1000)
        #expect(text.contains("sms_retry_last_success_timestamp_seconds 1000\n"))
    }

    @Test("the spend guard's held and closed resends, by reason; budget_held makes the run exit 1")
    func spendGuardedRows() {
        var summary = RunSummary()
        summary.countryNotAllowed = 600
        summary.budgetHeld = 147
        summary.pumpingHeld = 67
        #expect(summary.exitCode == 1)
        #expect(summary.description.contains("country_not_allowed=600 budget_held=147 pumping_held=67"), "\(summary)")
        let text = RunMetrics.text(summary, exitCode: summary.exitCode, due: 0, lastSuccess: nil)
        #expect(text.contains("sms_retry_run_spend_guarded_rows{reason=\"country_not_allowed\"} 600\n"))
        #expect(text.contains("sms_retry_run_spend_guarded_rows{reason=\"budget_held\"} 147\n"))
        #expect(text.contains("sms_retry_run_spend_guarded_rows{reason=\"prefix_held\"} 0\n"))
        #expect(text.contains("sms_retry_run_spend_guarded_rows{reason=\"pumping_held\"} 67\n"))
        var quiet = RunSummary()
        quiet.countryNotAllowed = 3
        quiet.prefixHeld = 2
        #expect(quiet.exitCode == 0, "a country closed or a range held is the guard doing its job, not a failure")
    }
}
