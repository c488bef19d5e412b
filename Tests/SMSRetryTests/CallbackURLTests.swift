import Foundation
import Testing
@testable import SMSRetry

/// The StatusCallback sms-retry sends asks Twilio for more retries, and a callback is accepted
/// whether Twilio signed the URL with that fragment or without it.
@Suite struct CallbackURLTests {
    @Test func resendsAskForFiveRetriesUnlessTheURLHasItsOwnFragment() {
        #expect(CallbackURL.withRetries("https://sms.example.com/twilio/status") == "https://sms.example.com/twilio/status#rc=5&rp=all")
        #expect(CallbackURL.withRetries("https://sms.example.com/s?tenant=a") == "https://sms.example.com/s?tenant=a#rc=5&rp=all")
        // The team's own overrides are kept as they are.
        #expect(CallbackURL.withRetries("https://sms.example.com/s#rc=3&ct=2000") == "https://sms.example.com/s#rc=3&ct=2000")
        #expect(CallbackURL.withRetries("https://sms.example.com/s#") == "https://sms.example.com/s#")
    }

    @Test func theFormCarriesTheFragment() {
        let http = HTTPClient()
        defer { http.shutdown() }
        let config = TwilioConfig(accountSID: "AC1", username: "AC1", password: "t", sender: .from("+15005550006"),
                                  statusCallbackURL: "https://cb.example/s")
        let form = FormEncoding.decode(TwilioClient(config: config, http: http).form(to: "+14155550100", body: "hi"))
        #expect(form.first { $0.0 == "StatusCallback" }?.1 == "https://cb.example/s#rc=5&rp=all")
    }

    @Test func candidatesCoverTheURLWithAndWithoutTheFragment() {
        #expect(CallbackURL.signedCandidates(publicURL: "https://x.example/s", query: nil)
                == ["https://x.example/s", "https://x.example/s#rc=5&rp=all"])
        #expect(CallbackURL.signedCandidates(publicURL: "https://x.example/s#rc=2", query: "a=1")
                == ["https://x.example/s?a=1", "https://x.example/s?a=1#rc=2"])
        #expect(CallbackURL.signedCandidates(publicURL: "https://x.example/s?old=1", query: "a=1")
                == ["https://x.example/s?a=1", "https://x.example/s?a=1#rc=5&rp=all"])
    }

    @Test func aCallbackSignedEitherWayIsValidAndAnotherURLIsNot() {
        let token = "12345"
        let signer = TwilioSignature(authToken: token)
        let params = [("MessageSid", "SM" + String(repeating: "a", count: 32)), ("MessageStatus", "delivered")]
        let publicURL = "https://sms.example.com/twilio/status"
        func accepted(_ signature: String) -> Bool {
            CallbackURL.signedCandidates(publicURL: publicURL, query: nil).contains {
                signer.isValid(signature: signature, url: $0, params: params)
            }
        }
        #expect(accepted(signer.sign(url: publicURL, params: params)))
        #expect(accepted(signer.sign(url: publicURL + "#rc=5&rp=all", params: params)))
        #expect(!accepted(signer.sign(url: publicURL + "#rc=4", params: params)))
        #expect(!accepted(signer.sign(url: "https://sms.example.com/other", params: params)))
        #expect(!accepted(TwilioSignature(authToken: "other").sign(url: publicURL, params: params)))
    }
}
