import Testing
@testable import SMSRetry

@Suite struct ServerLimitTests {
    @Test func eachTimeoutSQLStateNamesItsSetting() {
        func setting(_ state: String, _ message: String) -> String? {
            DatabaseError(kind: .query, sqlState: state, message: message).timeoutSetting
        }
        #expect(setting("57014", "canceling statement due to statement timeout") == "statement_timeout")
        #expect(setting("57014", "canceling statement due to user request") == nil, "a cancel by hand is no setting")
        #expect(setting("55P03", "canceling statement due to lock timeout") == "lock_timeout")
        #expect(setting("25P03", "terminating connection due to idle-in-transaction timeout") == "idle_in_transaction_session_timeout")
        #expect(setting("25P04", "terminating connection due to transaction timeout") == "transaction_timeout")
        #expect(setting("23505", "duplicate key value violates unique constraint") == nil)
        #expect(DatabaseError(kind: .connection, message: "server closed the connection unexpectedly").timeoutSetting == nil)
        #expect(DatabaseError(kind: .connection, message: "FATAL:  terminating connection due to idle-in-transaction timeout").timeoutSetting
                == "idle_in_transaction_session_timeout", "PostgreSQL 15 through libpq: the text, no SQLSTATE")
    }

    @Test func theRolesSettingGetsAnAlterRole() {
        let limit = ServerLimit(setting: "statement_timeout", value: "50ms", milliseconds: 50, source: "user", role: "sms_runtime")
        #expect(limit.line("the record of 100 rows")
                == "statement_timeout = 50ms (the role's setting) cancelled the record of 100 rows; give sms-retry's role more: ALTER ROLE sms_runtime SET statement_timeout = '5s'")
    }

    @Test func whereTheValueComesFromDecidesTheFix() {
        var limit = ServerLimit(setting: "lock_timeout", value: "2s", milliseconds: 2000, source: "database", role: "app", database: "sms")
        #expect(limit.line("the claim of 1 row")
                == "lock_timeout = 2s (the database's setting) cancelled the claim of 1 row; give sms-retry's role more: ALTER ROLE app SET lock_timeout = '20s'")
        limit.source = "database user"
        #expect(limit.line("x").hasSuffix("ALTER ROLE app IN DATABASE sms SET lock_timeout = '20s'"), "only a role-in-database setting beats it")
        limit.source = "configuration file"
        #expect(limit.line("x").contains("(the server's configuration)"))
        limit.source = "client"
        #expect(limit.line("x").contains("(the connection's options)") && limit.line("x").contains("PGOPTIONS"))
    }

    @Test func theIdleTimeoutClosesTheSession() {
        let limit = ServerLimit(setting: "idle_in_transaction_session_timeout", value: "50ms", milliseconds: 50, source: "user", role: "Mixed Case")
        #expect(limit.line("the adoption of 500 rows")
                == "idle_in_transaction_session_timeout = 50ms (the role's setting) closed the session during the adoption of 500 rows; give sms-retry's role more: ALTER ROLE \"Mixed Case\" SET idle_in_transaction_session_timeout = '5s'")
    }

    @Test func aValueThatCouldNotBeReadIsSaidSo() {
        #expect(ServerLimit(setting: "statement_timeout").line("the run")
                == "statement_timeout (its value could not be read) cancelled the run; give sms-retry's role more: ALTER ROLE <sms-retry's role> SET statement_timeout = '5s'")
    }

    @Test func aCancelledPieceIsSplitThenRetriedThenGivenUp() {
        #expect(StatementSizing.afterTimeout(count: 100, tries: 0, elapsed: .zero) == .split(first: 50))
        #expect(StatementSizing.afterTimeout(count: 3, tries: 0, elapsed: .seconds(1)) == .split(first: 1))
        #expect(StatementSizing.afterTimeout(count: 1, tries: 0, elapsed: .zero) == .retry(after: .milliseconds(250)))
        #expect(StatementSizing.afterTimeout(count: 1, tries: 5, elapsed: .seconds(2)) == .retry(after: .seconds(2)))
        #expect(StatementSizing.afterTimeout(count: 1, tries: 5, elapsed: .seconds(9)) == .giveUp)
        #expect(StatementSizing.smaller(100) == 50)
        #expect(StatementSizing.smaller(1) == nil)
    }
}
