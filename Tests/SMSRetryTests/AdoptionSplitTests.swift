import Foundation
import Testing
@testable import SMSRetry

/// What a first adoption run says about the failures it adopted, without a database.
@Suite struct AdoptionSplitTests {
    func adopted(_ error: String?, age: Double, policy: RetryPolicy = .default) -> Outcome {
        RetryStore.adopted(id: 1, errorMessage: error, metadata: nil, ageSeconds: age, policy: policy, maxAge: 86_400)
    }

    @Test func eachOutcomeOfAdoptionFallsInItsPart() {
        var split = AdoptionSplit()
        split.count(adopted("HTTP 400 error: Unable to create record: Twilio 30003", age: 120))   // transient: scheduled
        split.count(adopted("Read timed out. (read timeout=30000 ms)", age: 120))                // no code: scheduled, asked first
        split.count(adopted("https://www.twilio.com/docs/errors/21211", age: 120))               // invalid number: closed
        split.count(adopted("https://www.twilio.com/docs/errors/21211", age: 200_000))           // too old, whatever its code
        split.count(adopted("Twilio 30003", age: 200_000))
        #expect(split == AdoptionSplit(scheduled: 2, expired: 2, notRetryable: 1))
        #expect(split.total == 5)
    }

    @Test func aRuleWithNoResendIsExhaustedNotNotRetryable() throws {
        let policy = try RetryPolicy.parse(Data(#"{"codes": {"30003": {"retryable": true, "max_retries": 0}}}"#.utf8), source: "test")
        var split = AdoptionSplit()
        split.count(adopted("Twilio 30003", age: 60, policy: policy))
        #expect(split == AdoptionSplit(exhausted: 1))
    }

    @Test func theSummaryFieldsAddUpAndNameEachPart() {
        let split = AdoptionSplit(scheduled: 3821, expired: 6963, notRetryable: 3115)
        #expect(split.fields == "adopted=13899 adopted_scheduled=3821 adopted_expired=6963 adopted_not_retryable=3115")
        #expect(AdoptionSplit(scheduled: 1, exhausted: 2).fields
                == "adopted=3 adopted_scheduled=1 adopted_expired=0 adopted_not_retryable=0 adopted_exhausted=2")
        var summary = RunSummary()
        #expect(!summary.description.contains("adopted"), "nothing adopted, nothing said")
        summary.adoption = split
        #expect(summary.description.hasPrefix("claimed=0 sent=0 rescheduled=0 failed=0 skipped=0 adopted=13899 adopted_scheduled=3821 "))
        #expect(summary.adopted == 13899)
    }

    @Test func theHintSaysHowManyAndWhichFlag() {
        #expect(AdoptionSplit.hint(unreported: 0) == nil)
        let one = AdoptionSplit.hint(unreported: 1) ?? ""
        #expect(one.hasPrefix("1 failed outbound row the router never reported is not retried"))
        let many = AdoptionSplit.hint(unreported: 13, cap: 10_000) ?? ""
        #expect(many.hasPrefix("13 failed outbound rows") && many.contains("--adopt-failures"))
        #expect(AdoptionSplit.hint(unreported: 10_000, cap: 10_000)?.hasPrefix("10000 or more failed outbound rows") == true,
                "the count stops at its cap")
    }

    @Test func theMetricsFileHasTheSplit() {
        var summary = RunSummary()
        summary.adoption = AdoptionSplit(scheduled: 2, expired: 1)
        let text = RunMetrics.text(summary, exitCode: 0, due: 0, lastSuccess: 1000)
        #expect(text.contains("sms_retry_run_adopted_rows{result=\"scheduled\"} 2\n"))
        #expect(text.contains("sms_retry_run_adopted_rows{result=\"expired\"} 1\n"))
        #expect(text.contains("sms_retry_run_adopted_rows{result=\"not_retryable\"} 0\n"))
    }
}
