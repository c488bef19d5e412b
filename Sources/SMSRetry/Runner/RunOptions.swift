import Foundation

/// How one `sms-retry run` behaves.
public struct RunOptions: Sendable {
    /// Rows claimed per statement (at least `concurrency`).
    public var batchSize = 100
    /// Requests in flight at once.
    public var concurrency = 16
    /// Stop after claiming this many rows in all (nil: until nothing is due).
    public var limit: Int? = nil
    /// Stop claiming after this long (default 110 s, so a `*/2` cron never piles up).
    public var maxRuntime: Duration = .seconds(110)
    /// How long a claim holds its rows (seconds). A run that dies leaves them due again after it.
    public var lease: Double = 300
    /// Longest pause after a 429 without `Retry-After` (the backoff doubles from 1 s up to this),
    /// and how long before a row handed back for throttling or an unreachable Twilio is due again.
    public var throttleDelay: Double = 30
    /// Requests per second for all runs working at the moment, shared by their senders (nil: as
    /// fast as Twilio takes). Each run takes its share, re-counted every second (`FleetRate`).
    public var rate: Double? = nil
    /// Requests per second per sender (a From / Messaging Service), for all runs together:
    /// Twilio's MPS is per sender.
    public var senderRate: Double? = nil
    /// The outage breaker: the run stops sending when `breakerThreshold` of the last
    /// `breakerWindow` attempts failed for reasons that are not the message's (5xx, timeouts,
    /// connection errors).
    public var breakerWindow = 20
    public var breakerThreshold = 11
    /// Messages older than this (seconds since the router created the row) are closed with
    /// reason `expired` instead of being sent late. Default 24 h.
    public var maxAge: Double = 86_400
    /// Classify failed outbound rows the router never reported (no retry state) before claiming:
    /// for routers that only write `success = false` and an `error_message`. Off by default.
    public var adopt = false
    /// Adopt only rows written at least this long ago (seconds), so a router that reports
    /// through the library right after writing its row is never raced.
    public var adoptGrace: Double = 30

    public init() {}
}

/// What a run did; `description` is the one summary line the CLI prints.
public struct RunSummary: Sendable, CustomStringConvertible {
    public var claimed = 0
    /// Accepted by Twilio.
    public var sent = 0
    /// Failed and scheduled again (including throttled messages, which use no attempt).
    public var rescheduled = 0
    /// Failed and closed: not retryable, or no attempts left.
    public var failed = 0
    /// Closed without sending: inbound rows, empty bodies, numbers that are not E.164.
    public var skipped = 0
    /// Closed without sending because the message had grown older than the maximum age.
    public var expired = 0
    /// Failed rows the router never reported, given retry state by this run: how many were
    /// scheduled, how many closed and why.
    public var adoption = AdoptionSplit()
    /// Failed rows the router never reported, given retry state by this run (scheduled or closed).
    public var adopted: Int { adoption.total }
    /// Found at Twilio instead of resent: an earlier send whose answer was lost had created it.
    public var reconciled = 0
    /// Handed back unsent (run stopping, throttling, lease running out, Twilio unreachable): due again soon.
    public var released = 0
    /// Closed unsent because the number opted out (STOP, or Twilio's 21610) and has not opted in again.
    public var optedOut = 0
    /// 429 answers from Twilio (each message was sent again after the pause; nothing counted).
    public var throttled = 0
    /// Requests that never reached Twilio (refused, DNS, TLS): their rows were handed back
    /// uncounted (also in `released`).
    public var unreachable = 0
    /// Rows handed back uncounted because their sender was stopped (a sender-fault code).
    public var senderBlocked = 0
    /// Rows held for their recipient's quiet hours (back when the hours end, uncounted).
    public var quiet = 0
    /// The spend guard: rows closed because the recipient's country is not in
    /// `resend_countries`; rows held (uncounted) for the fleet's daily budget, for their range's
    /// hourly cap, for Twilio's pumping protection or a range the run stopped.
    public var countryNotAllowed = 0
    public var budgetHeld = 0
    public var prefixHeld = 0
    public var pumpingHeld = 0
    /// Ranges this run stopped after several pumping answers (30450), with how many.
    public var stoppedRanges: [String] = []
    /// Each sender stopped, masked, with Twilio's reason.
    public var blockedSenders: [String] = []
    /// Outcomes not written because the row's lease had passed to another run.
    public var lost = 0
    /// Claimed rows the router confirmed after the claim (`success` set true by the router,
    /// `mark-sent` or a delivered callback), seen before the send: not sent, pending retry ended.
    public var confirmed = 0
    /// Claimed rows the router deleted while this run held them (a retention job, a dropped
    /// partition): nothing to send or record.
    public var deleted = 0
    public var seconds = 0.0
    /// Why the run stopped early, if it did (e.g. Twilio refused the credentials).
    public var stoppedBecause: String? = nil
    /// True when the stop is a configuration problem (exit code 2).
    public var configurationError = false
    /// True when the outage breaker stopped the run (exit code 4).
    public var providerOutage = false
    /// Outcomes the database would not record, even in pieces (a DBA's time limit, a connection
    /// that stayed away): their rows keep the run's lease and come back when it ends, looked up
    /// at Twilio before any resend.
    public var unrecorded = 0
    /// The database error that ended the run (exit code 3), after what could be recorded was.
    public var databaseError: DatabaseError? = nil
    /// When a DBA's time limit was that error: the line naming the setting, its value, where it
    /// comes from and the fix (`ServerLimit.line`).
    public var databaseLimit: String? = nil

