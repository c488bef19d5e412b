import Foundation
import Testing
@testable import SMSRetry

@Suite struct TwilioWireTests {
    @Test func formEncoding() {
        #expect(FormEncoding.encode([("To", "+14155550100"), ("Body", "Hi & bye = 100% ünïcode 🙂")])
                == "To=%2B14155550100&Body=Hi+%26+bye+%3D+100%25+%C3%BCn%C3%AFcode+%F0%9F%99%82")
        #expect(FormEncoding.escape("a-b_c.d~e") == "a-b_c.d~e")
        let pairs = FormEncoding.decode(FormEncoding.encode([("Body", "line1\nline2 +x"), ("To", "+1")]))
        #expect(pairs.map(\.0) == ["Body", "To"] && pairs.map(\.1) == ["line1\nline2 +x", "+1"])
    }

    @Test func createRequestFields() {
        let http = HTTPClient()
        defer { http.shutdown() }
        var config = TwilioConfig(accountSID: "AC123", username: "AC123", password: "tok", sender: .from("+15005550006"),
                                  baseURL: "http://127.0.0.1:1", statusCallbackURL: "https://cb.example/status?a=1")
        var client = TwilioClient(config: config, http: http)
        #expect(client.messagesURL == "http://127.0.0.1:1/2010-04-01/Accounts/AC123/Messages.json")
        #expect(client.form(to: "+14155550100", body: "hi")
                == "To=%2B14155550100&From=%2B15005550006&Body=hi&StatusCallback=https%3A%2F%2Fcb.example%2Fstatus%3Fa%3D1%23rc%3D5%26rp%3Dall")
        config.sender = .messagingService("MG1")
        config.statusCallbackURL = nil
        client = TwilioClient(config: config, http: http)
        #expect(client.form(to: "+1", body: "x") == "To=%2B1&MessagingServiceSid=MG1&Body=x")
    }

    func result(_ status: Int, _ body: String, headers: [String: String] = [:]) -> SendResult {
        SendResult(response: HTTPClient.Response(status: status, headers: headers, body: Array(body.utf8), seconds: 0.1))
    }

    @Test func answersAreClassified() {
        let sid = "SM" + String(repeating: "a", count: 32)
        guard case .accepted(sid, "queued", 201, _) = result(201, #"{"sid": "\#(sid)", "status": "queued", "num_segments": "1", "price": null}"#) else {
            Issue.record("201 is accepted"); return
        }
        guard case .rejected(21211, let message, 400, _) = result(400, #"{"code": 21211, "message": "The 'To' number is not valid.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#) else {
            Issue.record("400 with a code is rejected"); return
        }
        #expect(message == "The 'To' number is not valid.")
        guard case .throttled(7, 429, _) = result(429, #"{"code": 20429, "message": "Too Many Requests"}"#, headers: ["retry-after": "7"]) else {
            Issue.record("429 is throttled with Retry-After"); return
        }
        guard case .throttled(nil, 429, _) = result(429, "") else { Issue.record("429 without a header"); return }
        guard case .throttled(nil, 400, _) = result(400, #"{"code": 20429}"#) else { Issue.record("code 20429 is throttling whatever the status"); return }
        guard case .unauthorized(20003, _, 401) = result(401, #"{"code": 20003, "message": "Authenticate"}"#) else {
            Issue.record("401 is unauthorized"); return
        }
        guard case .unexpected(503, nil, _, _) = result(503, "<html>down</html>") else { Issue.record("503 is unexpected"); return }
        guard case .unexpected(201, nil, _, _) = result(201, "{}") else { Issue.record("201 without a SID is not a success"); return }
        guard case .unexpected(404, nil, _, _) = result(404, "not found") else { Issue.record("404 without a code"); return }
    }

    @Test func phoneNumbers() {
        #expect(PhoneNumber.isE164("+14155550100"))
        #expect(PhoneNumber.isE164("+447911123456"))
        for bad in ["14155550100", "+0123456", "+1", "+1 415 555 0100", "+1415555010012345", "", "+1-415", "+１４１５"] {
            #expect(!PhoneNumber.isE164(bad), "\(bad)")
        }
        #expect(PhoneNumber.masked("+14155550100") == "+14*******00")
        #expect(PhoneNumber.masked("123") == "***")
    }

    @Test func configurationFromTheEnvironment() throws {
        let good = ["TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "s3cret-token", "TWILIO_FROM_NUMBER": "+15005550006"]
        let config = try TwilioConfig.fromEnvironment(good)
        #expect(config.username == "AC1" && config.password == "s3cret-token" && config.baseURL == "https://api.twilio.com")
        #expect(!config.description.contains("s3cret-token"))

        func message(_ env: [String: String]) -> String {
            do { _ = try TwilioConfig.fromEnvironment(env); return "accepted" } catch { return error.description }
        }
        var env = good; env["TWILIO_ACCOUNT_SID"] = nil
        #expect(message(env).hasPrefix("TWILIO_ACCOUNT_SID is not set"))
        env = good; env["TWILIO_AUTH_TOKEN"] = nil
        #expect(message(env).hasPrefix("TWILIO_AUTH_TOKEN is not set"))
        env = good; env["TWILIO_FROM_NUMBER"] = nil
        #expect(message(env).hasPrefix("TWILIO_FROM_NUMBER is not set"))
        env = good; env["TWILIO_FROM_NUMBER"] = "5550006"
        #expect(message(env).hasPrefix("TWILIO_FROM_NUMBER is not an E.164 number"))
        env = good; env["TWILIO_API_KEY_SID"] = "SK1"
        #expect(message(env).hasPrefix("TWILIO_API_KEY_SECRET is not set"))
        env["TWILIO_API_KEY_SECRET"] = "keysecret"
        let keyed = try TwilioConfig.fromEnvironment(env)
        #expect(keyed.username == "SK1" && keyed.password == "keysecret" && keyed.accountSID == "AC1")
        env = good; env["TWILIO_MESSAGING_SERVICE_SID"] = "MG1"; env["TWILIO_API_BASE_URL"] = "http://127.0.0.1:9/"
        let service = try TwilioConfig.fromEnvironment(env)
        #expect(service.sender == .messagingService("MG1") && service.baseURL == "http://127.0.0.1:9")
        env = good; env["TWILIO_API_BASE_URL"] = "ftp://x"
        #expect(message(env).hasPrefix("TWILIO_API_BASE_URL must start with"))
        for m in [message(good.merging(["TWILIO_FROM_NUMBER": ""]) { $1 })] { #expect(!m.contains("s3cret-token")) }
    }
}

@Suite struct OriginalMessageUnitTests {
    let config = TwilioConfig(accountSID: "AC" + String(repeating: "0", count: 32), username: "u", password: "p",
                              sender: .messagingService("MGdefault"), statusCallbackURL: "https://cb.example/s")

    @Test func theFormCarriesTheOriginal() {
        var m = OutboundMessage(to: "+14155550100", body: "", from: "+15005550100")
        m.mediaURLs = ["https://e.example/a.png"]
        m.contentSID = "HX1"
        m.contentVariables = #"{"1":"Ada"}"#
        m.attempt = 2
        m.validityPeriod = 600
        let form = TwilioClient(config: config, http: HTTPClient()).form(m)
        #expect(form == "To=%2B14155550100&From=%2B15005550100&MediaUrl=https%3A%2F%2Fe.example%2Fa.png&ContentSid=HX1&ContentVariables=%7B%221%22%3A%22Ada%22%7D&Attempt=2&ValidityPeriod=600&StatusCallback=https%3A%2F%2Fcb.example%2Fs%23rc%3D5%26rp%3Dall")
        // No sender on the row: the configured one.
        #expect(TwilioClient(config: config, http: HTTPClient()).form(to: "+1", body: "hi").contains("MessagingServiceSid=MGdefault&Body=hi"))
    }

    @Test func theOriginalIsReadFromTheRow() {
        let m = OutboundMessage.original(to: "+1", body: "b", metadata: [#""  +15005550100 ""#, nil, #"["u1", "u2"]"#, nil, nil, "true", "\"false\""],
                                         configured: .from("+15005550006"))
        #expect(m.from == "+15005550100" && m.messagingServiceSID == nil && m.mediaURLs == ["u1", "u2"])
        #expect(m.smartEncoded == true && m.shortenURLs == false)
        let none = OutboundMessage.original(to: "+1", body: nil, metadata: Array(repeating: nil, count: 7), configured: .from("+15005550006"))
        #expect(none.from == "+15005550006" && !none.hasContent)
        #expect(none.senderForHistory == "+15*******06")
    }

    @Test func validityIsWhatIsLeftOfTheMaximumAge() {
        #expect(OutboundMessage.validity(ageSeconds: 60, maxAge: 600) == .seconds(540))
        #expect(OutboundMessage.validity(ageSeconds: 0, maxAge: 86_400) == .seconds(36_000))
        #expect(OutboundMessage.validity(ageSeconds: 599.5, maxAge: 600) == .expired)
        #expect(OutboundMessage.validity(ageSeconds: nil, maxAge: 600) == .unknownAge)
    }
}
