import Foundation

/// The hours a message may be sent, in the recipient's local time: for each weekday, spans of
/// minutes after local midnight. Pure: the time zone arithmetic is Foundation's calendar, which
/// knows each zone's daylight-saving changes.
public struct SendingHours: Sendable, Equatable, CustomStringConvertible {
    /// Calendar weekday (1 = Sunday … 7 = Saturday) → allowed spans [start, end) in minutes.
    public var spans: [Int: [Range<Int>]]

    /// Every day the same span.
    public static func daily(_ span: Range<Int>) -> SendingHours {
        SendingHours(spans: Dictionary(uniqueKeysWithValues: (1...7).map { ($0, [span]) }))
    }

    /// Mondays to Saturdays one span, Sundays another (Texas).
    public static func weekdaysAndSaturday(_ span: Range<Int>, sunday: Range<Int>) -> SendingHours {
        var hours = daily(span)
        hours.spans[1] = [sunday]
        return hours
    }

    /// Mondays to Fridays one span, weekends another (Rhode Island).
    public static func weekdays(_ span: Range<Int>, weekends: Range<Int>) -> SendingHours {
        var hours = daily(span)
        hours.spans[1] = [weekends]
        hours.spans[7] = [weekends]
        return hours
    }

    /// Every day except the quiet span `from`–`to` (minutes; it may cross midnight: 21:00–08:00).
    public static func quiet(from: Int, to: Int) -> SendingHours {
        from > to ? daily(to..<from) : daily(0..<from).adding(daily(to..<1440))
    }

    private func adding(_ other: SendingHours) -> SendingHours {
        SendingHours(spans: spans.merging(other.spans) { $0 + $1 }.mapValues { $0.filter { !$0.isEmpty } })
    }

    /// `"21:00-08:00"`: the quiet span, as the policy file writes it.
    public static func parseQuiet(_ text: String) -> SendingHours? {
        let parts = text.split(separator: "-").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, let from = minutes(parts[0]), let to = minutes(parts[1]), from != to else { return nil }
        return quiet(from: from, to: to)
    }

    /// `"08:00"` → 480; `"24:00"` is the end of the day.
    static func minutes(_ text: String) -> Int? {
        let hm = text.split(separator: ":")
        guard hm.count == 2, hm[0].count <= 2, hm[1].count == 2, let h = Int(hm[0]), let m = Int(hm[1]),
              (0...24).contains(h), (0..<60).contains(m), h * 60 + m <= 1440 else { return nil }
        return h * 60 + m
    }

    public var description: String {
        let names = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        func hm(_ m: Int) -> String { String(format: "%02d:%02d", m / 60, m % 60) }
        return (1...7).map { day in
            "\(names[day - 1]) " + (spans[day] ?? []).map { "\(hm($0.lowerBound))–\(hm($0.upperBound))" }.joined(separator: ",")
        }.joined(separator: "; ")
    }

    /// Whether `minute` of a local day with this weekday is inside the hours.
    func allows(weekday: Int, minute: Int) -> Bool { (spans[weekday] ?? []).contains { $0.contains(minute) } }

    /// The first instant at or after `t` inside the hours in `zone` (within 8 days; nil if none).
    func nextAllowed(from t: Date, in zone: TimeZone) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let local = calendar.dateComponents([.year, .month, .day, .hour, .minute, .weekday], from: t)
        let minute = local.hour! * 60 + local.minute!
        if allows(weekday: local.weekday!, minute: minute) { return t }
        guard let midnight = calendar.date(from: DateComponents(year: local.year, month: local.month, day: local.day)) else { return nil }
        for offset in 0...8 {
            guard let day = calendar.date(byAdding: .day, value: offset, to: midnight) else { return nil }
            let weekday = calendar.component(.weekday, from: day)
            for span in (spans[weekday] ?? []).sorted(by: { $0.lowerBound < $1.lowerBound }) where offset > 0 || span.upperBound > minute {
                var parts = calendar.dateComponents([.year, .month, .day], from: day)
                parts.hour = span.lowerBound / 60
                parts.minute = span.lowerBound % 60
                // A start inside a daylight-saving gap (02:30 on the spring-forward night) is the
                // first minute after the gap.
                guard let start = calendar.date(from: parts) else { continue }
                if start >= t { return start }
            }
        }
        return nil
    }

    /// The first instant at or after `t` that every (hours, zone) pair allows: quiet in any of
    /// them is quiet. Nil when there is none within 8 days.
    static func nextAllowed(from t: Date, all constraints: [(hours: SendingHours, zone: TimeZone)]) -> Date? {
        var candidate = t
        for _ in 0..<64 {
            var moved = false
            for c in constraints {
                guard let next = c.hours.nextAllowed(from: candidate, in: c.zone) else { return nil }
                if next > candidate { candidate = next; moved = true }
            }
            if !moved { return candidate }
            if candidate.timeIntervalSince(t) > 8 * 86_400 { return nil }
        }
        return nil
    }
}

/// US states' own hours for marketing texts, stricter than the federal 08:00–21:00 (TCPA,
/// 47 CFR 64.1200(c)(1)), in the recipient's local time. Sources, as of 2025: Florida Stat.
/// § 501.616(6)(a) (FTSA, 08:00–20:00); Oklahoma Stat. tit. 15 § 775C.4 (08:00–20:00);
/// Maryland Com. Law § 14-4503 (Stop the Spam Calls Act, 08:00–20:00); Mississippi Code
/// § 77-3-729 (08:00–20:00); New Jersey Stat. § 56:8-128 (08:00–20:00); Connecticut Gen. Stat.
/// § 42-288a(e) (09:00–20:00); Texas Bus. & Com. Code § 304.108 (09:00–21:00 Mon–Sat,
/// 12:00–21:00 Sun); Rhode Island Gen. Laws § 5-61-3.4 (09:00–18:00 weekdays, 10:00–17:00 weekends).
/// Not legal advice: the operator's counsel decides which apply.
public enum StateSendingHours {
    public static let table: [String: SendingHours] = [
        "FL": .daily(480..<1200), "OK": .daily(480..<1200), "MD": .daily(480..<1200),
        "MS": .daily(480..<1200), "NJ": .daily(480..<1200),
        "CT": .daily(540..<1200),
        "TX": .weekdaysAndSaturday(540..<1260, sunday: 720..<1260),
        "RI": .weekdays(540..<1080, weekends: 600..<1020),
    ]
}
