import Foundation
import Testing
@testable import SMSRetry

/// The libcurl wrapper against real sockets: timeouts, refused connections, reuse.
@Suite struct HTTPClientTests {
    @Test func aHungProviderIsATimeoutCountedAsATransportFailure() async throws {
        let t = try await TestDatabase.make()
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        await twilio.server.script("+14155550400", [.delay(.seconds(10), then: .accept)])
        var options = HTTPClient.Options()
        options.timeout = .milliseconds(500)
        let http = HTTPClient(options: options)
        defer { http.shutdown() }
        let id = try await t.insert(phone: "+14155550400")
        _ = try await t.store().recordFailure(logID: id, errorCode: 30001, errorMessage: nil)
        let clock = try await t.clockAtDue()
        let started = ContinuousClock.now
        let summary = try await RetryRunner(store: t.store(clock: clock), twilio: TwilioClient(config: twilio.config(), http: http),
                                            logger: quietLogger).run()
        #expect(ContinuousClock.now - started < .seconds(8), "the request timeout, not the hung provider, ends the run")
        #expect(summary.rescheduled == 1)
        let row = try await t.row(id)
        #expect(row.string("last_outcome") == "transport_error" && row.int("retry_count") == 1)
        #expect(row.string("retry_error")?.contains("curl 28") == true, "\(row.string("retry_error") ?? "")")
    }

    @Test func aRefusedConnectionIsATransportError() async throws {
        let http = HTTPClient()
        defer { http.shutdown() }
        // Port 1 on loopback: nothing listens there.
        let result = await http.send(.init(method: "POST", url: "http://127.0.0.1:1/x", body: "a=b"))
        guard case .failure(let error) = result else { Issue.record("expected a transport error"); return }
        #expect(error.code == 7, "CURLE_COULDNT_CONNECT, got \(error)")
    }

    @Test func connectionsAreReused() async throws {
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let request = HTTPClient.Request(method: "POST", url: twilio.client().messagesURL,
                                         headers: ["Content-Type: application/x-www-form-urlencoded"],
                                         body: "To=%2B14155550100&From=%2B15005550006&Body=hi",
                                         basicAuth: (StandIn.account, StandIn.token))
        var connects: [Int] = []
        for _ in 0..<20 {
            guard case .success(let response) = await twilio.http.send(request) else { Issue.record("send failed"); return }
            #expect(response.status == 201)
            connects.append(response.newConnections)
        }
        #expect(connects.reduce(0, +) == 1, "one connection for 20 sequential requests, got \(connects)")
    }

    @Test("a kept-alive connection that dies after the server took a create: one request on the wire, an unknown-fate error")
    func aCreateIsNeverResentByTheHTTPLayer() async throws {
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        let client = twilio.client()
        // The first message opens the connection; the second reuses it, and the stand-in creates
        // that message, then closes (or resets) the connection without answering. libcurl's own
        // "retry the same request on a fresh connect" would send it again.
        for (i, reset) in [false, true].enumerated() {
            let warm = "+1415555046\(i)", dropped = "+1415555047\(i)"
            await twilio.server.script(dropped, [.acceptThenDrop(reset: reset)])
            guard case .accepted = await client.send(to: warm, body: "warm") else { Issue.record("warm-up failed"); return }
            let result = await client.send(to: dropped, body: "once")
            let arrived = await twilio.server.received.filter { $0.to == dropped }
            #expect(arrived.count == 1 && arrived.first?.sid != nil, "exactly one create reached the server: \(arrived.count)")
            guard case .transport(let error, _) = result else { Issue.record("expected a transport error, got \(result)"); continue }
            #expect(error.requestMayHaveArrived, "the fate is unknown: \(error)")
            #expect(error.bodySent)
        }
        // A lookup (GET, no body) may be retried by libcurl: it changes nothing at Twilio.
        guard case .success = await client.findResend(to: "+14155550460", body: "warm", since: Date().addingTimeInterval(-60),
                                                      excluding: []) else {
            Issue.record("lookup failed"); return
        }
    }

    @Test("a request that never reached the server is reported as such: refused, or nothing of the body sent")
    func unreachableIsKnownNotSent() async throws {
        let http = HTTPClient()
        defer { http.shutdown() }
        let result = await http.send(.init(method: "POST", url: "http://127.0.0.1:1/x", body: "a=b"))
        guard case .failure(let error) = result else { Issue.record("expected a transport error"); return }
        #expect(!error.requestMayHaveArrived && !error.bodySent, "\(error)")
        let twilio = try await StandIn.start()
        defer { Task { await twilio.stop() } }
        await twilio.server.script("+14155550480", [.acceptThenDrop()])
        // A fresh connection dropped after the request: sent, fate unknown (libcurl does not retry).
        guard case .transport(let dropped, _) = await twilio.client().send(to: "+14155550480", body: "x") else {
            Issue.record("expected a transport error"); return
        }
        #expect(dropped.requestMayHaveArrived && dropped.code == 52, "\(dropped)")
    }

    @Test func manyConcurrentRequestsAllComplete() async throws {
        let twilio = try await StandIn.start(latency: .milliseconds(20))
        defer { Task { await twilio.stop() } }
        let client = twilio.client()
        let failures = await withTaskGroup(of: String?.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let result = await client.send(to: "+1415555\(String(format: "%04d", i))", body: "n\(i)")
                    if case .accepted = result { return nil }
                    return "\(result)"
                }
            }
            return await group.reduce(into: []) { if let f = $1 { $0.append(f) } }
        }
        #expect(failures.isEmpty, "\(failures)")
        #expect(await twilio.server.acceptedTotal == 200)
    }
}
