//! Property tests for the guard language: the parser never panics (on arbitrary text and on
//! near-valid token soup, deep nesting included), printing round-trips, and evaluation agrees
//! with a plain reference evaluator written from spec §7.7.

use proptest::prelude::*;
use rstmdb::dsl::guard::{EqualityOp, Expr, Guard, Literal, OrderingOp, Path, Root};
use serde_json::{Map, Value, json};

/// Pieces of guards, valid and not, so that random concatenations are often near-valid.
const TOKENS: &[&str] = &[
    "ctx.",
    "payload.",
    "ctx",
    "payload",
    "a",
    "b",
    "ünï",
    "0",
    ".",
    "..",
    "&&",
    "||",
    "&",
    "|",
    "!",
    "!!!!!!!!!!!!!!!!",
    "(",
    "((((((((((((((((",
    ")",
    "))))))))))))))))",
    "==",
    "!=",
    ">",
    ">=",
    "<",
    "<=",
    "=",
    "true",
    "false",
    "null",
    "TRUE",
    "\"",
    "\"x\"",
    "\\",
    "\\u",
    "\\ud83d",
    "\\ude00",
    "\\u00e9",
    "\\q",
    "1",
    "-",
    "e",
    "E",
    "+",
    "5.",
    ".5",
    "-.5",
    "1e400",
    "1e",
    " ",
    "  ",
    "\u{3000}",
    "\n",
    "\t",
    "'",
    "x",
    "é",
    "😀",
    "\u{301}",
    "$",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..120).prop_map(|tokens| tokens.concat())
}

/// The properties every outcome of `Guard::parse` must have, whatever the input.
fn check_parse_outcome(text: &str) -> Result<(), TestCaseError> {
    match Guard::parse(text) {
        Ok(guard) => {
            let printed = guard.to_string();
            let reparsed = Guard::parse(&printed);
            prop_assert!(
                reparsed.is_ok(),
                "`{}` printed as `{}`: {:?}",
                text,
                printed,
                reparsed
            );
            if let Ok(reparsed) = reparsed {
                prop_assert_eq!(reparsed.expr(), guard.expr());
                prop_assert_eq!(reparsed.to_string(), printed, "printing is idempotent");
            }
            // Evaluation is total.
            guard.eval(
                &json!({"a": {"b": 1}, "ünï": "x"}),
                Some(&json!({"a": true})),
            );
        }
        Err(error) => {
            let end = error.span.offset + error.span.length;
            prop_assert!(
                end <= text.len(),
                "span {:?} past the end of {:?}",
                error.span,
                text
            );
            prop_assert!(
                text.get(error.span.offset..end).is_some(),
                "span {:?} splits a character of {:?}",
                error.span,
                text
            );
            let (line, column) = error.line_column(text);
            prop_assert!(line >= 1 && column >= 1);
            prop_assert!(!error.message(text).is_empty());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(rstmdb_testkit::proptest_config(2_000))]

    #[test]
    fn parsing_arbitrary_text_never_panics(text in any::<String>()) {
        check_parse_outcome(&text)?;
    }
}

// ---- random trees -----------------------------------------------------------------------

const KEYS: &[&str] = &["a", "b", "0", "ünï", "x_1"];

fn path() -> impl Strategy<Value = Path> {
    let root = prop_oneof![Just(Root::Ctx), Just(Root::Payload)];
    let segment = prop::sample::select(KEYS).prop_map(Box::<str>::from);
    (root, prop::collection::vec(segment, 1..4)).prop_map(|(root, segments)| Path {
        root,
        segments: segments.into_boxed_slice(),
    })
}

/// Numbers that matter to the comparisons, plus any finite f64.
fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(&[0.0, -0.0, 1.0, -2.5, 5.0, 0.3, 1e20, 1e-7][..]),
        any::<f64>().prop_filter("literals are finite", |number| number.is_finite()),
    ]
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        Just(Literal::Null),
        any::<bool>().prop_map(Literal::Bool),
        number().prop_map(Literal::Number),
        prop::sample::select(&["", "a", "1", "é", "a\"b\\"][..])
            .prop_map(|s| Literal::String(s.into())),
        any::<String>().prop_map(|s| Literal::String(s.into())),
    ]
}

fn comparison() -> impl Strategy<Value = Expr> {
    let equality_op = prop_oneof![Just(EqualityOp::Eq), Just(EqualityOp::Ne)];
    let ordering_op = prop_oneof![
        Just(OrderingOp::Gt),
        Just(OrderingOp::Ge),
        Just(OrderingOp::Lt),
        Just(OrderingOp::Le)
    ];
    prop_oneof![
        path().prop_map(Expr::Truthy),
        (path(), equality_op, literal()).prop_map(|(path, op, literal)| Expr::Equality {
            path,
            op,
            literal
        }),
        (path(), ordering_op, number()).prop_map(|(path, op, number)| Expr::Ordering {
            path,
            op,
            number
        }),
    ]
}

/// Trees of bounded depth (well inside the nesting limit), in the shapes the parser builds:
/// `And`/`Or` with at least two operands.
fn tree() -> impl Strategy<Value = Expr> {
    comparison().prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_map(|operand| Expr::Not(Box::new(operand))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner, 2..4).prop_map(Expr::Or),
        ]
    })
}

// ---- near-valid guards --------------------------------------------------------------------

const WHITESPACE: &[&str] = &["", " ", "  ", "\u{3000}", "\n", "\t ", "\u{a0}"];

