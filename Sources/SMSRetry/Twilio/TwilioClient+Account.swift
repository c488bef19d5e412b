import Foundation

/// Read-only requests for `sms-retry check`: the account the credentials open, and whether the
/// sender is on it. Nothing is sent.
extension TwilioClient {
    /// `GET /2010-04-01/Accounts/{AccountSid}.json`: the account's status ("active",
    /// "suspended", "closed") and its type ("Trial", "Full").
    public func account() async -> Result<(status: String, type: String?), LookupError> {
        struct Account: Decodable { var status: String?; var type: String? }
        let url = "\(config.baseURL)/2010-04-01/Accounts/\(config.accountSID).json"
        return await lookup(url).flatMap { response in
            guard response.status == 200, let body = try? JSONDecoder().decode(Account.self, from: Data(response.body)),
                  let status = body.status else {
                return .failure(LookupError(description: "HTTP \(response.status): not an Account resource"))
            }
            return .success((status, body.type))
        }
    }

    /// Whether the configured sender is on the account: a phone number among its
    /// IncomingPhoneNumbers (and SMS-capable), a short code among its ShortCodes, a Messaging
    /// Service found. nil: not something Twilio can be asked about (an alphanumeric sender ID).
    public func senderOnAccount() async -> Result<Bool, LookupError>? {
        let base = "\(config.baseURL)/2010-04-01/Accounts/\(config.accountSID)"
        switch config.sender {
        case .messagingService(let sid):
            // Messaging Services live on messaging.twilio.com; a stand-in serves both on one base.
            let messaging = config.baseURL == "https://api.twilio.com" ? "https://messaging.twilio.com" : config.baseURL
            return await lookup("\(messaging)/v1/Services/\(FormEncoding.escape(sid))").map { $0.status == 200 }
        case .from(let number) where PhoneNumber.isE164(number):
            struct Page: Decodable {
                struct Number: Decodable {
                    struct Capabilities: Decodable { var sms: Bool? }
                    var phone_number: String?; var capabilities: Capabilities?
                }
                var incoming_phone_numbers: [Number]
            }
            let query = FormEncoding.encode([("PhoneNumber", number)])
            return await lookup("\(base)/IncomingPhoneNumbers.json?\(query)").flatMap { response in
                guard let page = try? JSONDecoder().decode(Page.self, from: Data(response.body)) else {
                    return .failure(LookupError(description: "HTTP \(response.status): not a phone number list"))
                }
                return .success(page.incoming_phone_numbers.contains { $0.phone_number == number && $0.capabilities?.sms != false })
            }
        case .from(let code) where code.count <= 8 && code.allSatisfy(\.isNumber):
            struct Page: Decodable { struct Code: Decodable { var short_code: String? }; var short_codes: [Code] }
            let query = FormEncoding.encode([("ShortCode", code)])
            return await lookup("\(base)/SMS/ShortCodes.json?\(query)").flatMap { response in
                guard let page = try? JSONDecoder().decode(Page.self, from: Data(response.body)) else {
                    return .failure(LookupError(description: "HTTP \(response.status): not a short code list"))
                }
                return .success(page.short_codes.contains { $0.short_code == code })
            }
        case .from:
            return nil
        }
    }
}
