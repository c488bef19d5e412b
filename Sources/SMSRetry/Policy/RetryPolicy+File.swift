import Foundation

/// A policy file was rejected. The message names the file, the key and the problem.
public struct PolicyError: Error, CustomStringConvertible, Sendable {
    public var source: String
    public var key: String
    public var problem: String
    public var description: String {
        key.isEmpty ? "policy \(source): \(problem)" : "policy \(source): \(key): \(problem)"
    }
}

extension RetryPolicy {
    static let maxRetriesRange = 0...10
    static let delayRange = 0.0...(7 * 86_400.0)

    /// The default policy with an operator's overrides from a JSON file:
    ///
    ///     { "max_delay_seconds": 86400, "jitter": 0.1,
    ///       "codes": { "30003": { "retryable": true, "strategy": "linear",
    ///                              "max_retries": 2, "base_delay_seconds": 300 },
    ///                  "30008": { "retryable": false } },
    ///       "transport": { "max_retries": 5 },
    ///       "unknown_3xxxx": { "retryable": false },
    ///       "metadata_keys": { "from": "twilio.from", "media_urls": "mms.urls", "kind": "category" },
    ///       "message_kinds": { "otp": { "max_age_seconds": 300 },
    ///                          "marketing": { "quiet_hours": "21:00-08:00", "us_state_hours": true } },
    ///       "default_kind": "default" }
    ///
    /// A rule's missing fields keep the default rule's values (a code new to the table starts
    /// from exponential, 0 retries, 0 s).
    public static func load(file path: String, over base: RetryPolicy = .default) throws -> RetryPolicy {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PolicyError(source: path, key: "", problem: "cannot read the file")
        }
        return try parse(data, source: path, over: base)
    }

    public static func parse(_ data: Data, source: String, over base: RetryPolicy = .default) throws -> RetryPolicy {
        func fail(_ key: String, _ problem: String) -> PolicyError { PolicyError(source: source, key: key, problem: problem) }
        let json: JSONValue
        do { json = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw fail("", JSONSyntax.firstProblem(data).map { "not valid JSON: \($0)" } ?? "not valid JSON")
        }
        guard case .object(let top) = json else { throw fail("", "the top level must be a JSON object") }
        var policy = base
        for (key, value) in top {
            switch key {
            case "max_delay_seconds":
                policy.maxDelay = try number(value, key, in: delayRange, source)
            case "jitter":
                policy.jitter = try number(value, key, in: 0...0.5, source)
            case "transport":
                policy.transport = try rule(value, key, over: policy.transport, source)
            case "unknown_3xxxx":
                policy.unknown3xxxx = try rule(value, key, over: policy.unknown3xxxx, source)
            case "codes":
                guard case .object(let codes) = value else { throw fail(key, "must be an object of code → rule") }
                for (codeText, ruleValue) in codes {
                    let name = "codes.\(codeText)"
                    guard let code = Int(codeText), (10000...99999).contains(code) else {
                        throw fail(name, "\"\(codeText)\" is not a five-digit Twilio error code")
                    }
                    guard code != throttledCode, code != authenticationCode else {
                        throw fail(name, "\(code) is handled by a fixed rule (throttling/authentication) and cannot be overridden")
                    }
                    let start = policy.codes[code] ?? RetryRule(retryable: false, meaning: "operator-defined")
                    policy.codes[code] = try rule(ruleValue, name, over: start, source)
                }
            case "metadata_keys":
                guard case .object(let keys) = value else { throw fail(key, "must be an object of name → key path") }
                for (name, pathValue) in keys {
                    guard case .string(let path) = pathValue, !path.isEmpty, !path.contains(" ") else {
                        throw fail("\(key).\(name)", "must be a key path such as \"twilio.from\"")
                    }
                    guard policy.messageKeys.set(name, path) else {
                        throw fail("\(key).\(name)", "unknown name (expected \(MessageKeys.names.joined(separator: ", ")))")
                    }
                }
            case "message_kinds":
                guard case .object(let kinds) = value else { throw fail(key, "must be an object of kind → its limits") }
                for (name, kindValue) in kinds {
                    guard !name.isEmpty else { throw fail(key, "a kind's name cannot be empty") }
                    policy.kinds.kinds[name] = try kind(kindValue, "\(key).\(name)", over: policy.kinds.kinds[name] ?? MessageKind(), source)
                }
            case "default_kind":
                guard case .string(let name) = value, !name.isEmpty else { throw fail(key, "must be the name of a kind") }
                policy.kinds.defaultKind = name
            default:
                if try spendKey(key, value, into: &policy.spend, source) { continue }
                throw fail(key, "unknown key (expected max_delay_seconds, jitter, codes, transport, unknown_3xxxx, metadata_keys, message_kinds, default_kind, \(SpendPolicy.keys.joined(separator: ", ")))")
            }
        }
        guard policy.kinds.kinds[policy.kinds.defaultKind] != nil else {
            throw fail("default_kind", "\"\(policy.kinds.defaultKind)\" is not one of message_kinds (\(policy.kinds.kinds.keys.sorted().joined(separator: ", ")))")
        }
        return policy
    }

    private static func kind(_ value: JSONValue, _ key: String, over start: MessageKind, _ source: String) throws -> MessageKind {
        func fail(_ field: String, _ problem: String) -> PolicyError { PolicyError(source: source, key: "\(key).\(field)", problem: problem) }
        guard case .object(let object) = value else { throw PolicyError(source: source, key: key, problem: "must be an object") }
        var kind = start
        for (field, fieldValue) in object {
            switch field {
            case "max_age_seconds":
                if case .null = fieldValue { kind.maxAge = nil; continue }
                kind.maxAge = try number(fieldValue, "\(key).\(field)", in: 1...(30 * 86_400.0), source)
            case "quiet_hours":
                if case .null = fieldValue { kind.hours = nil; continue }
                guard case .string(let text) = fieldValue, let hours = SendingHours.parseQuiet(text) else {
                    throw fail(field, "must be a span of local time such as \"21:00-08:00\" (or null for none)")
                }
                kind.hours = hours
            case "us_state_hours":
                guard case .bool(let flag) = fieldValue else { throw fail(field, "must be true or false") }
                kind.usStateHours = flag
            case "unknown_zone":
                guard case .string(let text) = fieldValue, text == "quiet" || text == "send" else {
                    throw fail(field, "must be \"quiet\" (never sent) or \"send\"")
                }
                kind.unknownZoneIsQuiet = text == "quiet"
            default:
                throw fail(field, "unknown field (expected max_age_seconds, quiet_hours, us_state_hours, unknown_zone)")
            }
        }
        if kind.usStateHours && kind.hours == nil { throw fail("us_state_hours", "needs quiet_hours for the kind") }
        return kind
    }

    private static func rule(_ value: JSONValue, _ key: String, over start: RetryRule, _ source: String) throws -> RetryRule {
        guard case .object(let object) = value else {
            throw PolicyError(source: source, key: key, problem: "must be an object")
        }
        var rule = start
        var retryableGiven = false
        for (field, fieldValue) in object {
            let name = "\(key).\(field)"
            switch field {
            case "retryable":
                guard case .bool(let flag) = fieldValue else {
                    throw PolicyError(source: source, key: name, problem: "must be true or false")
                }
                rule.retryable = flag
                retryableGiven = true
            case "strategy":
                guard case .string(let text) = fieldValue, let strategy = RetryStrategy(rawValue: text) else {
                    throw PolicyError(source: source, key: name, problem: "must be one of exponential, linear, immediate")
                }
                rule.strategy = strategy
            case "max_retries":
                let n = try number(fieldValue, name, in: Double(maxRetriesRange.lowerBound)...Double(maxRetriesRange.upperBound), source)
                guard n == n.rounded() else { throw PolicyError(source: source, key: name, problem: "must be a whole number") }
                rule.maxRetries = Int(n)
            case "base_delay_seconds":
                rule.baseDelay = try number(fieldValue, name, in: delayRange, source)
            case "meaning":
                guard case .string(let text) = fieldValue else { throw PolicyError(source: source, key: name, problem: "must be a string") }
                rule.meaning = text
            case "sender_fault":
                guard case .bool(let flag) = fieldValue else {
                    throw PolicyError(source: source, key: name, problem: "must be true or false")
                }
                rule.senderFault = flag
            default:
                throw PolicyError(source: source, key: name,
                                  problem: "unknown field (expected retryable, strategy, max_retries, base_delay_seconds, meaning, sender_fault)")
            }
        }
        // Giving retry parameters implies the operator wants retries unless they said otherwise.
        if !retryableGiven && (object["max_retries"] != nil || object["strategy"] != nil) { rule.retryable = true }
        return rule
    }

    private static func number(_ value: JSONValue, _ key: String, in range: ClosedRange<Double>, _ source: String) throws -> Double {
        guard case .number(let n) = value else {
            throw PolicyError(source: source, key: key, problem: "must be a number")
        }
        guard range.contains(n) else {
            throw PolicyError(source: source, key: key, problem: "\(format(n)) is out of range \(format(range.lowerBound))–\(format(range.upperBound))")
        }
        return n
    }

    private static func format(_ n: Double) -> String {
        n == n.rounded() && abs(n) < 1e15 ? String(Int(n)) : String(n)
    }
}

/// A parsed JSON value, so a policy file's types are checked exactly (a `true` is never a 1).
enum JSONValue: Decodable, Sendable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }
}
