import Crypto
import Foundation

/// Checks `X-Twilio-Signature` on a request Twilio made to us (status callbacks), computed as
/// Twilio computes it: the full URL, then for a form POST every parameter name followed by its
/// value, names sorted by byte order and a repeated name's values sorted too; HMAC-SHA1 keyed
/// with the Auth Token; base64. A JSON body is signed through the URL only: its query carries
/// `bodySHA256`, which must match the body. Twilio is inconsistent about default ports, so the
/// URL is tried with `:443`/`:80` and without; `user:pass@` is dropped before signing.
public struct TwilioSignature: Sendable, CustomStringConvertible {
    private let token: [UInt8]

    /// `authToken`: the account's Auth Token (API key secrets do not sign callbacks).
    public init(authToken: String) {
        token = Array(authToken.utf8)
    }

    /// Never shows the token.
    public var description: String { "TwilioSignature(token: <redacted>)" }

    /// The signature Twilio sends for `url` and form `params` (pairs as received).
    public func sign(url: String, params: [(String, String)] = []) -> String {
        var data = Data(url.utf8)
        let sorted = params.sorted { a, b in
            a.0.utf8.lexicographicallyPrecedes(b.0.utf8)
                || (a.0 == b.0 && a.1.utf8.lexicographicallyPrecedes(b.1.utf8))
        }
        for (name, value) in sorted {
            data.append(contentsOf: name.utf8)
            data.append(contentsOf: value.utf8)
        }
        return Data(HMAC<Insecure.SHA1>.authenticationCode(for: data, using: SymmetricKey(data: token))).base64EncodedString()
    }

    /// True when `signature` is Twilio's for a form POST of `params` to `url` (or a GET of `url`).
    public func isValid(signature: String?, url: String, params: [(String, String)] = []) -> Bool {
        guard let signature, !signature.isEmpty else { return false }
        // Twilio's libraries differ on a name repeated with the same value (once, or each time):
        // both are accepted. Every variant is compared, so the time taken does not reveal which matched.
        var seen = Set<[String]>()
        let distinct = params.filter { seen.insert([$0.0, $0.1]).inserted }
        var valid = false
        for candidate in Self.urlVariants(url) {
            for set in distinct.count == params.count ? [params] : [params, distinct] {
                valid = Self.constantTimeEquals(sign(url: candidate, params: set), signature) || valid
            }
        }
        return valid
    }

    /// True when `signature` is Twilio's for a JSON `body` posted to `url`: only the URL is
    /// signed, and its `bodySHA256` query parameter must be the body's SHA-256 in hex.
    public func isValid(signature: String?, url: String, jsonBody body: [UInt8]) -> Bool {
        let expected = SHA256.hash(data: body).map { String(format: "%02x", $0) }.joined()
        let given = URLComponents(string: url)?.queryItems?.first { $0.name == "bodySHA256" }?.value ?? ""
        let bodyMatches = Self.constantTimeEquals(given.lowercased(), expected)
        return isValid(signature: signature, url: url) && bodyMatches
    }

    /// The URL without userinfo, then the same with the default port added (when none is given)
    /// or removed (when it is the default).
    static func urlVariants(_ url: String) -> [String] {
        guard var parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased() else { return [url] }
        parts.user = nil
        parts.password = nil
        let defaultPort = ["https": 443, "http": 80][scheme]
        var other = parts
        if parts.port == nil { other.port = defaultPort } else if parts.port == defaultPort { other.port = nil }
        return [parts.string, other.string].compactMap { $0 }.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
    }

    /// Compares two strings in time that depends only on their lengths.
    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }
}
