import ArgumentParser
import FlyingFox
import FlyingSocks
import Foundation
import SMSRetry

/// An HTTP endpoint for Twilio's status callbacks, for routers that have none in Swift.
struct ServeCallbacksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve-callbacks",
        abstract: "Receive Twilio status callbacks over HTTP and apply them (point StatusCallback here).",
        discussion: """
            Every POST, on any path, must carry a valid X-Twilio-Signature for --public-url (the URL \
            exactly as given to Twilio, typically behind a TLS-terminating proxy) plus the request's query \
            string; signed with TWILIO_AUTH_TOKEN. Answers 403 for a missing or wrong signature, 400 \
            without MessageSid/MessageStatus, 200 once the status is applied (or known to be unusable: \
            an unknown SID is logged), 503 when the database is unreachable or does not answer within \
            10 s (Twilio retries a callback once; the connection is re-established by itself once the \
            server is back). GET /health answers 200 when the database answers, else 503, with a JSON \
            body. Prints the address it listens on, then serves until stopped. Exit: 2 usage or \
            configuration, 3 database unreachable at start.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policyOptions: PolicyOptions

    @Option(help: "Address to listen on, HOST:PORT (IPv4; port 0 picks a free one).") var listen = "127.0.0.1:8089"
    @Option(help: "The public URL Twilio calls, as set in StatusCallback / TWILIO_STATUS_CALLBACK_URL (default: $TWILIO_STATUS_CALLBACK_URL).")
    var publicUrl: String?

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        guard let publicURL = publicUrl ?? env["TWILIO_STATUS_CALLBACK_URL"], publicURL.hasPrefix("http://") || publicURL.hasPrefix("https://") else {
            throw CLIFailure(code: Exit.usage, message: "--public-url (or TWILIO_STATUS_CALLBACK_URL) must be the http(s) URL Twilio calls")
        }
        guard let token = env["TWILIO_AUTH_TOKEN"]?.trimmingCharacters(in: .whitespaces), !token.isEmpty else {
            throw CLIFailure(code: Exit.usage, message: "TWILIO_AUTH_TOKEN is not set: Twilio signs callbacks with the account's Auth Token (an API key secret does not)")
        }
        let parts = listen.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]), let address = try? sockaddr_in.inet(ip4: String(parts[0]), port: port) else {
            throw CLIFailure(code: Exit.usage, message: "--listen must be IPv4-HOST:PORT, e.g. 127.0.0.1:8089")
        }
        let logger = global.makeLogger("sms-retry.callbacks")
        let store = RetryStore(database: try await global.connect(.writes(command: "serve-callbacks")), policy: try policyOptions.load(), logger: logger)
        let handler = StatusCallbackHandler(store: store, authToken: token, publicURL: publicURL)

        let server = HTTPServer(address: address, timeout: 15, logger: .disabled)
        await server.appendRoute("POST *") { request in
            if let length = request.headers[.contentLength].flatMap(Int.init), length > StatusCallbackHandler.maxBodyBytes {
                return HTTPResponse(statusCode: .init(413, phrase: "Payload Too Large"))
            }
            let body = (try? await request.bodyData) ?? Data()
            let reply = await handler.handle(query: request.target.query(percentEncoded: true),
                                             contentType: request.headers[.contentType],
                                             signatureHeader: request.headers[HTTPHeader("X-Twilio-Signature")],
                                             body: Array(body))
            return HTTPResponse(statusCode: .init(reply.status, phrase: ""), headers: [.contentType: "text/plain"],
                                body: Data((reply.body + "\n").utf8))
        }
        await server.appendRoute("GET /health") { _ in
            let reply = await handler.health()
            return HTTPResponse(statusCode: .init(reply.status, phrase: ""), headers: [.contentType: "application/json"],
                                body: Data((reply.body + "\n").utf8))
        }
        await server.appendRoute("*") { _ in HTTPResponse(statusCode: .methodNotAllowed) }
        let task = Task { try await server.run() }
        try await server.waitUntilListening()
        if case .ip4(let host, let bound) = await server.listeningAddress {
            FileHandle.standardOutput.write(Data("listening on http://\(host):\(bound) for \(publicURL)\n".utf8))
        }
        logger.info("serving status callbacks", metadata: ["http.listen": "\(listen)", "http.public_url": "\(publicURL)"])
        try await task.value
    }
}
