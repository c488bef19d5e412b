import Testing
@testable import SMSRetry

@Suite("Twilio codes in what a router wrote")
struct ErrorCodeParserTests {
    @Test("texts routers write", arguments: [
        ("HTTP 400 error: Unable to create record: The 'To' number +14155550100 is not a valid phone number.", nil as Int?),
        ("HTTP 400 error: Unable to create record: Twilio 30003", 30003),
        ("Unable to create record: Attempt to send to unsubscribed recipient\nMore information: https://www.twilio.com/docs/errors/21610", 21610),
        ("Twilio error 30001: Queue overflow", 30001),
        ("HTTPSConnectionPool(host='api.twilio.com', port=443): Read timed out. (read timeout=30000 ms)", nil),
        ("timeout after 30000 ms", nil),
        ("request took 12000ms; error code 20429", 20429),
        ("Error code: 21211. HTTP 400", 21211),
        ("message of 16000 characters rejected", nil),
        ("sent to +447700900123 failed", nil),
        ("connection reset by peer", nil),
        ("price 10000.50 exceeded", nil),
        ("", nil),
    ])
    func texts(_ text: String, _ expected: Int?) {
        #expect(ErrorCodeParser.code(errorMessage: text, metadata: nil) == expected, "\(text)")
    }

    @Test("metadata wins over the text; numbers or numeric strings; other shapes ignored")
    func metadata() {
        #expect(ErrorCodeParser.code(errorMessage: "Twilio 30003", metadata: #"{"error_code": 30008}"#) == 30008)
        #expect(ErrorCodeParser.code(errorMessage: nil, metadata: #"{"twilio_error_code": "21610"}"#) == 21610)
        #expect(ErrorCodeParser.code(errorMessage: "Twilio 30003", metadata: #"{"code": "abc"}"#) == 30003)
        #expect(ErrorCodeParser.code(errorMessage: nil, metadata: #"[1, 2]"#) == nil)
        #expect(ErrorCodeParser.code(errorMessage: nil, metadata: "not json") == nil)
        #expect(ErrorCodeParser.code(errorMessage: nil, metadata: #"{"code": 7}"#) == nil)
    }
}
