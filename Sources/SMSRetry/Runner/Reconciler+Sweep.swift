import Foundation
import Logging
import Synchronization

/// The sweep (`reconcile`'s second phase): Twilio's final words on accepted messages whose
/// callbacks never arrived. Decisions are `Sweep`'s; this file moves rows and answers.
extension Reconciler {
    func sweep(_ summary: inout Summary) async throws {
        var walk = Sweep.TableWalk()
        var candidates: [RetryStore.SweepCandidate] = []
        while !walk.done {
            let cursor = walk.cursor
            let chunk = try await store.surviving(logger: logger, "read the sweep's rows") {
                try await self.store.sweepChunk(below: cursor, size: Sweep.TableWalk.chunk, settle: self.options.confirmAfter,
                                                window: self.options.maxAge, sidKeyPath: self.options.sidKeyPath)
            }
            walk.read(lowestID: chunk.lowestID, rows: chunk.rows, rowsInWindow: chunk.rowsInWindow)
            candidates += chunk.candidates
        }
        guard !candidates.isEmpty else { return }
        let way = Sweep.choose(candidates: candidates.count, rowsInWindow: walk.inWindow, forced: options.sweepBy)
        summary.way = way
        summary.swept = candidates.count
        logger.info("sweep: asking Twilio", metadata: ["sweep.candidates": "\(candidates.count)", "sweep.by": "\(way.rawValue)",
                                                       "sweep.rows_read": "\(walk.scanned)", "sweep.rows_in_window": "\(walk.inWindow)"])
        let gate = Pacer(clock: store.clock)
        if way == .list {
            try await sweepByList(candidates, gate: gate, &summary)
        } else {
            try await sweepBySID(candidates, gate: gate, &summary)
        }
    }

    /// The sweep's requests through one `SendGate` (a 429 pauses every asker) whose rate
    /// `Sweep.Pace` sets once Twilio has throttled.
    final class Pacer: Sendable {
        let gate: SendGate
        let pace: Mutex<Sweep.Pace>
        let clock: SMSRetryClock
        let start: SMSRetryClock.Instant
        init(clock: SMSRetryClock) {
            self.clock = clock
            gate = SendGate(rate: nil, maxBackoff: .seconds(30), clock: clock)
            start = clock.now
            pace = Mutex(Sweep.Pace(now: 0))
        }
        var now: Double { (clock.now - start).seconds }
    }

    /// A request, again after a 429 (not processed, so not a second question), at most 30 times.
    private func asking<T: Sendable>(_ pacer: Pacer, _ request: () async -> Result<T, TwilioClient.LookupError>)
        async -> (Result<T, TwilioClient.LookupError>, requests: Int) {
        var made = 0
        while true {
            _ = await pacer.gate.admit(before: pacer.clock.now + .seconds(3600))
            made += 1
            let result = await request()
            if case .failure(let error) = result, error.throttled, made < 30 {
                let pause = pacer.gate.throttled(retryAfter: error.retryAfter)
                if pause.extended {
                    let now = pacer.now
                    let rate = pacer.pace.withLock { $0.throttled(now: now) }
                    pacer.gate.setRate(rate)
                    logger.warning("Twilio is throttling the sweep; it slows down",
                                   metadata: ["sweep.pause_s": "\(pause.seconds)", "sweep.rate": "\(rate)"])
                }
                continue
            }
            if case .success = result {
                pacer.gate.accepted()
                let now = pacer.now
                if let changed = pacer.pace.withLock({ $0.answered(now: now) }) { pacer.gate.setRate(changed) }
            }
            return (result, made)
        }
    }

