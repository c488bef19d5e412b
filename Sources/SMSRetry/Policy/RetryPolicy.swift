/// How a failure is retried, per Twilio error code. Pure: no I/O, no clock; randomness is
/// injected so tests can pin jitter.
public struct RetryPolicy: Sendable, Equatable {
    /// Rules by Twilio error code.
    public var codes: [Int: RetryRule]
    /// HTTP 5xx and transport errors (timeout, refused, reset): the request may not have
    /// reached Twilio, or Twilio failed.
    public var transport: RetryRule
    /// A 3xxxx code the table does not list (Twilio keeps adding codes).
    public var unknown3xxxx: RetryRule
    /// Upper bound for any computed delay, in seconds (default 24 h).
    public var maxDelay: Double
    /// Relative jitter: a delay d becomes uniform in d·(1-j)…d·(1+j). 0 disables it.
    public var jitter: Double
    /// Where a row's `sms_metadata` keeps the original message's sender and content.
    public var messageKeys = MessageKeys()
    /// Kinds of message (`sms_metadata.category`): each its own maximum age and sending hours.
    public var kinds = MessageKinds.standard
    /// What resends may cost: countries, a daily budget, a range's hourly cap, pumping blocks.
    public var spend = SpendPolicy()

    public init(codes: [Int: RetryRule], transport: RetryRule, unknown3xxxx: RetryRule,
                maxDelay: Double = 86_400, jitter: Double = 0.1) {
        self.codes = codes
        self.transport = transport
        self.unknown3xxxx = unknown3xxxx
        self.maxDelay = maxDelay
        self.jitter = jitter
    }

    /// Twilio's "too many requests": the request was not processed.
    public static let throttledCode = 20429
    /// Twilio's "authentication failed": a configuration error, not the message's.
    public static let authenticationCode = 20003

    /// The rule that applies to `failure`, and where it came from.
    public func rule(for failure: Failure) -> (rule: RetryRule, source: RuleSource) {
        switch failure {
        case .transport:
            return (transport, .transport)
        case .twilio(let code):
            if let rule = codes[code] { return (rule, .table) }
            switch code {
            case 30000..<40000: return (unknown3xxxx, .unknown3xxxx)
            case 20000..<30000: return (.permanent("unknown 2xxxx code: a request Twilio refused"), .unknown2xxxx)
            default: return (.permanent("unknown code outside 2xxxx/3xxxx"), .unknownOther)
            }
        }
    }

    /// What to do after a failure, given how many resends were already made (`retry_count`
    /// after counting this failure; 0 for the router's original send).
    public func decide(_ failure: Failure, attemptsMade: Int,
                       using random: inout some RandomNumberGenerator) -> Decision {
        if case .twilio(let code) = failure, code == Self.throttledCode || code == Self.authenticationCode {
            // Not the message's fault: retry later and count nothing.
            return .retry(after: jittered(transport.baseDelay, using: &random), rule: transport, counted: false)
        }
        let (rule, _) = rule(for: failure)
        guard rule.retryable else { return .giveUp(.notRetryable) }
        guard attemptsMade < rule.maxRetries else { return .giveUp(.exhausted) }
        return .retry(after: jittered(baseDelay(rule, attemptsMade: attemptsMade), using: &random),
                      rule: rule, counted: true)
    }

    public func decide(_ failure: Failure, attemptsMade: Int) -> Decision {
        var generator = SystemRandomNumberGenerator()
        return decide(failure, attemptsMade: attemptsMade, using: &generator)
    }

    /// The delay before jitter: exponential `base·2^n`, linear `base·(n+1)`, immediate 0,
    /// capped at `maxDelay`.
    public func baseDelay(_ rule: RetryRule, attemptsMade n: Int) -> Double {
        let raw: Double
        switch rule.strategy {
        case .exponential: raw = rule.baseDelay * Double(1 << min(max(n, 0), 40))
        case .linear: raw = rule.baseDelay * Double(max(n, 0) + 1)
        case .immediate: raw = 0
        }
        return min(raw, maxDelay)
    }

    func jittered(_ delay: Double, using random: inout some RandomNumberGenerator) -> Double {
        guard jitter > 0, delay > 0 else { return delay }
        // One 53-bit draw mapped onto [0, 1]: no rejection loop, so any generator (a fixed one
        // in tests) gives an answer, and the extremes are reachable.
        let unit = Double(random.next() >> 11) / Double((1 as UInt64) << 53 - 1)
        let factor = 1 - jitter + 2 * jitter * unit
        return min(delay * factor, maxDelay)
    }
}

/// What went wrong with one send.
public enum Failure: Sendable, Hashable {
    /// Twilio answered with this error code (at the API call or in a status callback).
    case twilio(code: Int)
    /// HTTP 5xx without a known code, or no HTTP answer at all.
    case transport
}

public enum RuleSource: String, Sendable {
    case table, transport
    case unknown3xxxx = "default_3xxxx"
    case unknown2xxxx = "default_2xxxx"
    case unknownOther = "default_other"
}

public enum Decision: Sendable, Equatable {
    /// Try again after `after` seconds. `counted` is false for throttling and authentication
    /// failures, which are not the message's fault and use no attempt.
    case retry(after: Double, rule: RetryRule, counted: Bool)
    case giveUp(GiveUpReason)
}

public enum GiveUpReason: String, Sendable {
    case notRetryable = "not_retryable"
    case exhausted
}

public enum RetryStrategy: String, Sendable, CaseIterable {
    case exponential, linear, immediate
}

public struct RetryRule: Sendable, Equatable {
    public var retryable: Bool
    public var strategy: RetryStrategy
    public var maxRetries: Int
    /// Seconds.
    public var baseDelay: Double
    /// Twilio's meaning of the code, for operators.
    public var meaning: String
    /// The code says the sender cannot send (unregistered, unverified, not the account's, not
    /// SMS-capable, over its campaign's throughput), not that this message is bad: a run stops
    /// that sender and hands its rows back uncounted.
    public var senderFault = false

    public init(retryable: Bool, strategy: RetryStrategy = .exponential, maxRetries: Int = 0,
                baseDelay: Double = 0, meaning: String = "", senderFault: Bool = false) {
        self.retryable = retryable
        self.strategy = strategy
        self.maxRetries = maxRetries
        self.baseDelay = baseDelay
        self.meaning = meaning
        self.senderFault = senderFault
    }

    /// This rule, marked as a sender fault.
    public var ofTheSender: RetryRule { var r = self; r.senderFault = true; return r }

    public static func permanent(_ meaning: String) -> RetryRule { RetryRule(retryable: false, meaning: meaning) }
    public static func exponential(_ max: Int, _ base: Double, _ meaning: String) -> RetryRule {
        RetryRule(retryable: true, strategy: .exponential, maxRetries: max, baseDelay: base, meaning: meaning)
    }
    public static func linear(_ max: Int, _ base: Double, _ meaning: String) -> RetryRule {
        RetryRule(retryable: true, strategy: .linear, maxRetries: max, baseDelay: base, meaning: meaning)
    }
}
