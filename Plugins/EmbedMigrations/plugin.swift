import Foundation
import PackagePlugin

/// Puts `migrations/*.sql` into the SMSRetry library as Swift source at build time
/// (`EmbeddedMigrations`), with the commit the binary was built from, so an installed
/// `sms-retry migrate` needs no folder beside it and `--version` names its commit. Reruns when a
/// migration file changes or HEAD moves (`.git/logs/HEAD`).
@main
struct EmbedMigrations: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let package = context.package.directoryURL
        let migrations = package.appending(path: "migrations")
        let files = try FileManager.default.contentsOfDirectory(atPath: migrations.path)
            .filter { $0.hasSuffix(".sql") }.sorted().map { migrations.appending(path: $0) }
        var inputs = files
        for git in [".git/logs/HEAD", ".git/HEAD"] where FileManager.default.fileExists(atPath: package.appending(path: git).path) {
            inputs.append(package.appending(path: git))
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedMigrations.swift")
        return [.buildCommand(
            displayName: "Embedding \(files.count) migration files",
            executable: try context.tool(named: "embed-migrations").url,
            arguments: [package.path, output.path] + files.map(\.path),
            inputFiles: inputs,
            outputFiles: [output])]
    }
}