/// A printed random tree with its spaces replaced by other whitespace (or none), then a few
/// random edits: each deletes up to two characters somewhere and inserts a token there.
fn near_valid_guard() -> impl Strategy<Value = String> {
    let edit = (
        any::<prop::sample::Index>(),
        prop::sample::select(TOKENS),
        0..3_usize,
    );
    (
        tree(),
        prop::collection::vec(prop::sample::select(WHITESPACE), 1..8),
        prop::collection::vec(edit, 0..3),
    )
        .prop_map(|(expr, spaces, edits)| {
            let printed = expr.to_string();
            let mut text = String::new();
            for (index, piece) in printed.split(' ').enumerate() {
                if index > 0 {
                    text.push_str(spaces[index % spaces.len()]);
                }
                text.push_str(piece);
            }
            for (at, token, deleted) in edits {
                let boundaries: Vec<usize> = text
                    .char_indices()
                    .map(|(offset, _)| offset)
                    .chain([text.len()])
                    .collect();
                let start = at.index(boundaries.len());
                let end = boundaries[(start + deleted).min(boundaries.len() - 1)];
                text.replace_range(boundaries[start]..end, token);
            }
            text
        })
}

/// A random tree inside 50 to 80 levels of `(`, `!` or both, around the limit of 64.
fn deeply_nested_guard() -> impl Strategy<Value = String> {
    let opener = prop::sample::select(&["(", "!", "!(", "( ", "! "][..]);
    (50..80_usize, opener, tree()).prop_map(|(depth, opener, expr)| {
        let closer = ")".repeat(opener.matches('(').count());
        format!("{}{expr}{}", opener.repeat(depth), closer.repeat(depth))
    })
}

proptest! {
    #![proptest_config(rstmdb_testkit::proptest_config(2_000))]

    #[test]
    fn parsing_guard_like_token_soup_never_panics(
        text in prop_oneof![token_soup(), near_valid_guard(), deeply_nested_guard()],
    ) {
        check_parse_outcome(&text)?;
    }
}

// ---- a reference evaluator, written plainly from §7.7 -----------------------------------

fn reference_resolve<'v>(path: &Path, ctx: &'v Value, payload: Option<&'v Value>) -> Value {
    let mut current = match path.root {
        Root::Ctx => ctx,
        Root::Payload => match payload {
            Some(payload) => payload,
            None => return Value::Null,
        },
    };
    for segment in path.segments.iter() {
        match current {
            Value::Object(members) => match members.get(&**segment) {
                Some(member) => current = member,
                None => return Value::Null,
            },
            _ => return Value::Null,
        }
    }
    current.clone()
}

fn reference_eval(expr: &Expr, ctx: &Value, payload: Option<&Value>) -> bool {
    match expr {
        Expr::Or(operands) => {
            let mut result = false;
            for operand in operands {
                result = result || reference_eval(operand, ctx, payload);
            }
            result
        }
        Expr::And(operands) => {
            let mut result = true;
            for operand in operands {
                result = result && reference_eval(operand, ctx, payload);
            }
            result
        }
        Expr::Not(operand) => !reference_eval(operand, ctx, payload),
        Expr::Truthy(path) => {
            let value = reference_resolve(path, ctx, payload);
            !(value.is_null()
                || value == json!(false)
                || value.as_f64() == Some(0.0)
                || value == json!("")
                || value == json!([])
                || value == json!({}))
        }
        Expr::Equality { path, op, literal } => {
            let value = reference_resolve(path, ctx, payload);
            let equal = match literal {
                Literal::Null => value.is_null(),
                Literal::Bool(flag) => value.as_bool() == Some(*flag),
                Literal::String(string) => value.as_str() == Some(&**string),
                Literal::Number(number) => value
                    .as_f64()
                    .is_some_and(|v| (v - number).abs() < 2.220446049250313e-16),
            };
            equal == (*op == EqualityOp::Eq)
        }
        Expr::Ordering { path, op, number } => match reference_resolve(path, ctx, payload).as_f64()
        {
            None => false,
            Some(value) => match op {
                OrderingOp::Gt => value > *number,
                OrderingOp::Ge => value >= *number,
                OrderingOp::Lt => value < *number,
                OrderingOp::Le => value <= *number,
            },
        },
    }
}

/// JSON values over the same keys the paths use, so that paths often resolve.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(&[0.0, -0.0, 1.0, 5.0, 0.30000000000000004, 1e20, -2.5][..])
            .prop_map(|number| json!(number)),
        prop::sample::select(&[0_i64, 1, 5, -3][..]).prop_map(|number| json!(number)),
        prop::sample::select(&["", "a", "1", "é", "a\"b\\"][..]).prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..4).prop_map(|members| {
                Value::Object(
                    members
                        .into_iter()
                        .map(|(key, value)| (key.to_owned(), value))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(rstmdb_testkit::proptest_config(1_000))]

    #[test]
    fn printed_trees_parse_back_to_the_same_tree(expr in tree()) {
        let printed = expr.to_string();
        let parsed = Guard::parse(&printed);
        prop_assert!(parsed.is_ok(), "`{}` does not parse: {:?}", printed, parsed);
        if let Ok(parsed) = parsed {
            prop_assert_eq!(parsed.expr(), &expr, "printed as `{}`", printed);
        }
    }

    #[test]
    fn evaluation_agrees_with_the_reference_evaluator(
        expr in tree(),
        ctx in json_value(),
        payload in prop::option::of(json_value()),
    ) {
        let guard = Guard::parse(&expr.to_string()).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(
            guard.eval(&ctx, payload.as_ref()),
            reference_eval(&expr, &ctx, payload.as_ref()),
            "guard `{}`", guard
        );
    }
}
