extension RetryPolicy {
    /// The default table, from Twilio's documented meaning of each code (see README for where
    /// it departs from the seed design: 30002, 30004, 30005 are permanent, 30008 transient).
    public static let `default` = RetryPolicy(
        codes: [
            30001: .exponential(3, 60, "queue overflow"),
            30003: .linear(2, 300, "unreachable destination handset"),
            30008: .exponential(1, 120, "unknown error"),
            30017: .exponential(3, 300, "carrier network congestion"),
            30022: .linear(3, 300, "US A2P 10DLC rate limit exceeded (over the campaign's throughput)").ofTheSender,
            30023: .linear(1, 6 * 3600, "US A2P 10DLC daily cap reached"),
            30027: .linear(1, 6 * 3600, "US A2P 10DLC T-Mobile daily limit reached"),
            30410: .exponential(2, 300, "provider timeout; Twilio did not retry"),
            30450: .linear(2, 1200, "message delivery blocked by SMS pumping protection"),

            21211: .permanent("invalid 'To' phone number"),
            21214: .permanent("'To' phone number cannot be reached"),
            21408: .permanent("permission to send to this region is not enabled"),
            21606: .permanent("'From' number is not a valid message-capable number for this destination").ofTheSender,
            21212: .permanent("invalid 'From' number").ofTheSender,
            21659: .permanent("'From' is not a Twilio phone number, or a short code of another country").ofTheSender,
            21660: .permanent("'From' number is not on this account").ofTheSender,
            21661: .permanent("'From' number is not SMS-capable").ofTheSender,
            21608: .permanent("unverified 'To' number on a trial account"),
            21610: .permanent("recipient unsubscribed (replied STOP)"),
            21612: .permanent("'From'/'To' pair cannot send messages"),
            21614: .permanent("'To' number is not a mobile number"),
            21617: .permanent("body exceeds the 1600 character limit"),
            30002: .permanent("account suspended"),
            30004: .permanent("message blocked (blocklist or opt-out)"),
            30005: .permanent("unknown destination handset"),
            30006: .permanent("landline or unreachable carrier"),
            30007: .permanent("message filtered (spam or carrier policy)"),
            30024: .permanent("numeric sender ID not provisioned by carrier"),
            30032: .permanent("toll-free number has not been verified").ofTheSender,
            30034: .permanent("US A2P 10DLC message from an unregistered number").ofTheSender,
            30036: .permanent("validity period expired"),
        ],
        transport: .exponential(3, 60, "HTTP 5xx or transport error (timeout, refused, reset)"),
        unknown3xxxx: .exponential(2, 120, "unlisted 3xxxx delivery error")
    )
}
