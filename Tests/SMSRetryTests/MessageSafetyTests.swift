import Foundation
import Testing
@testable import SMSRetry

/// The recipient's zone, the sending-hours arithmetic and the decision per kind of message.
@Suite struct MessageSafetyTests {
    static func utc(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }
    let marketing = MessageKinds.standard.kinds["marketing"]!

    @Test("zones by number: several countries, US and Canadian area codes, areas spanning zones, unknown prefixes")
    func zoneLookup() {
        #expect(RecipientZones.lookup("+14155550100") == RecipientZone(zones: ["America/Los_Angeles"], usState: "CA"))
        #expect(RecipientZones.lookup("+12035550100") == RecipientZone(zones: ["America/New_York"], usState: "CT"))
        #expect(RecipientZones.lookup("+14165550100") == RecipientZone(zones: ["America/Toronto"], usState: nil), "Toronto: Canada, no state")
        #expect(RecipientZones.lookup("+16045550100")?.zones == ["America/Vancouver"])
        #expect(RecipientZones.lookup("+442071234567")?.zones.contains("Europe/London") == true)
        #expect(RecipientZones.lookup("+33142685300")?.zones == ["Europe/Paris"])
        #expect(RecipientZones.lookup("+81312345678")?.zones == ["Asia/Tokyo"])
        #expect(RecipientZones.lookup("+61212345678")?.zones == ["Australia/Sydney"], "an Australian area code: one zone of several")
        let idaho = RecipientZones.lookup("+12085550100")
        #expect(idaho?.usState == "ID" && idaho?.zones.contains("America/Denver") == true && idaho?.zones.contains("America/Los_Angeles") == true)
        #expect(RecipientZones.lookup("+9995550100") == nil, "no country +999")
        #expect(RecipientZones.lookup("4155550100") == nil && RecipientZones.lookup("+1415abc") == nil, "not E.164")
        #expect(RecipientZones.prefixCount > 1_500)
    }

    @Test("a quiet span across midnight: 21:05 is held to 08:00, 07:59 to 08:00, noon is sent")
    func acrossMidnight() {
        let la = TimeZone(identifier: "America/Los_Angeles")!
        let hours = SendingHours.parseQuiet("21:00-08:00")!
        #expect(hours.nextAllowed(from: Self.utc("2026-07-15T04:05:00Z"), in: la) == Self.utc("2026-07-15T15:00:00Z"), "21:05 PDT → 08:00 PDT")
        #expect(hours.nextAllowed(from: Self.utc("2026-07-15T14:59:00Z"), in: la) == Self.utc("2026-07-15T15:00:00Z"))
        #expect(hours.nextAllowed(from: Self.utc("2026-07-15T19:00:00Z"), in: la) == Self.utc("2026-07-15T19:00:00Z"))
        // A quiet span inside one day.
        let lunch = SendingHours.parseQuiet("12:00-13:30")!
        #expect(lunch.nextAllowed(from: Self.utc("2026-07-15T19:10:00Z"), in: la) == Self.utc("2026-07-15T20:30:00Z"))
        #expect(SendingHours.parseQuiet("21:00") == nil && SendingHours.parseQuiet("25:00-08:00") == nil && SendingHours.parseQuiet("08:00-08:00") == nil)
    }

    @Test("a daylight-saving change in the recipient's zone: held overnight to 08:00 of the new offset")
    func dstChange() {
        let la = TimeZone(identifier: "America/Los_Angeles")!
        let hours = SendingHours.parseQuiet("21:00-08:00")!
        // Saturday 2026-03-07 22:00 PST (UTC-8); clocks spring forward that night: 08:00 is PDT (UTC-7).
        #expect(hours.nextAllowed(from: Self.utc("2026-03-08T06:00:00Z"), in: la) == Self.utc("2026-03-08T15:00:00Z"))
        // And back in November: 08:00 PST is 16:00 UTC.
        #expect(hours.nextAllowed(from: Self.utc("2026-11-01T06:00:00Z"), in: la) == Self.utc("2026-11-01T16:00:00Z"))
    }

