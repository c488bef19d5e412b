extension Duration {
    /// The duration in seconds, as a Double (elapsed times in summaries, logs and history).
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
