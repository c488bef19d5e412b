import Foundation
import Testing
@testable import SMSRetry

/// The run's own JSON and timestamp text agrees with Foundation's coders on every case it meets.
@Suite struct JSONTextTests {
    @Test func readsWhatPostgreSQLReturns() {
        #expect(JSONText.string(#""+15005550100""#) == "+15005550100")
        #expect(JSONText.string(#""say \"hi\"\n\u00e9""#) == "say \"hi\"\né", "escapes go through the full decoder")
        #expect(JSONText.string("123") == "123" && JSONText.string("true") == "true")
        #expect(JSONText.string("null") == nil && JSONText.string(nil) == nil)
        #expect(JSONText.string(#""""#) == "")
    }

    @Test func writesJSONThatDecodesBack() throws {
        for s in ["plain", "quote \" and \\ backslash", "line\nbreak\ttab\r", "\u{01}\u{1f} control", "émoji 🎉", ""] {
            #expect(try JSONDecoder().decode(String.self, from: Data(JSONText.quote(s).utf8)) == s)
        }
        let object = JSONText.object(["status": "queued", "sid": "SM1", "at": "x\"y"])
        #expect(object == #"{"at": "x\"y", "sid": "SM1", "status": "queued"}"#)
        #expect(try JSONDecoder().decode([String: String].self, from: Data(object.utf8)) == ["status": "queued", "sid": "SM1", "at": "x\"y"])
    }

    @Test func timestampsMatchISO8601() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for t in [0.0, 1_796_170_514.2632952, 1_796_170_514.9999, 951_782_400.5 /* 2000-02-29 */, 4_102_444_799.001] {
            let date = Date(timeIntervalSince1970: t)
            #expect(JSONText.timestamp(date) == formatter.string(from: date), "\(t)")
        }
    }
}
