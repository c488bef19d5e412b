/// A named statement: its name travels with any error it raises (`DatabaseError.statement`).
public protocol SQLStatement: Sendable {
    var name: String { get }
    var sql: String { get }
}
