//! The canonical printed form of a tree. Parsing the output gives back an equal tree:
//! parentheses are printed exactly where the tree needs them (an `&&` or `||` chain inside a
//! `!`, inside an `&&`, or an `||` inside an `||`), so the printed nesting is never deeper than
//! the nesting of the text the tree was parsed from. Tokens are separated by single spaces.

use super::ast::{Expr, Literal, Path};
use std::fmt::{self, Display, Formatter, Write};

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Or(operands) => write_chain(f, operands, " || ", |operand| {
                matches!(operand, Expr::Or(_))
            }),
            Expr::And(operands) => write_chain(f, operands, " && ", |operand| {
                matches!(operand, Expr::Or(_) | Expr::And(_))
            }),
            Expr::Not(operand) => {
                f.write_char('!')?;
                write_operand(f, operand, matches!(**operand, Expr::Or(_) | Expr::And(_)))
            }
            Expr::Truthy(path) => write!(f, "{path}"),
            Expr::Equality { path, op, literal } => write!(f, "{path} {} {literal}", op.as_str()),
            Expr::Ordering { path, op, number } => {
                write!(f, "{path} {} ", op.as_str())?;
                write_number(f, *number)
            }
        }
    }
}

fn write_chain(
    f: &mut Formatter<'_>,
    operands: &[Expr],
    separator: &str,
    needs_parentheses: impl Fn(&Expr) -> bool,
) -> fmt::Result {
    for (index, operand) in operands.iter().enumerate() {
        if index > 0 {
            f.write_str(separator)?;
        }
        write_operand(f, operand, needs_parentheses(operand))?;
    }
    Ok(())
}

fn write_operand(f: &mut Formatter<'_>, operand: &Expr, parenthesised: bool) -> fmt::Result {
    if parenthesised {
        write!(f, "({operand})")
    } else {
        write!(f, "{operand}")
    }
}

impl Display for Path {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.root.as_str())?;
        for segment in &self.segments {
            write!(f, ".{segment}")?;
        }
        Ok(())
    }
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("null"),
            Literal::Bool(flag) => write!(f, "{flag}"),
            Literal::Number(number) => write_number(f, *number),
            Literal::String(string) => write_string(f, string),
        }
    }
}

/// Plain decimals for everyday magnitudes, exponent form for the rest (so `1e300` does not print
/// 301 digits). Both of Rust's forms print the shortest digits that read back as the same f64.
fn write_number(f: &mut Formatter<'_>, number: f64) -> fmt::Result {
    let magnitude = number.abs();
    if magnitude == 0.0 || (1e-5..1e16).contains(&magnitude) {
        write!(f, "{number}")
    } else {
        write!(f, "{number:e}")
    }
}

/// Escapes what must be escaped (`"` and `\`) and control characters, which would be legal raw
/// but invisible; everything else is written as is.
fn write_string(f: &mut Formatter<'_>, string: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in string.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{8}' => f.write_str("\\b")?,
            '\u{c}' => f.write_str("\\f")?,
            c if c.is_control() => write!(f, "\\u{:04x}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}
