import Foundation
import Testing
@testable import SMSRetry
import TwilioStandIn

/// The fault suite (`make test-faults`; `make test` skips it): each drill tries to break one of
/// README's guarantees on a real PostgreSQL and the stand-in over loopback, and prints its
/// figure on a line starting `FIGURE`. Serialized: one drill stops the server.
@Suite(.serialized) struct FaultDrills {}

/// Prints a drill's figure where `swift test` shows it (and the closing note copies it).
func figure(_ drill: String, _ text: String) {
    FileHandle.standardOutput.write(Data("FIGURE \(drill): \(text)\n".utf8))
}

/// `key=value` from a run's summary line.
func summaryValue(_ line: String, _ key: String) -> Int {
    for field in line.split(whereSeparator: \.isWhitespace) where field.hasPrefix(key + "=") {
        return Int(field.dropFirst(key.count + 1)) ?? 0
    }
    return 0
}

extension TestDatabase {
    /// `count` failed outbound rows due now, numbers `prefix` + a 6-digit serial; returns the numbers.
    @discardableResult
    func seedDue(_ count: Int, prefix: String) async throws -> [String] {
        try await query("""
            INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content,
                                        success, error_message, sms_metadata, retry_count, next_retry_at)
            SELECT g, $1 || lpad(g::text, 6, '0'), 'outbound', 19, 'Your code is ' || lpad(g::text, 6, '0'),
                   false, 'Twilio error 30003', '{"campaign": "drill"}', 0, now() - interval '1 second'
            FROM generate_series(1, $2::int) AS g
            """, [prefix, String(count)])
        return (1...count).map { prefix + String(format: "%06d", $0) }
    }

    /// Makes the rows a dead run still holds due, as if their lease had run out.
    func expireLeases() async throws {
        try await query("""
            UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), next_retry_at = now() - interval '1 second'
            WHERE success = false AND sms_retry ? 'lease'
            """)
    }

    func count(_ condition: String) async throws -> Int {
        try await query("SELECT count(*) AS n FROM sms_usage_logs WHERE \(condition)")[0].int("n") ?? -1
    }

    /// Rows in neither consistent state: sent (success, the SID its history records, one attempt,
    /// nothing pending, no lease) or still to send (no SID, no attempt counted, pending).
    func halfUpdated() async throws -> Int {
        try await count("""
            message_direction = 'outbound' AND NOT (
              (success AND twilio_message_sid IS NOT NULL AND retry_count = 1 AND next_retry_at IS NULL
               AND NOT sms_retry ? 'lease'
               AND sms_retry -> 'history' -> -1 ->> 'sid' = twilio_message_sid
               AND sms_metadata ->> 'campaign' = 'drill')
              OR (NOT success AND twilio_message_sid IS NULL AND retry_count = 0 AND next_retry_at IS NOT NULL
               AND sms_metadata ->> 'campaign' = 'drill'))
            """)
    }
}

extension StandIn {
    /// Create requests per destination number that Twilio accepted.
    func acceptedPerNumber() async -> [String: Int] {
        var counts: [String: Int] = [:]
        for r in await server.received where r.sid != nil { counts[r.to, default: 0] += 1 }
        return counts
    }
}

/// The throwaway server `make test-faults` started (.ci/with-postgres), stopped and started again.
enum PostgresServer {
    static func pgctl(_ arguments: [String]) throws {
        let env = ProcessInfo.processInfo.environment
        guard let data = env["SMS_RETRY_PGDATA"], let bin = env["SMS_RETRY_PGBIN"] else {
            throw TestSetupError(description: "SMS_RETRY_PGDATA / SMS_RETRY_PGBIN not set: run `make test-faults`")
        }
        let process = Process()
        var command = [bin + "/pg_ctl", "-D", data, "-w", "-t", "60"] + arguments
        if getuid() == 0 { command = ["/usr/sbin/runuser", "-u", "postgres", "--"] + command }
        // Foundation learns that a child exited when a socket the child inherited closes; the
        // server pg_ctl starts would inherit it too and keep it open. Close every descriptor
        // above stderr first.
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", #"for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done 2>/dev/null; exec "$@""#,
                             "pg_ctl"] + command
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestSetupError(description: "pg_ctl \(arguments.first ?? "") failed (\(process.terminationStatus))")
        }
    }

    static func stop() throws { try pgctl(["-m", "fast", "stop"]) }

    static func start() throws {
        let env = ProcessInfo.processInfo.environment
        try pgctl(["-l", (env["SMS_RETRY_PGDATA"] ?? "") + "/server.log", "-o", env["SMS_RETRY_PGOPTS"] ?? "", "start"])
    }

    /// Adds a line at the top of pg_hba.conf and reloads.
    static func requirePassword(for role: String) async throws {
        guard let data = ProcessInfo.processInfo.environment["SMS_RETRY_PGDATA"] else {
            throw TestSetupError(description: "SMS_RETRY_PGDATA not set: run `make test-faults`")
        }
        let path = data + "/pg_hba.conf"
        let line = "host all \(role) 127.0.0.1/32 scram-sha-256\n"
        let current = try String(contentsOfFile: path, encoding: .utf8)
        if !current.hasPrefix(line) { try (line + current).write(toFile: path, atomically: false, encoding: .utf8) }
        let admin = try await Database.connect("dbname=postgres")
        try await admin.query("SELECT pg_reload_conf()")
    }
}
