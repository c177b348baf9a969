//! Evaluation (§7.7, §7.8): total (no run-time errors) and allocation-free. It only walks
//! borrowed `&Value`s and compares them with literals decoded at parse time.

use super::ast::{EqualityOp, Expr, Literal, OrderingOp, Path, Root};
use serde_json::Value;

/// The values paths resolve in.
#[derive(Debug, Clone, Copy)]
pub(super) struct Roots<'v> {
    /// The context before the payload is merged.
    pub(super) ctx: &'v Value,
    /// Absent when the event carries no payload.
    pub(super) payload: Option<&'v Value>,
}

impl Expr {
    pub(super) fn eval(&self, roots: Roots<'_>) -> bool {
        match self {
            // `any`/`all` short-circuit; nothing has side effects, so only speed depends on it.
            Expr::Or(operands) => operands.iter().any(|operand| operand.eval(roots)),
            Expr::And(operands) => operands.iter().all(|operand| operand.eval(roots)),
            Expr::Not(operand) => !operand.eval(roots),
            Expr::Truthy(path) => is_truthy(path.resolve(roots)),
            Expr::Equality { path, op, literal } => {
                let equal = equals(path.resolve(roots), literal);
                match op {
                    EqualityOp::Eq => equal,
                    EqualityOp::Ne => !equal,
                }
            }
            Expr::Ordering { path, op, number } => match path.resolve(roots) {
                Some(Value::Number(value)) => value
                    .as_f64()
                    .is_some_and(|value| compare(value, *op, *number)),
                _ => false,
            },
        }
    }
}

impl Path {
    /// The value at this path; `None` stands for null (missing key, or a non-object on the way).
    fn resolve<'v>(&self, roots: Roots<'v>) -> Option<&'v Value> {
        let root = match self.root {
            Root::Ctx => roots.ctx,
            Root::Payload => roots.payload?,
        };
        self.segments
            .iter()
            .try_fold(root, |value, segment| value.as_object()?.get(&**segment))
    }
}

/// §7.7 truthiness: null, `false`, zero, `""`, `[]` and `{}` are false.
fn is_truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        // `-0.0 != 0.0` is false under IEEE-754, so negative zero is falsy too.
        Some(Value::Number(number)) => number.as_f64().is_some_and(|number| number != 0.0),
        Some(Value::String(string)) => !string.is_empty(),
        Some(Value::Array(items)) => !items.is_empty(),
        Some(Value::Object(members)) => !members.is_empty(),
    }
}

/// §7.7 `==`: same JSON type and equal; numbers within machine epsilon; no coercion.
fn equals(value: Option<&Value>, literal: &Literal) -> bool {
    match (value, literal) {
        (None | Some(Value::Null), Literal::Null) => true,
        (Some(Value::Bool(flag)), Literal::Bool(expected)) => flag == expected,
        (Some(Value::String(string)), Literal::String(expected)) => **string == **expected,
        (Some(Value::Number(number)), Literal::Number(expected)) => number
            .as_f64()
            .is_some_and(|number| (number - expected).abs() < f64::EPSILON),
        _ => false,
    }
}

fn compare(value: f64, op: OrderingOp, number: f64) -> bool {
    match op {
        OrderingOp::Gt => value > number,
        OrderingOp::Ge => value >= number,
        OrderingOp::Lt => value < number,
        OrderingOp::Le => value <= number,
    }
}
