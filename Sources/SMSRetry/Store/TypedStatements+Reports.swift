import Foundation

// The report functions of migration 015, as the library calls them (`Queries.report`): each
// answers one `ReportAnswer`. `policy` is the store's policy as the function reads it
// (`RetryPolicy.sqlJSON`, jsonb text); `now` the store's clock.

extension RetryStore.ReportAnswer: PGRowDecodable {
    init(_ r: PGRow) throws(RowDecodingError) {
        self.init(result: try r.optional("result") ?? "", logID: try r.optional("log_id"), attempt: try r.optional("attempt"),
                  attempts: try r.optional("attempts"), reason: try r.optional("reason"), meaning: try r.optional("meaning"),
                  status: try r.optional("status"), current: try r.optional("current"),
                  nextRetryAt: try r.optional("next_epoch", as: Double.self).map { Date(timeIntervalSince1970: $0) })
    }
}

/// The router's failure report (`sms_retry_report_failure_at`).
struct ReportFailure: TypedStatement {
    static let name = "reportFailure"
    static let sql = Queries.reportFailure
    var logID: Int
    var errorCode: Int?
    var errorMessage: String?
    var now: Date?
    var policy: String
    var parameters: [String?] { PGParameters.encode(logID, errorCode, errorMessage, now, policy) }
    typealias Row = RetryStore.ReportAnswer
}

/// The router's report of an accepted send (`sms_retry_report_sent_at`).
struct ReportSent: TypedStatement {
    static let name = "reportSent"
    static let sql = Queries.reportSent
    var logID: Int
    var messageSID: String
    var now: Date?
    var parameters: [String?] { PGParameters.encode(logID, messageSID, now) }
    typealias Row = RetryStore.ReportAnswer
}

/// A delivery status for a message, by SID (`sms_retry_report_status_at`).
struct ReportStatus: TypedStatement {
    static let name = "reportStatus"
    static let sql = Queries.reportStatus
    var messageSID: String
    var status: String
    var errorCode: Int?
    var now: Date?
    var policy: String
    var parameters: [String?] { PGParameters.encode(messageSID, status, errorCode, now, policy) }
    typealias Row = RetryStore.ReportAnswer
}

/// The operator's cancel (`sms_retry_cancel_at`).
struct ReportCancel: TypedStatement {
    static let name = "reportCancel"
    static let sql = Queries.reportCancel
    var logID: Int
    var note: String?
    var now: Date?
    var parameters: [String?] { PGParameters.encode(logID, note, now) }
    typealias Row = RetryStore.ReportAnswer
}

/// The operator's retry-now (`sms_retry_retry_now_at`).
struct ReportRetryNow: TypedStatement {
    static let name = "reportRetryNow"
    static let sql = Queries.reportRetryNow
    var logID: Int
    var now: Date?
    var parameters: [String?] { PGParameters.encode(logID, now) }
    typealias Row = RetryStore.ReportAnswer
}
