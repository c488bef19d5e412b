/// What a router's role needs to report in SQL (migration 012), and nothing more: USAGE on the
/// table's schema and EXECUTE on the report functions. They are SECURITY DEFINER: they write
/// sms-retry's columns as their owner, so the router's role needs no privilege on them (its own
/// INSERT and UPDATE of its columns it already has). `migrate --grant-router` grants this list
/// and `check --router-role` checks it.
extension Migrator {
    /// The report functions, as GRANT names them.
    public static let reportFunctions = [
        "sms_retry_report_failure(bigint, integer, text)", "sms_retry_report_sent(bigint, text)", "sms_retry_report_status(text, text, integer)",
        "sms_retry_cancel(bigint)", "sms_retry_retry_now(bigint)", "sms_retry_state(bigint)",
    ]

    public static func routerPrivileges(_ db: Database, schema: String, role: String) async throws -> [RuntimePrivilege] {
        var needed = [RuntimePrivilege(privilege: "USAGE", object: "SCHEMA \(schema)",
                                       held: try await db.query("SELECT has_schema_privilege($1::name, $2::text, 'USAGE') AS ok",
                                                                [role, schema])[0].bool("ok") ?? false)]
        for function in reportFunctions {
            let r = try await db.query("""
                SELECT format('%I.%s', $2::text, $3::text) AS o,
                       to_regprocedure(format('%I.%s', $2::text, $3::text)) IS NOT NULL
                       AND has_function_privilege($1::name, to_regprocedure(format('%I.%s', $2::text, $3::text)), 'EXECUTE') AS ok
                """, [role, schema, function])[0]
            needed.append(RuntimePrivilege(privilege: "EXECUTE", object: "FUNCTION " + (r.string("o") ?? function), held: r.bool("ok") ?? false))
        }
        return needed
    }

    /// Grants `role` what a router needs to call the report functions. Rerunnable. Returns the
    /// statements run.
    public func grantRouter(_ db: Database, to role: String) async throws -> [String] {
        guard try await db.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]).first != nil else {
            throw MigrationError(message: "no role \(role) (the role the router connects as)", tableNotFound: true)
        }
        guard let schema = try await table(db).schema else {
            throw MigrationError(message: "no table sms_usage_logs in the search path to grant on", tableNotFound: true)
        }
        let quoted = try await db.query("SELECT quote_ident($1) AS r, quote_ident($2) AS s", [role, schema])[0]
        let who = quoted.string("r") ?? role
        let statements = ["GRANT USAGE ON SCHEMA \(quoted.string("s") ?? schema) TO \(who)",
                          "GRANT EXECUTE ON FUNCTION " + Self.reportFunctions.map { "\(quoted.string("s") ?? schema).\($0)" }.joined(separator: ", ") + " TO \(who)"]
        for statement in statements { try await db.query(statement) }
        return statements
    }
}