    @Test("US states' hours and weekends: Florida, Connecticut, Texas on a Sunday, Rhode Island on a Saturday")
    func stateHours() {
        let now = { (s: String) in Self.utc(s) }
        func decide(_ number: String, _ at: String) -> SafetyDecision {
            MessageSafety.decide(kind: marketing, maxAgeDefault: 86_400, age: 60, number: number, now: now(at))
        }
        // Florida (305, America/New_York): 20:30 EDT is past 20:00 → 08:00 the next day.
        #expect(decide("+13055550100", "2026-07-16T00:30:00Z") == .hold(until: now("2026-07-16T12:00:00Z"), zone: "America/New_York"))
        // Connecticut: 08:30 EDT is before 09:00.
        #expect(decide("+12035550100", "2026-07-15T12:30:00Z") == .hold(until: now("2026-07-15T13:00:00Z"), zone: "America/New_York"))
        // Texas (512, America/Chicago): Sunday 2026-07-19 10:00 CDT → 12:00; Saturday 10:00 is sent.
        #expect(decide("+15125550100", "2026-07-19T15:00:00Z") == .hold(until: now("2026-07-19T17:00:00Z"), zone: "America/Chicago"))
        #expect(decide("+15125550100", "2026-07-18T15:00:00Z") == .send(secondsLeft: 259_200 - 60))
        // Rhode Island (401): Saturday 09:30 EDT → 10:00; a Wednesday 17:30 is sent, 18:30 waits to 09:00.
        #expect(decide("+14015550100", "2026-07-18T13:30:00Z") == .hold(until: now("2026-07-18T14:00:00Z"), zone: "America/New_York"))
        #expect(decide("+14015550100", "2026-07-15T21:30:00Z") == .send(secondsLeft: 259_200 - 60))
        #expect(decide("+14015550100", "2026-07-15T22:30:00Z") == .hold(until: now("2026-07-16T13:00:00Z"), zone: "America/New_York"))
        // California has no state hours: 20:30 PDT is sent.
        #expect(decide("+14155550100", "2026-07-16T03:30:00Z") == .send(secondsLeft: 259_200 - 60))
        // Without the state set, Florida at 20:30 is sent too.
        var federalOnly = marketing
        federalOnly.usStateHours = false
        #expect(MessageSafety.decide(kind: federalOnly, maxAgeDefault: 86_400, age: 60, number: "+13055550100", now: now("2026-07-16T00:30:00Z"))
                == .send(secondsLeft: 259_200 - 60))
    }

    @Test("an area spanning zones is quiet while quiet in any: Idaho at 07:30 Mountain waits for 08:00 Pacific")
    func spanningZones() {
        let d = MessageSafety.decide(kind: marketing, maxAgeDefault: 86_400, age: 60, number: "+12085550100", now: Self.utc("2026-07-15T13:30:00Z"))
        #expect(d == .hold(until: Self.utc("2026-07-15T15:00:00Z"), zone: "America/Los_Angeles"))
    }

    @Test("the age limit by kind, an unknown zone, quiet hours that end past the age")
    func ageAndUnknowns() {
        let otp = MessageKinds.standard.kind("otp").kind
        let noon = Self.utc("2026-07-15T19:00:00Z")
        if case .expired = MessageSafety.decide(kind: otp, maxAgeDefault: 86_400, age: 700, number: "+14155550100", now: noon) {} else {
            Issue.record("an otp 700 s old is past its 600 s")
        }
        #expect(MessageSafety.decide(kind: otp, maxAgeDefault: 86_400, age: 500, number: "+14155550100", now: noon) == .send(secondsLeft: 100))
        // The default kind follows --max-age.
        let plain = MessageKinds.standard.kind(nil)
        #expect(plain.name == "default" && MessageKinds.standard.kind("newsletter").name == "default", "unknown kinds are the default kind")
        #expect(MessageSafety.decide(kind: plain.kind, maxAgeDefault: 3_600, age: 3_000, number: "+14155550100", now: noon) == .send(secondsLeft: 600))
        // Unknown zone: quiet (never sent) for a kind with hours, unless the policy says send.
        if case .expired = MessageSafety.decide(kind: marketing, maxAgeDefault: 86_400, age: 60, number: "+9995550100", now: noon) {} else {
            Issue.record("an unknown zone is quiet for marketing")
        }
        var lenient = marketing
        lenient.unknownZoneIsQuiet = false
        #expect(MessageSafety.decide(kind: lenient, maxAgeDefault: 86_400, age: 60, number: "+9995550100", now: noon) == .send(secondsLeft: 259_140))
        // 21:05 PDT, 71 h 30 min old: 08:00 is 11 h away, past what is left of 72 h.
        if case .expired(let why) = MessageSafety.decide(kind: marketing, maxAgeDefault: 86_400, age: 257_400, number: "+14155550100",
                                                         now: Self.utc("2026-07-15T04:05:00Z")) {
            #expect(why.contains("quiet hours end after"))
        } else { Issue.record("held past its age") }
        #expect(MessageSafety.describe(Self.utc("2026-07-15T15:00:00Z"), zone: "America/Los_Angeles")
                == "2026-07-15 08:00 PDT America/Los_Angeles (2026-07-15 15:00 UTC)")
    }

    @Test("the policy file's message kinds: merged over the standard ones, each mistake named")
    func policyKinds() throws {
        let json = #"""
            {"metadata_keys": {"kind": "meta.type"},
             "message_kinds": {"otp": {"max_age_seconds": 300}, "alerts": {"max_age_seconds": 3600, "quiet_hours": "22:00-07:00"},
                               "marketing": {"us_state_hours": false, "unknown_zone": "send"}},
             "default_kind": "alerts"}
            """#
        let policy = try RetryPolicy.parse(Data(json.utf8), source: "p.json")
        #expect(policy.messageKeys.kind == "meta.type")
        #expect(policy.kinds.kinds["otp"]?.maxAge == 300 && policy.kinds.kind(nil).name == "alerts")
        #expect(policy.kinds.kinds["alerts"]?.hours == SendingHours.parseQuiet("22:00-07:00"))
        let m = policy.kinds.kinds["marketing"]!
        #expect(m.maxAge == 259_200 && m.hours != nil && !m.usStateHours && !m.unknownZoneIsQuiet, "unnamed fields keep the standard values")
        let bad: [(String, String)] = [
            (#"{"message_kinds": {"otp": {"quiet_hours": "9pm-8am"}}}"#, "message_kinds.otp.quiet_hours"),
            (#"{"message_kinds": {"otp": {"max_age_seconds": 0}}}"#, "message_kinds.otp.max_age_seconds"),
            (#"{"message_kinds": {"otp": {"us_state_hours": true}}}"#, "message_kinds.otp.us_state_hours: needs quiet_hours"),
            (#"{"message_kinds": {"otp": {"unknown_zone": "maybe"}}}"#, "message_kinds.otp.unknown_zone"),
            (#"{"default_kind": "nope"}"#, "default_kind: \"nope\" is not one of message_kinds"),
        ]
        for (text, expected) in bad {
            #expect(throws: PolicyError.self) { try RetryPolicy.parse(Data(text.utf8), source: "p.json") }
            do { _ = try RetryPolicy.parse(Data(text.utf8), source: "p.json") } catch {
                #expect("\(error)".contains(expected), "\(error)")
            }
        }
    }
}
