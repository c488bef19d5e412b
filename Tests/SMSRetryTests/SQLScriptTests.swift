import Testing
@testable import SMSRetry

@Suite struct SQLScriptTests {
    @Test func splitsLikePsql() throws {
        let script = """
            -- header; with a semicolon
            SET lock_timeout = '2s';
            DO $$
            BEGIN
                IF true THEN RAISE NOTICE 'a;b'; END IF;
            END
            $$;
            /* block; comment */ SELECT 'it''s; fine', "odd;name" FROM t;
            SELECT $tag$ ; $$ ; $tag$;
            -- trailing comment only
            """
        let statements = try SQLScript.statements(script).map(\.sql)
        #expect(statements.count == 4)
        #expect(statements[0].hasSuffix("SET lock_timeout = '2s'"))
        #expect(statements[1].hasPrefix("DO $$") && statements[1].contains("RAISE NOTICE 'a;b';") && statements[1].hasSuffix("$$"))
        #expect(statements[2].contains("'it''s; fine', \"odd;name\""))
        #expect(statements[3] == "SELECT $tag$ ; $$ ; $tag$")
    }

    @Test("\\gexec ends a generating query, as in psql; other meta-commands are refused")
    func gexec() throws {
        let script = """
            SET lock_timeout = '2s';
            SELECT format('CREATE INDEX %I ON t (a)', 'x\\y') -- a comment
            \\gexec
            SELECT 'a;b'\\gexec
            SELECT 1;
            """
        let statements = try SQLScript.statements(script)
        #expect(statements.map(\.generates) == [false, true, true, false])
        #expect(statements[1].sql.hasPrefix("SELECT format(") && statements[1].sql.contains("'x\\y'"))
        #expect(statements[2].sql == "SELECT 'a;b'")
        #expect(throws: SQLScript.UnsupportedCommand.self) { try SQLScript.statements("SELECT 1;\n\\i other.sql\n") }
    }

    @Test func arrayLiterals() {
        #expect(PGArray.literal(["a", nil, "q\"uote", "back\\slash", "nul\u{0}byte"] as [String?])
                == #"{"a",NULL,"q\"uote","back\\slash","nulbyte"}"#)
        #expect(PGArray.literal([1, nil, 3] as [Int?]) == #"{"1",NULL,"3"}"#)
        #expect(PGArray.literal([] as [String?]) == "{}")
    }
}
