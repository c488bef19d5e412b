import Testing
import SMSRetryPostgres

/// How a connection's mode is told from process IDs (`Pooling.judge`).
@Suite struct PoolingTests {
    @Test("the key PostgreSQL sent names the backend that answers: direct, no probe")
    func direct() {
        #expect(Pooling.judge(keyPID: 4242, serverPID: 4242, rounds: []) == .direct)
    }

    @Test("a pooler's key, the same backend each time and another one for the second client: session mode")
    func session() {
        let rounds: [(first: Int32?, other: Int32?, again: Int32?)] = [(100, 200, 100), (100, 201, 100), (100, 200, 100)]
        #expect(Pooling.judge(keyPID: 77_777, serverPID: 100, rounds: rounds) == .session)
    }

    @Test("the second client gets this one's backend, or this one gets another: transaction mode")
    func transaction() {
        #expect(Pooling.judge(keyPID: 77_777, serverPID: 100, rounds: [(100, 100, 100)]) == .transaction)
        #expect(Pooling.judge(keyPID: 77_777, serverPID: 100, rounds: [(100, 200, 100), (100, 200, 300)]) == .transaction)
        #expect(Pooling.judge(keyPID: 77_777, serverPID: 100, rounds: [(300, 200, 300)]) == .transaction)
    }

    @Test("a read that did not answer, or no probe at all behind a pooler: the mode that keeps less")
    func unknown() {
        #expect(Pooling.judge(keyPID: 77_777, serverPID: 100, rounds: [(100, nil, 100)]) == .transaction)
        #expect(Pooling.judge(keyPID: 77_777, serverPID: 100, rounds: []) == .transaction)
        #expect(!Pooling.transaction.keepsSession && Pooling.session.keepsSession && Pooling.direct.keepsSession)
    }
}
