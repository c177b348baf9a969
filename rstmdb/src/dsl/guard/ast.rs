//! The parsed tree of a guard.
//!
//! `&&` and `||` chains are n-ary (`And(vec![a, b, c])`), not nested binary nodes: a chain of any
//! length then costs no tree depth, so evaluating, printing, comparing and dropping a tree
//! recurse only as deep as the parentheses and `!` (at most 64, §7.4). A node keeps no trace of
//! redundant parentheses: `(ctx.a)` is the same tree as `ctx.a`, while `(a && b) && c` is an
//! `And` inside an `And`, because that is how it was grouped.
//!
//! Strings and path segments are stored decoded, so evaluation only compares bytes.

/// A boolean expression (§7.4).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `a || b || …`: at least two operands, in source order.
    Or(Vec<Expr>),
    /// `a && b && …`: at least two operands, in source order.
    And(Vec<Expr>),
    /// `!e`.
    Not(Box<Expr>),
    /// A bare path, tested for truthiness (§7.7).
    Truthy(Path),
    /// `path == literal` or `path != literal`.
    Equality {
        path: Path,
        op: EqualityOp,
        literal: Literal,
    },
    /// `path > number` and the other ordering operators.
    Ordering {
        path: Path,
        op: OrderingOp,
        number: f64,
    },
}

/// Where a path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Root {
    /// `ctx`: the instance context before the event's payload is merged.
    Ctx,
    /// `payload`: the event's payload (extension, §7.8).
    Payload,
}

impl Root {
    /// The keyword as written in a guard.
    pub fn as_str(self) -> &'static str {
        match self {
            Root::Ctx => "ctx",
            Root::Payload => "payload",
        }
    }
}

/// `root.segment.segment…`: at least one segment, each a non-empty run of XID_Continue characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path {
    pub root: Root,
    pub segments: Box<[Box<str>]>,
}

/// `==` or `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EqualityOp {
    Eq,
    Ne,
}

impl EqualityOp {
    pub fn as_str(self) -> &'static str {
        match self {
            EqualityOp::Eq => "==",
            EqualityOp::Ne => "!=",
        }
    }
}

/// `>`, `>=`, `<` or `<=`: only numbers are ordered (§7.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderingOp {
    Gt,
    Ge,
    Lt,
    Le,
}

impl OrderingOp {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderingOp::Gt => ">",
            OrderingOp::Ge => ">=",
            OrderingOp::Lt => "<",
            OrderingOp::Le => "<=",
        }
    }
}

/// The right-hand side of `==` / `!=` (§7.6).
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    /// Always finite: a literal that overflows is rejected (`invalid_number`).
    Number(f64),
    /// Escapes already decoded.
    String(Box<str>),
}
