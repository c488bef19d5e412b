// `import SMSRetry` brings the database and HTTP wrappers' public types (Database,
// DatabaseError, HTTPClient, …) with it.
@_exported import SMSRetryTime
@_exported import SMSRetryPostgres
@_exported import SMSRetryHTTP
