/// The words sms-retry writes into `sms_retry` and `final_status`, in one place: the
/// views of migration 005 read the same words (`LabelTests` checks every one they compare
/// against is here).

/// A history entry's label (`sms_retry.history[].outcome`).
enum HistoryLabel: String, CaseIterable, Sendable {
    /// Twilio accepted the resend (or a send found at Twilio).
    case sent
    /// Twilio refused it with an error code.
    case rejected
    /// Twilio answered 429 and the pause outlasted the row's time: handed back.
    case throttled
    /// HTTP 5xx or an answer without a usable code: it may have been created.
    case httpError = "http_error"
    /// Nothing was sent: bad input, or the request never reached Twilio.
    case notSent = "not_sent"
    /// A timeout, reset or close after the request left.
    case transportError = "transport_error"
    case expired
    case optedOut = "opted_out"
    case quietHours = "quiet_hours"
    case senderBlocked = "sender_blocked"
    /// The spend guard: closed unsent (`country_not_allowed`) or held (`budget_held`,
    /// `prefix_held`, `pumping_held`), the same words as the reason.
    case countryNotAllowed = "country_not_allowed"
    case budgetHeld = "budget_held"
    case prefixHeld = "prefix_held"
    case pumpingHeld = "pumping_held"
    /// Handed back when the outage breaker opened.
    case providerOutage = "provider_outage"
    /// A failure the router reported (or adoption classified).
    case failed
    case canceled
    case retryNow = "retry_now"
    /// Twilio's delivery statuses, when a callback or lookup reports one that ends the row.
    case delivered, undelivered

    init(_ reason: SpendReason) { self = HistoryLabel(rawValue: reason.rawValue)! }

    init(_ status: DeliveryStatus) {
        switch status {
        case .delivered, .read: self = .delivered
        case .undelivered: self = .undelivered
        case .failed: self = .failed
        case .canceled: self = .canceled
        case .queued, .accepted, .scheduled, .sending, .sent: self = .sent
        }
    }
}

/// Why a row stopped or waits (`sms_retry.reason`).
enum CloseReason: String, CaseIterable, Sendable {
    case expired
    case optedOut = "opted_out"
    case canceled
    case notRetryable = "not_retryable"
    case exhausted
    case notOutbound = "not_outbound"
    case emptyBody = "empty_body"
    case bodyTooLong = "body_too_long"
    case invalidPhoneNumber = "invalid_phone_number"
    /// Waiting for the recipient's quiet hours to end (the row is still pending).
    case quietHours = "quiet_hours"
    /// The router's word: its `success = true` (or `mark-sent`, or a delivered callback) ended
    /// the pending retry. Written by the record statement itself (`Queries.outcomesRecord`).
    case routerConfirmed = "router_confirmed"
    /// The spend guard (`SpendReason`): closed for the recipient's country, or held (still
    /// pending, uncounted) for the daily budget, the range's hourly cap, a pumping block.
    case countryNotAllowed = "country_not_allowed"
    case budgetHeld = "budget_held"
    case prefixHeld = "prefix_held"
    case pumpingHeld = "pumping_held"

    init(_ reason: SpendReason) {
        switch reason {
        case .countryNotAllowed: self = .countryNotAllowed
        case .budget: self = .budgetHeld
        case .prefixVelocity: self = .prefixHeld
        case .pumping: self = .pumpingHeld
        }
    }

    init(_ reason: GiveUpReason) {
        switch reason {
        case .notRetryable: self = .notRetryable
        case .exhausted: self = .exhausted
        }
    }
}

/// `final_status`: sms-retry writes exactly these (migration 009's guard keeps others' UPDATEs out).
enum FinalStatus: String, CaseIterable, Sendable {
    case unknown, sent, delivered, failed, undelivered
}
