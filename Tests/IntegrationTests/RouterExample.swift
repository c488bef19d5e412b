// The README's "From a Swift router" example, compiled here and run by ReadmeExampleTests; the
// README shows the lines between the markers, and that test checks that it still does.
// example: begin
import SMSRetry

/// After each send: the SID Twilio returned, or Twilio's error code (nil for a 5xx or no answer).
func reportSend(_ store: RetryStore, logID: Int, sid: String?, errorCode: Int?, error: String?) async throws {
    if let sid {
        _ = try await store.recordSent(logID: logID, messageSID: sid)
        return
    }
    switch try await store.recordFailure(logID: logID, errorCode: errorCode, errorMessage: error) {
    case .scheduled(let attempt, let at): print("resend \(attempt) due at \(at)")
    case .held(let until, _): print("held, not counted, until \(until) (Twilio's SMS pumping protection)")
    case .notRetryable(let code, let meaning): print("closed: \(code ?? 0) \(meaning)")
    case .exhausted, .rowNotFound, .notOutbound, .alreadySent: break
    }
}

/// The router's own StatusCallback route: checks X-Twilio-Signature, applies the status, and
/// returns the HTTP status to answer (200, or 403 for a forged request).
func statusCallback(_ callbacks: StatusCallbackHandler, query: String?, contentType: String?,
                    signature: String?, body: [UInt8]) async -> Int {
    await callbacks.handle(query: query, contentType: contentType, signatureHeader: signature, body: body).status
}
// let store = try await RetryStore.open()        // "" = the PG* environment, or a conninfo / URI
// let callbacks = StatusCallbackHandler(store: store, authToken: token,
//                                       publicURL: "https://sms.example.com/twilio/status")
// example: end
