import Testing
@testable import SMSRetry

@Suite struct DirectionTests {
    @Test("outbound in Twilio's spellings, any case, surrounding spaces ignored; inbound; nothing else")
    func spellings() {
        for raw in ["outbound", "OUTBOUND", " Outbound ", "outbound-api", "Outbound-Reply", "outbound-call\n", "\toutbound-API"] {
            #expect(Direction(raw) == .outbound, "\(raw)")
        }
        for raw in ["inbound", "INBOUND", " Inbound\r\n"] { #expect(Direction(raw) == .inbound, "\(raw)") }
        for raw: String? in [nil, "", "out", "outgoing", "out bound", "outbound-", "inbound-api", "sideways"] {
            #expect(Direction(raw) == nil, "\(raw ?? "nil")")
        }
        #expect(RetryStore.isOutbound("Outbound-Api") && !RetryStore.isOutbound("inbound") && !RetryStore.isOutbound(nil))
    }
}
