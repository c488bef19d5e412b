/// Where the SQL report functions read the policy (migration 012's `sms_retry_policy()`): the
/// same `RetryPolicy` `run` loads, rendered by `RetryPolicy.sqlJSON`, written as the function's
/// body. No table: the function is redefined by `migrate` and `policy apply`, and `check`
/// compares it with the policy `run` would load.
public enum SQLPolicy {
    /// Redefines `sms_retry_policy()` to return `policy`. The policy's text travels as a bound
    /// parameter; the server quotes it into the definition (`format('%L')`).
    public static func install(_ policy: RetryPolicy, on db: Database) async throws {
        let definition = try await db.query("""
            SELECT format('CREATE OR REPLACE FUNCTION sms_retry_policy() RETURNS jsonb LANGUAGE sql STABLE PARALLEL SAFE AS %L',
                          format('SELECT %L::jsonb', $1::jsonb::text)) AS ddl
            """, [policy.sqlJSON])[0].string("ddl")!
        try await db.query(definition)
    }

    /// Whether the functions read `policy` (false also when migration 012 is not applied).
    public static func matches(_ policy: RetryPolicy, on db: Database) async throws -> Bool {
        guard try await db.query("SELECT to_regprocedure('sms_retry_policy()') IS NOT NULL AS made")[0].bool("made") == true else {
            return false
        }
        return try await db.query("SELECT sms_retry_policy() = $1::jsonb AS same", [policy.sqlJSON])[0].bool("same") ?? false
    }
}
