import Testing
@testable import SMSRetry

/// A generator that always yields the same value, so jitter can be pinned to its extremes.
struct FixedRandom: RandomNumberGenerator {
    var value: UInt64
    mutating func next() -> UInt64 { value }
}

@Suite struct RetryPolicyTests {
    var noJitter: RetryPolicy { var p = RetryPolicy.default; p.jitter = 0; return p }

    /// Every default code: (code, retryable, strategy, max retries, base delay), from the issue's table.
    static let table: [(Int, Bool, RetryStrategy?, Int, Double)] = [
        (30001, true, .exponential, 3, 60), (30003, true, .linear, 2, 300), (30008, true, .exponential, 1, 120),
        (30017, true, .exponential, 3, 300), (30022, true, .linear, 3, 300), (30023, true, .linear, 1, 21_600),
        (30027, true, .linear, 1, 21_600), (30410, true, .exponential, 2, 300), (30450, true, .linear, 2, 1200),
    ] + [21211, 21214, 21408, 21606, 21608, 21610, 21612, 21614, 21617, 30002, 30004, 30005, 30006, 30007,
         30024, 30032, 30034, 30036].map { ($0, false, nil, 0, 0) }

    @Test(arguments: table)
    func defaultTableDecisions(_ row: (Int, Bool, RetryStrategy?, Int, Double)) {
        let (code, retryable, strategy, max, base) = row
        let decision = noJitter.decide(.twilio(code: code), attemptsMade: 0)
        guard retryable else {
            #expect(decision == .giveUp(.notRetryable), "code \(code)")
            return
        }
        guard case .retry(let after, let rule, let counted) = decision else {
            Issue.record("code \(code) should be retried, got \(decision)")
            return
        }
        #expect(rule.strategy == strategy && rule.maxRetries == max && rule.baseDelay == base, "code \(code)")
        #expect(after == base, "first delay of \(code) is the base delay")
        #expect(counted)
        // The last allowed attempt is scheduled; one more is exhausted.
        #expect(noJitter.decide(.twilio(code: code), attemptsMade: max - 1) != .giveUp(.exhausted))
        #expect(noJitter.decide(.twilio(code: code), attemptsMade: max) == .giveUp(.exhausted))
    }

    @Test func seedDifferencesFollowTwilio() {
        // The seed design retried 30002/30004/30005 and refused 30008; Twilio says otherwise.
        for code in [30002, 30004, 30005] { #expect(noJitter.decide(.twilio(code: code), attemptsMade: 0) == .giveUp(.notRetryable)) }
        #expect(noJitter.decide(.twilio(code: 30008), attemptsMade: 0) != .giveUp(.notRetryable))
    }

    @Test func unknownCodes() {
        guard case .retry(let after, let rule, _) = noJitter.decide(.twilio(code: 30999), attemptsMade: 0) else {
            Issue.record("an unknown 3xxxx code is retried"); return
        }
        #expect(rule.strategy == .exponential && rule.maxRetries == 2 && after == 120)
        #expect(noJitter.decide(.twilio(code: 30999), attemptsMade: 2) == .giveUp(.exhausted))
        #expect(noJitter.decide(.twilio(code: 21999), attemptsMade: 0) == .giveUp(.notRetryable))
        #expect(noJitter.decide(.twilio(code: 11200), attemptsMade: 0) == .giveUp(.notRetryable))
        #expect(noJitter.rule(for: .twilio(code: 21999)).source == .unknown2xxxx)
        #expect(noJitter.rule(for: .twilio(code: 11200)).source == .unknownOther)
    }

    @Test func transportFailuresAreExponentialThreeTimesSixtySeconds() {
        let delays = (0..<3).map { n -> Double in
            guard case .retry(let after, _, true) = noJitter.decide(.transport, attemptsMade: n) else { return -1 }
            return after
        }
        #expect(delays == [60, 120, 240])
        #expect(noJitter.decide(.transport, attemptsMade: 3) == .giveUp(.exhausted))
    }

    @Test func throttlingAndBadCredentialsCountNoAttempt() {
        for code in [20429, 20003] {
            guard case .retry(_, _, let counted) = noJitter.decide(.twilio(code: code), attemptsMade: 99) else {
                Issue.record("\(code) is retried later, whatever the attempts"); continue
            }
            #expect(!counted)
        }
    }

    @Test func strategiesAndCap() {
        var p = noJitter
        p.maxDelay = 1000
        let exp = RetryRule.exponential(10, 100, "")
        let lin = RetryRule.linear(10, 100, "")
        #expect((0..<5).map { p.baseDelay(exp, attemptsMade: $0) } == [100, 200, 400, 800, 1000])
        #expect((0..<4).map { p.baseDelay(lin, attemptsMade: $0) } == [100, 200, 300, 400])
        #expect(p.baseDelay(RetryRule(retryable: true, strategy: .immediate, maxRetries: 3, baseDelay: 50), attemptsMade: 2) == 0)
        #expect(p.baseDelay(exp, attemptsMade: 10_000) == 1000, "no overflow on absurd attempt counts")
        #expect(RetryPolicy.default.maxDelay == 86_400)
    }

    @Test func jitterStaysWithinBounds() {
        var p = RetryPolicy.default   // ±10%
        var low = FixedRandom(value: 0)
        var high = FixedRandom(value: .max)
        guard case .retry(let lo, _, _) = p.decide(.twilio(code: 30003), attemptsMade: 0, using: &low),
              case .retry(let hi, _, _) = p.decide(.twilio(code: 30003), attemptsMade: 0, using: &high) else {
            Issue.record("30003 is retried"); return
        }
        #expect(lo == 270)
        #expect(abs(hi - 330) < 1e-9)
        var sys = SystemRandomNumberGenerator()
        for _ in 0..<1000 {
            guard case .retry(let d, _, _) = p.decide(.twilio(code: 30001), attemptsMade: 1, using: &sys) else { continue }
            #expect(d >= 108 && d <= 132)
        }
        p.maxDelay = 100
        guard case .retry(let capped, _, _) = p.decide(.twilio(code: 30003), attemptsMade: 0, using: &high) else { return }
        #expect(capped <= 100, "jitter never pushes past the cap")
    }
}
