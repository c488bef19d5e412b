import Foundation
import Testing
@testable import SMSRetry

/// The README's library example is RouterExample.swift, word for word, and it works.
@Suite struct ReadmeExampleTests {
    static func between(_ text: String, _ start: String, _ end: String) -> String? {
        guard let a = text.range(of: start), let b = text.range(of: end, range: a.upperBound..<text.endIndex) else { return nil }
        return String(text[a.upperBound..<b.lowerBound]).trimmingCharacters(in: .newlines)
    }

    @Test("README shows RouterExample.swift as it is")
    func readmeMatchesTheCompiledExample() throws {
        let readme = try String(contentsOfFile: Paths.root + "/README.md", encoding: .utf8)
        let source = try String(contentsOfFile: Paths.root + "/Tests/IntegrationTests/RouterExample.swift", encoding: .utf8)
        let shown = try #require(Self.between(readme, "<!-- example: Tests/IntegrationTests/RouterExample.swift -->\n```swift\n", "```"))
        let compiled = try #require(Self.between(source, "// example: begin\n", "// example: end"))
        #expect(shown == compiled)
    }

    @Test("README shows the Python router's example as router.py has it (PythonRouterTests runs it)")
    func readmeMatchesThePythonExample() throws {
        let readme = try String(contentsOfFile: Paths.root + "/README.md", encoding: .utf8)
        let source = try String(contentsOfFile: Paths.root + "/Tests/router-python/router.py", encoding: .utf8)
        let shown = try #require(Self.between(readme, "<!-- example: Tests/router-python/router.py -->\n```python\n", "```"))
        let run = try #require(Self.between(source, "# example: begin\n", "# example: end"))
        #expect(shown == run)
    }

    @Test("the example reports a failure, a success and a callback")
    func theExampleWorks() async throws {
        let t = try await TestDatabase.make()
        let store = t.store()
        let failed = try await t.insert()
        try await reportSend(store, logID: failed, sid: nil, errorCode: 30003, error: "Unreachable destination handset")
        #expect(try await t.row(failed).bool("pending") == true)
        let sid = "SM" + String(repeating: "7", count: 32)
        try await reportSend(store, logID: failed, sid: sid, errorCode: nil, error: nil)
        #expect(try await t.row(failed).string("twilio_message_sid") == sid)

        let url = "https://sms.example.com/twilio/status"
        let callbacks = StatusCallbackHandler(store: store, authToken: StandIn.token, publicURL: url)
        let params = [("MessageSid", sid), ("MessageStatus", "delivered")]
        let body = Array(FormEncoding.encode(params).utf8)
        let signature = TwilioSignature(authToken: StandIn.token).sign(url: url, params: params)
        #expect(await statusCallback(callbacks, query: nil, contentType: "application/x-www-form-urlencoded", signature: "x", body: body) == 403)
        #expect(await statusCallback(callbacks, query: nil, contentType: "application/x-www-form-urlencoded", signature: signature, body: body) == 200)
        #expect(try await t.row(failed).string("final_status") == "delivered")
    }
}
