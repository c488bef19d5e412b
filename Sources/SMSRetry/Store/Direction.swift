/// The one direction rule, twin of `sms_retry_direction(text)` (migration 005), which the views
/// and the adoption and opt-out indexes use: case and surrounding white space ignored;
/// outbound = `outbound`, and Twilio's `outbound-api`, `outbound-reply`, `outbound-call`;
/// inbound = `inbound`. Anything else is neither: never sent, not counted as outbound.
enum Direction: String, Sendable {
    case outbound, inbound

    init?(_ raw: String?) {
        guard let raw else { return nil }
        switch raw.trimmingCharacters(in: [" ", "\t", "\r", "\n"]).lowercased() {
        case "outbound", "outbound-api", "outbound-reply", "outbound-call": self = .outbound
        case "inbound": self = .inbound
        default: return nil
        }
    }
}
