// embed-migrations PACKAGE_DIR OUTPUT FILE...: writes OUTPUT, a Swift file holding each FILE's
// name and text, and the package's git commit (build plugin EmbedMigrations).
import Foundation

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    FileHandle.standardError.write(Data("usage: embed-migrations PACKAGE_DIR OUTPUT FILE...\n".utf8))
    exit(2)
}
let package = arguments[1], output = arguments[2], files = arguments.dropFirst(3)

/// A raw string literal that holds `text` as it is: more `#` than any run of them in it.
func literal(_ text: String) -> String {
    var longest = 0, run = 0
    for character in text { run = character == "#" ? run + 1 : 0; longest = max(longest, run) }
    let hashes = String(repeating: "#", count: longest + 1)
    return "\(hashes)\"\"\"\n\(text)\n\"\"\"\(hashes)"
}

/// `git rev-parse --short=12 HEAD` in the package, or "unknown" (a tarball, no git).
func commit() -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["git", "-C", package, "rev-parse", "--short=12", "HEAD"]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return "unknown" }
    let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    let hash = text.trimmingCharacters(in: .whitespacesAndNewlines)
    return process.terminationStatus == 0 && !hash.isEmpty ? hash : "unknown"
}

var source = """
    // Generated at build time by embed-migrations from migrations/*.sql: do not edit.
    enum EmbeddedMigrations {
        /// The commit this binary was built from ("unknown" outside a git checkout).
        static let commit = "\(commit())"
        /// Every migration file, by name, in name order.
        static let files: [(name: String, text: String)] = [

    """
for path in files {
    guard let data = FileManager.default.contents(atPath: path) else {
        FileHandle.standardError.write(Data("embed-migrations: cannot read \(path)\n".utf8))
        exit(1)
    }
    let text = String(decoding: data, as: UTF8.self)
    source += "        (\"\((path as NSString).lastPathComponent)\", \(literal(text.hasSuffix("\n") ? String(text.dropLast()) : text))),\n"
}
source += "    ]\n}\n"
do { try source.write(toFile: output, atomically: true, encoding: .utf8) } catch {
    FileHandle.standardError.write(Data("embed-migrations: cannot write \(output): \(error)\n".utf8))
    exit(1)
}
