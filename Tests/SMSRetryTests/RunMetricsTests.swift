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
}