    public init() {}

    /// 0 all done; 1 some rows could not be processed and need a look (closed unsent as bad
    /// input, an outcome refused because the lease had passed to another run, rows held because
    /// the fleet's daily resend budget is spent: `budget_held=N`); 2
    /// configuration error (Twilio refused the credentials); 3 the database failed a statement
    /// for good (a connection that stayed away, a DBA's time limit); 4 Twilio outage (the breaker
    /// opened: rows handed back uncounted). Rows handed back at the runtime limit or after
    /// throttling, and opted-out numbers, are flow control, not failures: they do not change
    /// the exit code.
    public var exitCode: Int32 {
        if configurationError { return 2 }
        if databaseError != nil { return 3 }
        if providerOutage { return 4 }
        return skipped + lost + senderBlocked + budgetHeld > 0 ? 1 : 0
    }

    public var description: String {
        var line = "claimed=\(claimed) sent=\(sent) rescheduled=\(rescheduled) failed=\(failed) skipped=\(skipped)"
        if expired > 0 { line += " expired=\(expired)" }
        if reconciled > 0 { line += " reconciled=\(reconciled)" }
        if adopted > 0 { line += " " + adoption.fields }
        if optedOut > 0 { line += " opted_out=\(optedOut)" }
        if throttled > 0 { line += " throttled=\(throttled)" }
        if released > 0 { line += " released=\(released)" }
        if unreachable > 0 { line += " unreachable=\(unreachable)" }
        if senderBlocked > 0 { line += " sender_blocked=\(senderBlocked)" }
        if quiet > 0 { line += " quiet=\(quiet)" }
        if countryNotAllowed > 0 { line += " country_not_allowed=\(countryNotAllowed)" }
        if budgetHeld > 0 { line += " budget_held=\(budgetHeld)" }
        if prefixHeld > 0 { line += " prefix_held=\(prefixHeld)" }
        if pumpingHeld > 0 { line += " pumping_held=\(pumpingHeld)" }
        if confirmed > 0 { line += " router_confirmed=\(confirmed)" }
        if deleted > 0 { line += " deleted=\(deleted)" }
        if lost > 0 { line += " lost=\(lost)" }
        if unrecorded > 0 { line += " unrecorded=\(unrecorded)" }
        line += " seconds=" + String(format: "%.2f", seconds)
        if let why = stoppedBecause { line += " stopped=\"\(why)\"" }
        return line
    }
}
