import Testing
@testable import SMSRetry

@Suite("X-Twilio-Signature")
struct TwilioSignatureTests {
    let docsURL = "https://example.com/myapp.php?foo=1&bar=2"
    let docsParams = [("Digits", "1234"), ("To", "+18005551212"), ("From", "+14158675310"),
                      ("Caller", "+14158675310"), ("CallSid", "CA1234567890ABCDE")]

    @Test("Twilio's documented example: L/OH5YylLD5NRKLltdqwSvS0BnU=")
    func documentedExample() {
        let signer = TwilioSignature(authToken: "12345")
        #expect(signer.sign(url: docsURL, params: docsParams) == "L/OH5YylLD5NRKLltdqwSvS0BnU=")
        #expect(signer.isValid(signature: "L/OH5YylLD5NRKLltdqwSvS0BnU=", url: docsURL, params: docsParams))
        // The order the parameters arrived in does not matter.
        #expect(signer.isValid(signature: "L/OH5YylLD5NRKLltdqwSvS0BnU=", url: docsURL, params: docsParams.reversed()))
    }

    @Test("a wrong token, a changed value, an added parameter, a changed URL or a missing signature fail")
    func forgeries() {
        let good = "L/OH5YylLD5NRKLltdqwSvS0BnU="
        #expect(!TwilioSignature(authToken: "12346").isValid(signature: good, url: docsURL, params: docsParams))
        let signer = TwilioSignature(authToken: "12345")
        var changed = docsParams
        changed[0].1 = "1235"
        #expect(!signer.isValid(signature: good, url: docsURL, params: changed))
        #expect(!signer.isValid(signature: good, url: docsURL, params: docsParams + [("MessageStatus", "delivered")]))
        #expect(!signer.isValid(signature: good, url: "https://example.com/myapp.php?foo=1&bar=3", params: docsParams))
        #expect(!signer.isValid(signature: good, url: "https://example.com/myapp.php?bar=2&foo=1", params: docsParams))
        #expect(!signer.isValid(signature: nil, url: docsURL, params: docsParams))
        #expect(!signer.isValid(signature: "", url: docsURL, params: docsParams))
        #expect(!signer.isValid(signature: String(good.dropLast()), url: docsURL, params: docsParams))
    }

    /// Vectors computed independently: `printf '%s' DATA | openssl dgst -sha1 -hmac TOKEN -binary | base64`.
    @Test("own vectors: byte-order sorting, repeated names, empty values, UTF-8")
    func ownVectors() {
        let signer = TwilioSignature(authToken: "secret")
        let url = "https://cb.example.org/status"
        // Byte order: "CallSid" < "Caller" (S < e) and "To" < "to"; data = URL + "CallSidCA1Callerx" …
        #expect(signer.sign(url: url, params: [("Caller", "x"), ("CallSid", "CA1")]) == "Cspv6Eg095bx0cuBR7CU7AFfaNk=")
        // Repeated names contribute every value, values sorted: "Ab" + "Aa" → "AaAb".
        #expect(signer.sign(url: url, params: [("A", "b"), ("A", "a")]) == "xuxE6xmq7tZIJ2+JPkSIRNrhnIk=")
        // An empty value contributes its name only.
        #expect(signer.sign(url: url, params: [("ErrorCode", ""), ("MessageStatus", "sent")]) == "PBbYq3nBJoPxEi+HUI5Xo3ZXx9o=")
        // UTF-8 bytes of the value.
        #expect(signer.sign(url: url, params: [("Body", "héllo ✓")]) == "tFAO25DXEmwW7OamjuCtdtFLWfI=")
    }

    @Test("default ports: signed with :443 validates without it, and the other way round; userinfo dropped")
    func ports() {
        let signer = TwilioSignature(authToken: "12345")
        let withPort = signer.sign(url: "https://example.com:443/myapp.php?foo=1&bar=2", params: docsParams)
        #expect(signer.isValid(signature: withPort, url: docsURL, params: docsParams))
        #expect(signer.isValid(signature: "L/OH5YylLD5NRKLltdqwSvS0BnU=", url: "https://example.com:443/myapp.php?foo=1&bar=2", params: docsParams))
        #expect(signer.isValid(signature: "L/OH5YylLD5NRKLltdqwSvS0BnU=", url: "https://user:pass@example.com/myapp.php?foo=1&bar=2", params: docsParams))
        let http = signer.sign(url: "http://example.com/cb", params: [])
        #expect(signer.isValid(signature: http, url: "http://example.com:80/cb"))
        // A non-default port is part of the URL: not interchangeable.
        #expect(!signer.isValid(signature: http, url: "http://example.com:8080/cb"))
    }

    @Test("JSON bodies: only the URL is signed, and bodySHA256 must match the body")
    func jsonBody() {
        let signer = TwilioSignature(authToken: "12345")
        let body = Array(#"{"property": "value", "boolean": true}"#.utf8)
        // sha256 of the body above, hex (sha256sum).
        let url = "https://example.com/myapp?bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        let signature = signer.sign(url: url)
        #expect(signer.isValid(signature: signature, url: url, jsonBody: body))
        #expect(!signer.isValid(signature: signature, url: url, jsonBody: Array(#"{"property": "other"}"#.utf8)))
        #expect(!signer.isValid(signature: "AAAA", url: url, jsonBody: body))
    }

    @Test("constant-time comparison compares whole strings")
    func comparison() {
        #expect(TwilioSignature.constantTimeEquals("abc", "abc"))
        #expect(!TwilioSignature.constantTimeEquals("abc", "abd"))
        #expect(!TwilioSignature.constantTimeEquals("abc", "abcd"))
        #expect(!TwilioSignature.constantTimeEquals("", "a"))
    }
}
