import Testing
@testable import SMSRetry

@Suite struct CheckLineTests {
    @Test func theWorstLineIsTheExitCode() {
        let ok = CheckLine(.ok, "table", "public.sms_usage_logs")
        let warning = CheckLine(.warning, "time zone", "created_at is read in Europe/Paris")
        let problem = CheckLine(.problem, "migrations", "1 not applied: 008_message_safety", fix: "sms-retry migrate")
        #expect(CheckLine.exitCode([]) == 0)
        #expect(CheckLine.exitCode([ok, ok]) == 0)
        #expect(CheckLine.exitCode([ok, warning]) == 1)
        #expect(CheckLine.exitCode([warning, problem, ok]) == 2)
    }

    @Test func aLineNamesItsLevelSubjectAndFix() {
        #expect(CheckLine(.ok, "table", "public.sms_usage_logs").text == "ok       table: public.sms_usage_logs")
        #expect(CheckLine(.problem, "migrations", "1 not applied: 008_message_safety", fix: "sms-retry migrate").text
                == "problem  migrations: 1 not applied: 008_message_safety. Fix: sms-retry migrate")
    }
}
