import Testing
@testable import SMSRetry

/// What the two facts a server reports (pg_is_in_recovery(), transaction_read_only) make of a
/// connection, and the line a writing command ends with.
@Suite struct DatabaseAccessTests {
    @Test func recoveryMeansAStandbyWhateverTheSessionSays() {
        // A hot standby reports transaction_read_only too; recovery is the stronger fact.
        #expect(DatabaseAccess(inRecovery: true, transactionReadOnly: true) == .standby)
        #expect(DatabaseAccess(inRecovery: true, transactionReadOnly: false) == .standby)
        #expect(DatabaseAccess(inRecovery: false, transactionReadOnly: true) == .readOnlySession)
        #expect(DatabaseAccess(inRecovery: false, transactionReadOnly: false) == .readWrite)
    }

    @Test func onlyAReadWriteConnectionTakesWrites() {
        #expect(DatabaseAccess.readWrite.allowsWrites)
        #expect(!DatabaseAccess.standby.allowsWrites && !DatabaseAccess.readOnlySession.allowsWrites)
        #expect(DatabaseAccess.readWrite.refusal(command: "run") == nil && DatabaseAccess.readWrite.summary == nil)
    }

    @Test func theRefusalIsOneLineNamingTheCommandAndThePrimary() throws {
        let standby = try #require(DatabaseAccess.standby.refusal(command: "reconcile"))
        #expect(standby.hasPrefix("the database is a read-only standby (pg_is_in_recovery() is true), and reconcile writes to it"))
        #expect(standby.contains("point --database-url (or DATABASE_URL, PGHOST/PGPORT) at the primary"))
        let session = try #require(DatabaseAccess.readOnlySession.refusal(command: "migrate"))
        #expect(session.contains("transaction_read_only is on") && session.contains("and migrate writes to it"))
        #expect(session.contains("read-write endpoint") && session.contains("default_transaction_read_only"))
        for line in [standby, session] {
            #expect(!line.contains("\n"))
            #expect(line.contains("read-only standby"))
        }
    }
}
