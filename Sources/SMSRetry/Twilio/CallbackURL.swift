import Foundation

/// The `StatusCallback` URL sms-retry gives Twilio, and the URLs a callback's signature may
/// have been computed over.
///
/// Twilio retries a failed status callback once by default. Its connection overrides, a URL
/// fragment (`#rc=5&rp=all`: up to 5 retries, on every kind of failure, all within Twilio's
/// 15 s), ask for more; a fragment is never sent over HTTP, so the receiver never sees it.
/// Which of the two URLs Twilio signs (with or without the fragment) is not documented, so
/// `signedCandidates` gives both.
public enum CallbackURL {
    /// The connection overrides added to a configured URL that has no fragment of its own.
    public static let retryFragment = "rc=5&rp=all"

    /// `url` as sent with each resend: unchanged when it already has a fragment (the team's own
    /// overrides win), else with `#rc=5&rp=all`.
    public static func withRetries(_ url: String) -> String {
        url.contains("#") ? url : url + "#" + retryFragment
    }

    /// The URLs a callback to `publicURL` carrying the request's `query` (without `?`) may have
    /// been signed over: the public URL without its fragment (with the request's own query
    /// string, when it has one), then the same with the fragment Twilio was given (the public
    /// URL's own, else `retryFragment`).
    public static func signedCandidates(publicURL: String, query: String?) -> [String] {
        let parts = publicURL.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
        var base = String(parts[0])
        let fragment = parts.count == 2 ? String(parts[1]) : retryFragment
        if let query, !query.isEmpty {
            base = (base.split(separator: "?", maxSplits: 1).first.map(String.init) ?? base) + "?" + query
        }
        return fragment.isEmpty ? [base] : [base, base + "#" + fragment]
    }
}
