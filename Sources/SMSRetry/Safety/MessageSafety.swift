import Foundation

/// A kind of message (`sms_metadata.category` by default: `otp`, `marketing`, …): how old it may
/// be when resent, and when it may not be sent at all.
public struct MessageKind: Sendable, Equatable {
    /// Seconds after `created_at` past which the message is not resent; nil: `--max-age`.
    public var maxAge: Double?
    /// The hours it may be sent in the recipient's local time; nil: any time.
    public var hours: SendingHours?
    /// Also keep to the US states' stricter hours (`StateSendingHours`) for US numbers.
    public var usStateHours = false
    /// A number whose time zone the data does not know counts as quiet (never sent) when the
    /// kind has hours; false sends it as if it were not.
    public var unknownZoneIsQuiet = true

    public init(maxAge: Double? = nil, hours: SendingHours? = nil, usStateHours: Bool = false, unknownZoneIsQuiet: Bool = true) {
        self.maxAge = maxAge
        self.hours = hours
        self.usStateHours = usStateHours
        self.unknownZoneIsQuiet = unknownZoneIsQuiet
    }
}

/// The kinds of message a policy knows, and the one for rows that name none (or an unknown one).
public struct MessageKinds: Sendable, Equatable {
    public var kinds: [String: MessageKind]
    public var defaultKind: String

    /// `otp` 10 min, `transactional` 24 h, `marketing` 72 h and only 08:00–21:00 recipient-local
    /// (and the US states' own hours); rows of no kind are `default`, limited by `--max-age`.
    public static let standard = MessageKinds(kinds: [
        "default": MessageKind(),
        "otp": MessageKind(maxAge: 600),
        "transactional": MessageKind(maxAge: 86_400),
        "marketing": MessageKind(maxAge: 259_200, hours: .quiet(from: 21 * 60, to: 8 * 60), usStateHours: true),
    ], defaultKind: "default")

    /// The kind named `name` (nil, empty or unknown: the default kind), and its name.
    public func kind(_ name: String?) -> (name: String, kind: MessageKind) {
        if let name, let kind = kinds[name] { return (name, kind) }
        return (defaultKind, kinds[defaultKind] ?? MessageKind())
    }
}

/// What may be done with a due message now, by its kind, its age and where its recipient is.
public enum SafetyDecision: Sendable, Equatable {
    /// Send; `secondsLeft` of its maximum age remain (Twilio's `ValidityPeriod`).
    case send(secondsLeft: Double)
    /// Too old, or its quiet hours end after its maximum age: closed unsent. `why` for the history.
    case expired(why: String)
    /// Inside its quiet hours: not sent before `until`; `zone` the recipient's zone that ends them last.
    case hold(until: Date, zone: String)
}

public enum MessageSafety {
    /// The decision for a message `age` seconds old (nil: unknown) of `kind`, to `number`, at `now`.
    public static func decide(kind: MessageKind, maxAgeDefault: Double, age: Double?, number: String, now: Date) -> SafetyDecision {
        let maxAge = kind.maxAge ?? maxAgeDefault
        let left = age.map { maxAge - $0 } ?? maxAge
        guard left >= 1 else { return .expired(why: "older than its maximum age (\(Int(maxAge)) s)") }
        guard let hours = kind.hours else { return .send(secondsLeft: left) }
        guard let place = RecipientZones.lookup(number) else {
            return kind.unknownZoneIsQuiet ? .expired(why: "quiet hours apply and the recipient's time zone is unknown")
                                           : .send(secondsLeft: left)
        }
        let zones = place.zones.compactMap(TimeZone.init(identifier:))
        guard !zones.isEmpty else {
            return kind.unknownZoneIsQuiet ? .expired(why: "quiet hours apply and the recipient's time zones \(place.zones) are unknown here")
                                           : .send(secondsLeft: left)
        }
        var constraints = zones.map { (hours: hours, zone: $0) }
        if kind.usStateHours, let state = place.usState, let stateHours = StateSendingHours.table[state] {
            constraints += zones.map { (hours: stateHours, zone: $0) }
        }
        guard let next = SendingHours.nextAllowed(from: now, all: constraints) else {
            return .expired(why: "no sending hours in the next 8 days")
        }
        if next <= now { return .send(secondsLeft: left) }
        guard next.timeIntervalSince(now) <= left - 1 else {
            return .expired(why: "its quiet hours end after its maximum age")
        }
        // The zone whose hours end last names the hold (a number spanning zones).
        let last = constraints.max { a, b in
            (a.hours.nextAllowed(from: now, in: a.zone) ?? now) < (b.hours.nextAllowed(from: now, in: b.zone) ?? now)
        }!
        return .hold(until: next, zone: last.zone.identifier)
    }

    /// `2026-07-15 08:00 PDT (15:00 UTC)`: an instant in the recipient's zone and in UTC.
    public static func describe(_ instant: Date, zone: String) -> String {
        let local = DateFormatter()
        local.locale = Locale(identifier: "en_US_POSIX")
        local.timeZone = TimeZone(identifier: zone)
        local.dateFormat = "yyyy-MM-dd HH:mm zzz"
        let utc = DateFormatter()
        utc.locale = Locale(identifier: "en_US_POSIX")
        utc.timeZone = TimeZone(identifier: "UTC")
        utc.dateFormat = "yyyy-MM-dd HH:mm"
        return "\(local.string(from: instant)) \(zone) (\(utc.string(from: instant)) UTC)"
    }
}
