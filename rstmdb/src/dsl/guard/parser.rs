//! Recursive descent over the grammar of §7.4 with the precedence of §7.5.
//!
//! Recursion happens only at `(` and `!`, and both count against [`MAX_NESTING_DEPTH`], so the
//! stack stays bounded whatever the input; `&&`/`||` chains and runs of `!` are loops.

use super::ast::{Expr, Literal};
use super::error::{GuardError, GuardErrorKind, Span};
use super::lexer::{Cursor, Operator};

/// How deep parentheses and `!` may be nested, counted together (§7.4).
pub const MAX_NESTING_DEPTH: usize = 64;

/// Parses the whole text as one expression; anything left over is `trailing_input`.
pub(super) fn parse(text: &str) -> Result<Expr, GuardError> {
    if text.chars().all(char::is_whitespace) {
        return Err(GuardError::new(
            GuardErrorKind::EmptyGuard,
            Span::between(0, text.len()),
        ));
    }
    let mut parser = Parser {
        cursor: Cursor::new(text),
    };
    parser.cursor.skip_whitespace();
    let expr = parser.or_expr(0)?;
    parser.cursor.skip_whitespace();
    if !parser.cursor.at_end() {
        let content_end = text.trim_end_matches(char::is_whitespace).len();
        return Err(GuardError::new(
            GuardErrorKind::TrailingInput,
            Span::between(parser.cursor.pos, content_end),
        ));
    }
    Ok(expr)
}

#[derive(Debug)]
struct Parser<'a> {
    cursor: Cursor<'a>,
}

impl Parser<'_> {
    /// `or_expr = and_expr { "||" and_expr }`. `depth` is the nesting of `(` and `!` around it.
    fn or_expr(&mut self, depth: usize) -> Result<Expr, GuardError> {
        let first = self.and_expr(depth)?;
        self.chain(first, "||", Expr::Or, |parser| parser.and_expr(depth))
    }

    /// `and_expr = unary { "&&" unary }`.
    fn and_expr(&mut self, depth: usize) -> Result<Expr, GuardError> {
        let first = self.unary(depth)?;
        self.chain(first, "&&", Expr::And, |parser| parser.unary(depth))
    }

    /// Collects `first { operator operand }` into one n-ary node (or returns `first` alone).
    fn chain(
        &mut self,
        first: Expr,
        operator: &str,
        node: fn(Vec<Expr>) -> Expr,
        mut operand: impl FnMut(&mut Self) -> Result<Expr, GuardError>,
    ) -> Result<Expr, GuardError> {
        let mut operands = vec![first];
        loop {
            self.cursor.skip_whitespace();
            if !self.cursor.eat(operator) {
                break;
            }
            self.cursor.skip_whitespace();
            operands.push(operand(self)?);
        }
        Ok(match <[Expr; 1]>::try_from(operands) {
            Ok([single]) => single,
            Err(operands) => node(operands),
        })
    }

    /// `unary = "!" unary | primary`, with the run of `!` read in a loop.
    fn unary(&mut self, mut depth: usize) -> Result<Expr, GuardError> {
        let mut negations = 0;
        loop {
            let bang = self.cursor.pos;
            if !self.cursor.eat_not() {
                break;
            }
            depth = deeper(depth, bang)?;
            negations += 1;
            self.cursor.skip_whitespace();
        }
        let mut expr = self.primary(depth)?;
        for _ in 0..negations {
            expr = Expr::Not(Box::new(expr));
        }
        Ok(expr)
    }

    /// `primary = "(" or_expr ")" | comparison`.
    fn primary(&mut self, depth: usize) -> Result<Expr, GuardError> {
        let paren = self.cursor.pos;
        if !self.cursor.eat("(") {
            return self.comparison();
        }
        let depth = deeper(depth, paren)?;
        self.cursor.skip_whitespace();
        let inner = self.or_expr(depth)?;
        self.cursor.skip_whitespace();
        if !self.cursor.eat(")") {
            return Err(self.cursor.word_error(GuardErrorKind::ExpectedRparen));
        }
        Ok(inner)
    }

    /// `comparison = path [ eq_op literal | ord_op number ]`.
    fn comparison(&mut self) -> Result<Expr, GuardError> {
        let path = self.cursor.path()?;
        let after_path = self.cursor.pos;
        self.cursor.skip_whitespace();
        let Some(operator) = self.cursor.eat_operator() else {
            // Not a comparison; what follows is for the caller to judge.
            self.cursor.pos = after_path;
            return Ok(Expr::Truthy(path));
        };
        self.cursor.skip_whitespace();
        match operator {
            Operator::Equality(op) => Ok(Expr::Equality {
                path,
                op,
                literal: self.literal()?,
            }),
            Operator::Ordering(op) => {
                if !self.cursor.number_starts_here() {
                    return Err(self.cursor.word_error(GuardErrorKind::ExpectedNumber));
                }
                Ok(Expr::Ordering {
                    path,
                    op,
                    number: self.cursor.number()?,
                })
            }
        }
    }

    /// `literal = "true" | "false" | "null" | string | number`.
    fn literal(&mut self) -> Result<Literal, GuardError> {
        if self.cursor.rest().starts_with('"') {
            return Ok(Literal::String(self.cursor.string()?));
        }
        if self.cursor.number_starts_here() {
            return Ok(Literal::Number(self.cursor.number()?));
        }
        match self.cursor.keyword() {
            Some(keyword) => keyword,
            None => Err(self.cursor.word_error(GuardErrorKind::ExpectedLiteral)),
        }
    }
}

/// One level deeper for the `(` or `!` at byte `token`, or `too_deep` spanning that token.
fn deeper(depth: usize, token: usize) -> Result<usize, GuardError> {
    if depth >= MAX_NESTING_DEPTH {
        return Err(GuardError::new(
            GuardErrorKind::TooDeep,
            Span {
                offset: token,
                length: 1,
            },
        ));
    }
    Ok(depth + 1)
}
