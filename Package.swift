// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "sms-retry",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SMSRetry", targets: ["SMSRetry"]),
        .executable(name: "sms-retry", targets: ["sms-retry"]),
        .executable(name: "twilio-standin", targets: ["twilio-standin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // HMAC-SHA1 and SHA-256 for Twilio's callback signatures.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // HTTP server for serve-callbacks.
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
    ],
    targets: [
        // C libraries: only a module map and shim.h each. Each has one wrapper target, the only
        // one that depends on it, so the compiler keeps libpq and libcurl out of everything else.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // The one clock (monotonic and wall time from one source; a test clock tests move by hand).
        .target(name: "SMSRetryTime"),
        .target(name: "SMSRetryPostgres", dependencies: ["CLibPQ", "SMSRetryTime", .product(name: "Logging", package: "swift-log")]),
        .target(name: "SMSRetryHTTP", dependencies: ["CCurl"]),
        // Number prefixes → time zones and countries, generated from libphonenumber's metadata by
        // the scripts beside it (data/phonenumbers): data, not code, in a module of its own.
        .target(name: "PhoneNumberData", path: "data/phonenumbers/Generated"),
        .target(
            name: "SMSRetry",
            dependencies: [
                "SMSRetryTime", "SMSRetryPostgres", "SMSRetryHTTP", "PhoneNumberData",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            // migrations/*.sql and the build's commit, compiled in (Migrator.embedded, --version)
            plugins: ["EmbedMigrations"]
        ),
        .executableTarget(name: "embed-migrations"),
        .plugin(name: "EmbedMigrations", capability: .buildTool(), dependencies: ["embed-migrations"]),
        .executableTarget(
            name: "sms-retry",
            dependencies: [
                "SMSRetry",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                // serve-callbacks' HTTP server.
                .product(name: "FlyingFox", package: "FlyingFox"),
            ]
        ),
        // Its own small HTTP/1.1 server (it must be able to drop a connection mid-request).
        .target(name: "TwilioStandIn", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        .executableTarget(name: "twilio-standin", dependencies: ["TwilioStandIn"]),
        // `make bench` only: the raw HTTP ceiling, through the library's own client.
        .executableTarget(name: "sms-retry-bench", dependencies: ["SMSRetry"], path: "benchmarks/Sources/sms-retry-bench"),
        // `make bench` only: a stand-in that costs far less than what it serves (one thread, epoll).
        // (Swift 5 mode: a single-threaded C-style loop over globals and libc's stdio.)
        .executableTarget(name: "lean-standin", path: "benchmarks/Sources/lean-standin",
                          swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "SMSRetryTests", dependencies: ["SMSRetry"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["SMSRetry", "TwilioStandIn", .product(name: "Logging", package: "swift-log")]
        ),
    ]
)
