import Foundation
import Testing
@testable import SMSRetry

@Suite struct PolicyFileTests {
    func parse(_ json: String) throws -> RetryPolicy {
        try RetryPolicy.parse(Data(json.utf8), source: "test.json")
    }

    func error(_ json: String) -> String {
        do { _ = try parse(json); return "accepted" } catch { return "\(error)" }
    }

    @Test func overridesMergeOntoTheDefaults() throws {
        let p = try parse("""
            {"max_delay_seconds": 3600, "jitter": 0,
             "codes": {"30003": {"max_retries": 5}, "30008": {"retryable": false},
                       "21211": {"strategy": "linear", "base_delay_seconds": 10}, "12345": {"max_retries": 1}},
             "transport": {"max_retries": 6}, "unknown_3xxxx": {"retryable": false}}
            """)
        #expect(p.maxDelay == 3600 && p.jitter == 0)
        #expect(p.codes[30003] == RetryRule(retryable: true, strategy: .linear, maxRetries: 5, baseDelay: 300,
                                            meaning: "unreachable destination handset"))
        #expect(p.codes[30008]?.retryable == false)
        #expect(p.codes[21211]?.retryable == true && p.codes[21211]?.strategy == .linear, "giving a strategy turns retries on")
        #expect(p.codes[12345]?.maxRetries == 1)
        #expect(p.transport.maxRetries == 6 && p.transport.baseDelay == 60)
        #expect(p.unknown3xxxx.retryable == false)
        #expect(p.codes[30001] == RetryPolicy.default.codes[30001], "untouched codes keep their defaults")
    }

    @Test func badFilesNameTheKeyAndTheProblem() {
        #expect(error("not json") == "policy test.json: not valid JSON: line 1, column 1: expected a value (an object, array, string, number, true, false or null), found 'n'")
        // Where a person editing the file looks: the line and the column of the first mistake.
        #expect(error("{\n  \"jitter\": 0.1,\n  \"codes\": {\"30003\": {\"max_retries\": 3}\n}\n")
                == "policy test.json: not valid JSON: line 5, column 1: expected ',' or '}', found end of file")
        #expect(error("{\n  \"jitter\": 0.1\n  \"max_delay_seconds\": 60\n}")
                == "policy test.json: not valid JSON: line 3, column 3: expected ',' or '}', found '\"'")
        #expect(error("{\"jitter\" 0.1}") == "policy test.json: not valid JSON: line 1, column 11: expected ':' after the key, found '0'")
        #expect(error("{\"codes\": {\"30003\": {\"max_retries\": 03}}}").hasPrefix("policy test.json: not valid JSON: line 1, column 37: a number cannot start with 0"))
        #expect(error("{'jitter': 0.1}") == "policy test.json: not valid JSON: line 1, column 2: expected a key in double quotes, found '''")
        #expect(error("[1]") == "policy test.json: the top level must be a JSON object")
        #expect(error(#"{"codes": {"30003": {"max_retries": 12}}}"#) == "policy test.json: codes.30003.max_retries: 12 is out of range 0–10")
        #expect(error(#"{"codes": {"30003": {"max_retries": 1.5}}}"#) == "policy test.json: codes.30003.max_retries: must be a whole number")
        #expect(error(#"{"codes": {"30003": {"base_delay_seconds": -1}}}"#) == "policy test.json: codes.30003.base_delay_seconds: -1 is out of range 0–604800")
        #expect(error(#"{"codes": {"30003": {"base_delay_seconds": 700000}}}"#) == "policy test.json: codes.30003.base_delay_seconds: 700000 is out of range 0–604800")
        #expect(error(#"{"max_delay_seconds": 604801}"#) == "policy test.json: max_delay_seconds: 604801 is out of range 0–604800")
        #expect(error(#"{"codes": {"30003": {"strategy": "fibonacci"}}}"#) == "policy test.json: codes.30003.strategy: must be one of exponential, linear, immediate")
        #expect(error(#"{"codes": {"30003": {"retryable": 1}}}"#) == "policy test.json: codes.30003.retryable: must be true or false")
        #expect(error(#"{"codes": {"30003": {"max_retries": "3"}}}"#) == "policy test.json: codes.30003.max_retries: must be a number")
        #expect(error(#"{"codes": {"abc": {}}}"#) == #"policy test.json: codes.abc: "abc" is not a five-digit Twilio error code"#)
        #expect(error(#"{"codes": {"20429": {"max_retries": 1}}}"#).contains("codes.20429: 20429 is handled by a fixed rule"))
        #expect(error(#"{"codes": {"30003": {"tries": 1}}}"#).hasPrefix("policy test.json: codes.30003.tries: unknown field"))
        #expect(error(#"{"maxRetries": 3}"#).hasPrefix("policy test.json: maxRetries: unknown key"))
        #expect(error(#"{"jitter": 0.9}"#) == "policy test.json: jitter: 0.9 is out of range 0–0.5")
    }

    @Test func missingFileIsNamed() {
        #expect(throws: PolicyError.self) { try RetryPolicy.load(file: "/nonexistent/policy.json") }
        do { _ = try RetryPolicy.load(file: "/nonexistent/policy.json") } catch {
            #expect("\(error)" == "policy /nonexistent/policy.json: cannot read the file")
        }
    }
}
