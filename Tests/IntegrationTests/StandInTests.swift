import Foundation
import Testing
@testable import SMSRetry

/// The stand-in Twilio as the other tests lean on it: many of them run at once in one process.
@Suite struct StandInTests {
    /// Each test stops its stand-in when it ends while other tests' requests are on the wire. A
    /// stop that shut down descriptor numbers its connections had already given back (the kernel
    /// hands the lowest free number to the next socket in the process) broke another test's
    /// connection mid-request: curl 52, a transport failure, a row rescheduled instead of sent
    /// (OriginalMessageTests once saw `sent=5 rescheduled=1`). The race is caught by repetition:
    /// 120 rounds of one stand-in stopping while another answers fresh connections; before the
    /// fix a run saw 1 to 3 such sends of 960.
    @Test("stopping one stand-in leaves another's connections alone")
    func stoppingOneLeavesAnothersConnectionsAlone() async throws {
        let other = try await StandIn.start()
        defer { Task { await other.stop() } }
        var broken: [String] = []
        var sends = 0
        for round in 0..<120 {
            // A stand-in with 8 kept-alive connections, then stopped (its client shut down first,
            // as StandIn.stop does: its connections close while the server stops).
            let stopping = try await StandIn.start()
            let client = stopping.client()
            await withTaskGroup(of: Void.self) { group in
                for i in 0..<8 { group.addTask { _ = await client.send(to: "+1415557\(String(format: "%04d", i))", body: "a") } }
            }
            // Meanwhile 8 sends to the other stand-in on new connections (a client of their own).
            let http = HTTPClient()
            let fresh = TwilioClient(config: other.config(), http: http)
            async let stopped: Void = stopping.stop()
            let results = await withTaskGroup(of: SendResult.self, returning: [SendResult].self) { group in
                for i in 0..<8 { group.addTask { await fresh.send(to: "+1415558\(String(format: "%04d", i))", body: "b") } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            await stopped
            http.shutdown()
            for result in results {
                sends += 1
                if case .accepted = result { continue }
                broken.append("round \(round): \(result)")
            }
        }
        #expect(sends == 960 && broken.isEmpty, "\(broken.count) of \(sends) sends broken: \(broken.prefix(3))")
        #expect(await other.server.acceptedTotal == 960)
    }
}
