import Foundation

/// What names a run in a lease (`retry.lease.run`) and in its logs.
enum RunIdentity {
    /// gethostname(2) only: Foundation's hostName may wait on a DNS lookup.
    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
