import Foundation
import Logging

/// Asking Twilio about a send whose fate is unknown, for `run` (before a resend) and
/// `reconcile` alike; neither calls the other.
enum DoubtLookup {
    /// What Twilio knows about an unknown-fate row's last send.
    enum Resolution {
        /// It created the message: this outcome records it (attempt counted, status applied).
        case found(Outcome)
        /// No such message: sending again cannot duplicate one.
        case notFound
        case failed(TwilioClient.LookupError)
    }

    /// Looks up the message an unknown-fate send may have created (same number and body,
    /// created since the send started, not the row's known SID).
    /// The message found is that uncertain attempt (`Doubt.attribution`): counted once in all
    /// (completing the attempt's history entry when it was already counted or was the router's
    /// own send, adding one when a dead run made it).
    /// A message that another row of the table already holds (its `twilio_message_sid`: the
    /// router sent the same body to the same number, as row after row of a template does) is not
    /// this row's: the search goes on past it.
    static func resolve(_ row: RetryStore.ClaimedRow, twilio: TwilioClient, store: RetryStore, logger: Logger) async -> Resolution {
        let (policy, now) = (store.policy, store.clock.wallNow())
        let doubt = row.doubt ?? Doubt(since: now, counted: false)
        var excluded: Set<String> = row.sid.map { [$0] } ?? []
        var lookup = await twilio.findResend(to: row.phoneNumber, body: row.content ?? "", since: doubt.since, excluding: excluded)
        while case .success(let found?) = lookup {
            let taken: Bool
            do { taken = try await store.sidHeldElsewhere(found.sid, notRow: row.id) } catch {
                lookup = .failure(TwilioClient.LookupError(description: "could not tell whose message \(found.sid) is: \(error)", inconclusive: true))
                break
            }
            guard taken else { break }
            guard excluded.count < 10 else {
                lookup = .failure(TwilioClient.LookupError(description: "10 messages with this body to this number belong to other rows; not concluded", inconclusive: true))
                break
            }
            excluded.insert(found.sid)
            lookup = await twilio.findResend(to: row.phoneNumber, body: row.content ?? "", since: doubt.since, excluding: excluded)
        }
        switch lookup {
        case .success(let found?):
            let (counted, amend) = doubt.attribution(created: found.dateCreated)
            var outcome = Outcome.status(id: row.id, sid: found.sid, status: DeliveryStatus(rawValue: found.status) ?? .sent,
                                         errorCode: found.errorCode, attemptsMade: row.retryCount + (counted ? 1 : 0),
                                         counted: counted, found: true, policy: policy, now: now)
            outcome.amend = amend
            outcome.uncertain = .clear
            outcome.reconciled = true
            outcome.note = "found at Twilio (\(found.status)); not resent"
            outcome.leaseUntil = row.leaseUntil
            logger.info("earlier send found at Twilio; not resent",
                        metadata: ["sms.log_id": "\(row.id)", "sms.sid": "\(found.sid)", "sms.status": "\(found.status)"])
            return .found(outcome)
        case .success(nil):
            return .notFound
        case .failure(let error):
            logger.warning("could not ask Twilio about an earlier send; not resending yet",
                           metadata: ["sms.log_id": "\(row.id)", "twilio.error": "\(error)"])
            return .failed(error)
        }
    }
}
