import Synchronization

/// The router's word, read right before each send (`RetryStore.routerWord`): a row the router
/// confirmed (`success` true) or deleted after the claim is not sent. The rows about to start at
/// one moment share one statement: while a check is out, the rows that arrive wait for the next
/// one, so the cost is a statement per wave of sends, not one per row. A read, so safe to repeat:
/// through a lost connection it is retried as the claim is (up to 15 s), and the sends wait.
final class RouterWordCheck: Sendable {
    typealias Answer = Result<RouterWord?, any Error>
    private struct Waiting {
        var rows: [(id: Int, answer: CheckedContinuation<Answer, Never>)] = []
        var checking = false
    }

    private let store: RetryStore
    private let waiting = Mutex(Waiting())

    init(store: RetryStore) { self.store = store }

    /// What the router said of row `id` since its claim: nil when it may be sent.
    func word(for id: Int) async -> Answer {
        await withCheckedContinuation { answer in
            let first = waiting.withLock { w in
                w.rows.append((id, answer))
                defer { w.checking = true }
                return !w.checking
            }
            if first { Task { await self.checkAll() } }
        }
    }

    /// Checks every waiting row, again and again until none waits.
    private func checkAll() async {
        while true {
            let rows = waiting.withLock { w in
                defer { w.rows.removeAll() }
                if w.rows.isEmpty { w.checking = false }
                return w.rows
            }
            guard !rows.isEmpty else { return }
            let words: Result<[Int: RouterWord], any Error>
            do {
                words = .success(try await store.surviving("read the router's word") {
                    try await self.store.routerWord(ids: rows.map(\.id))
                })
            } catch { words = .failure(error) }
            for row in rows { row.answer.resume(returning: words.map { $0[row.id] }) }
        }
    }
}