    private func sweepBySID(_ candidates: [RetryStore.SweepCandidate], gate: Pacer, _ summary: inout Summary) async throws {
        var start = 0
        while start < candidates.count && !summary.unauthorized {
            let batch = Array(candidates[start..<min(start + options.writeBatch, candidates.count)])
            start += batch.count
            let answers = await concurrently(batch) { candidate in
                await self.asking(gate) { await self.twilio.message(sid: candidate.sid) }
            }
            var statuses: [RetryStore.SweptStatus] = []
            for (candidate, (answer, requests)) in zip(batch, answers) {
                summary.requests += requests
                switch answer {
                case .success(let message?):
                    if let status = DeliveryStatus(rawValue: message.status.lowercased()) {
                        statuses.append(.init(candidate: candidate, status: status, errorCode: message.errorCode))
                    } else {
                        summary.unseen += 1
                    }
                case .success(nil):
                    summary.unseen += 1
                case .failure(let error):
                    summary.errors += 1
                    summary.unauthorized = summary.unauthorized || error.unauthorized
                }
            }
            try await apply(statuses, &summary)
        }
    }

    private func sweepByList(_ candidates: [RetryStore.SweepCandidate], gate: Pacer, _ summary: inout Summary) async throws {
        var bySID: [String: RetryStore.SweepCandidate] = [:]
        for candidate in candidates where bySID[candidate.sid] == nil { bySID[candidate.sid] = candidate }
        // Twilio's date_created comes before the router's created_at by the router's request;
        // a margin covers it and clocks that disagree.
        let oldest = candidates.map(\.created).min()!.addingTimeInterval(-300)
        var walk = Sweep.ListWalk(wanted: Set(bySID.keys), since: oldest, maxPages: candidates.count)
        var url = twilio.messageListURL(pageSize: Sweep.listPageSize)
        var statuses: [RetryStore.SweptStatus] = []
        walking: while true {
            let (answer, requests) = await asking(gate) { await self.twilio.messagePage(url) }
            summary.requests += requests
            guard case .success(let page) = answer else {
                if case .failure(let error) = answer {
                    summary.errors += 1
                    summary.unauthorized = summary.unauthorized || error.unauthorized
                    logger.warning("could not read Twilio's message list; the rest is asked next time",
                                   metadata: ["twilio.error": "\(error)"])
                }
                break walking
            }
            let (found, next) = walk.read(page.messages, nextPageURI: page.next)
            for message in found {
                guard let status = DeliveryStatus(rawValue: message.status.lowercased()) else { summary.unseen += 1; continue }
                statuses.append(.init(candidate: bySID[message.sid]!, status: status, errorCode: message.errorCode))
            }
            if statuses.count >= options.writeBatch {
                try await apply(statuses, &summary)
                statuses = []
            }
            switch next {
            case .follow(let path): url = twilio.config.baseURL + path
            case .done: break walking
            }
        }
        try await apply(statuses, &summary)
        summary.unseen += walk.wanted.count
    }

    /// Writes a batch of Twilio's words (one transaction) and logs one line for it.
    private func apply(_ statuses: [RetryStore.SweptStatus], _ summary: inout Summary) async throws {
        guard !statuses.isEmpty else { return }
        let outcomes = try await store.surviving(logger: logger, "record the sweep's statuses") {
            try await self.store.applySweptStatuses(statuses)
        }
        var counts = (confirmed: 0, undelivered: 0, failed: 0, pending: 0, scheduled: 0, closed: 0)
        for status in statuses {
            switch Sweep.Word(status.status.rawValue) {
            case .confirmed: counts.confirmed += 1
            case .undelivered: counts.undelivered += 1
            case .failed: counts.failed += 1
            case .pending, .unknown: counts.pending += 1
            }
            switch outcomes[status.candidate.id] {
            case .scheduled?: counts.scheduled += 1; summary.updated += 1
            case .closed?: counts.closed += 1; summary.updated += 1
            case .delivered?: summary.updated += 1
            default: break
            }
        }
        summary.confirmed += counts.confirmed
        summary.undelivered += counts.undelivered
        summary.failed += counts.failed
        summary.pending += counts.pending
        logger.info("sweep: Twilio's words recorded",
                    metadata: ["sweep.rows": "\(statuses.count)", "sweep.confirmed": "\(counts.confirmed)",
                               "sweep.undelivered": "\(counts.undelivered)", "sweep.failed": "\(counts.failed)",
                               "sweep.pending": "\(counts.pending)", "sweep.scheduled": "\(counts.scheduled)",
                               "sweep.closed": "\(counts.closed)"])
    }
}
