import Testing
@testable import SMSRetry

/// Twilio's answers read field by field, as JSONDecoder would read them.
@Suite struct TwilioJSONTests {
    /// A Message resource as Twilio's docs show it: the top-level sid, not the one a nested
    /// object might hold.
    @Test func aMessageResourceGivesItsSidAndStatus() {
        let body = Array("""
            {"account_sid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "api_version": "2010-04-01", "body": "Hi \\"there\\" \\u00e9\\ud83d\\ude00",
             "date_created": "Thu, 24 Aug 2023 05:01:45 +0000", "direction": "outbound-api", "error_code": null,
             "error_message": null, "from": "+14155552345", "num_media": "0", "num_segments": "1", "price": null,
             "nested": {"sid": "SMnested", "list": [1, 2.5e3, true, false, null, {"sid": "x"}, []]},
             "sid": "SM1234567890abcdef1234567890abcdef", "status": "queued",
             "subresource_uris": {"media": "/2010-04-01/Accounts/AC/Messages/SM/Media.json"}, "to": "+14155552345"}
            """.utf8)
        let message = TwilioMessageBody(body)
        #expect(message?.sid == "SM1234567890abcdef1234567890abcdef")
        #expect(message?.status == "queued")
        let fields = TwilioJSON.fields(body, ["body", "error_code"])
        #expect(fields?["body"] == .string("Hi \"there\" é😀"))
        #expect(fields?["error_code"] == .other)
    }

    @Test func anErrorGivesItsCodeAndMessage() {
        let error = TwilioErrorBody(Array(#"{"code": 21211, "message": "The 'To' number +1555 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#.utf8))
        #expect(error?.code == 21211)
        #expect(error?.message == "The 'To' number +1555 is not a valid phone number.")
        #expect(TwilioErrorBody(Array(#"{"code": "21211"}"#.utf8))?.code == nil, "a code that is not a number is no code")
    }

    @Test func whatIsNotOneJSONObjectIsRefused() {
        for text in ["", "[]", "{", #"{"sid": "SM1""#, #"{"sid": "SM1",}"#, #"{"sid" "SM1"}"#, #"{"sid": "SM1"} x"#,
                     "<html>502 Bad Gateway</html>", #"{"sid": SM1}"#, #"{"a": [1, 2}"#] {
            #expect(TwilioJSON.fields(Array(text.utf8), ["sid"]) == nil, "\(text)")
        }
        #expect(TwilioJSON.fields(Array(" { } ".utf8), ["sid"]) == [:])
    }
}
