import Foundation

/// The store's clock (`SMSRetryClock`) reaches every statement: its `sql` is the statements'
/// "now" parameter, so the database and the Swift decisions read one time.
extension SMSRetryClock {
    /// The statements' "now" parameter: nil (the server's `now()`) unless fixed or a test clock.
    var sql: String? { statementNow.map(JSONText.timestamp) }
}
