import Foundation

// The sweep's statements (`reconcile`).

/// One chunk of the sweep's walk down the primary key (`Queries.sweepChunk`).
struct SweepChunkRead: TypedStatement {
    static let name = "sweepChunk"
    static let sql = Queries.sweepChunk
    /// The id below which to read (nil: from the top).
    var cursor: Int?
    var size: Int
    /// Seconds a row is left to settle.
    var settle: Double
    /// The window, seconds.
    var window: Double
    var now: Date?
    /// Where in `sms_metadata` a router keeps the SID (empty: nowhere).
    var sidKeyPath: [String]
    var parameters: [String?] { PGParameters.encode(cursor, size, settle, window, now, sidKeyPath) }

    /// The chunk's edge (the same on every row) and one candidate, or none.
    struct Row: PGRowDecodable {
        var lowestID: Int?
        var scanned: Int?
        var inWindow: Int?
        var candidate: RetryStore.SweepCandidate?
        init(_ r: PGRow) throws(RowDecodingError) {
            lowestID = try r.optional("low_id")
            scanned = try r.optional("scanned")
            inWindow = try r.optional("in_window")
            let retryCount: Int? = try r.optional("retry_count")
            let created: Double? = try r.optional("created_epoch")
            if let id: Int = try r.optional("id"), let sid: String = try r.optional("sid") {
                candidate = RetryStore.SweepCandidate(id: id, sid: sid, retryCount: retryCount ?? 0,
                                                      created: Date(timeIntervalSince1970: created ?? 0))
            } else {
                candidate = nil
            }
        }
    }
}

/// The rows `ids`, locked for applying Twilio's statuses (`Queries.statusRowsLock`).
struct StatusRowsLock: TypedStatement {
    static let name = "statusRowsLock"
    static let sql = Queries.statusRowsLock
    var ids: [Int]
    var parameters: [String?] { PGParameters.encode(ids) }

    struct Row: PGRowDecodable {
        var id: Int
        var direction: String?
        var retryCount: Int?
        var success: Bool?
        var finalStatus: String?
        /// The SID and status of `sms_retry.delivery`, the message's last known Twilio status.
        var deliverySID: String?
        var deliveryStatus: String?
        init(_ r: PGRow) throws(RowDecodingError) {
            id = try r.value("id")
            direction = try r.optional("message_direction")
            retryCount = try r.optional("retry_count")
            success = try r.optional("success")
            finalStatus = try r.optional("final_status")
            deliverySID = try r.optional("delivery_sid")
            deliveryStatus = try r.optional("delivery_status")
        }
    }
}
