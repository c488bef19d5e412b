/// This build's version and commit: `sms-retry --version`.
public enum SMSRetryVersion {
    /// The release number (semantic versioning).
    public static let number = "1.0.0"
    /// The git commit the binary was built from, 12 hex digits ("unknown" outside a checkout):
    /// stamped at build time by the EmbedMigrations plugin.
    public static var commit: String { EmbeddedMigrations.commit }
    /// "1.0.0 (commit 0123456789ab)".
    public static var description: String { "\(number) (commit \(commit))" }
}
