//! The guard language (spec §7.4–7.12): boolean expressions over an instance's context and an
//! event's payload, such as `ctx.amount > 100 && !ctx.blocked || payload.tier == "gold"`.
//!
//! Module map (start with [`Guard`] below):
//! - `lexer`: the cursor the parser drives: whitespace, words, operators, paths, keywords;
//!   `number` and `string` scan those literals (strings are decoded here, once).
//! - `parser`: strict recursive descent with bounded depth; every error has a byte span.
//! - [`ast`]: the tree ([`Expr`]); `&&`/`||` chains are n-ary, so long chains cost no depth.
//! - `eval`: the allocation-free evaluator. `print`: the canonical printed form.
//! - `error`: [`GuardError`], its [`Span`], kinds and human messages.

pub mod ast;
mod error;
mod eval;
mod lexer;
mod number;
mod parser;
mod print;
mod string;

pub use ast::{EqualityOp, Expr, Literal, OrderingOp, Path, Root};
pub use error::{GuardError, GuardErrorKind, Span};
pub use parser::MAX_NESTING_DEPTH;
pub(crate) use string::simple_escape;

use serde_json::Value;
use std::fmt;

/// A parsed guard. Parse once when the definition is stored; evaluate many times.
///
/// Equality compares the text as written as well as the tree, so `(ctx.a)` and `ctx.a` are
/// different guards (they are stored and checksummed as written) with equal [`Guard::expr`]s.
#[derive(Debug, Clone, PartialEq)]
pub struct Guard {
    text: Box<str>,
    expr: Expr,
}

impl Guard {
    /// Parses `text` strictly: the whole text must be one expression.
    pub fn parse(text: &str) -> Result<Guard, GuardError> {
        Ok(Guard {
            text: text.into(),
            expr: parser::parse(text)?,
        })
    }

    /// The guard text exactly as written in the definition.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The parsed tree.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Evaluates the guard against the context before the merge and the event's payload.
    /// Never fails and never allocates.
    pub fn eval(&self, ctx: &Value, payload: Option<&Value>) -> bool {
        self.expr.eval(eval::Roots { ctx, payload })
    }
}

/// Prints the parsed tree in canonical form; parsing the output gives the same tree.
impl fmt::Display for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.expr, f)
    }
}
