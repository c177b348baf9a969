//! Lexical rules of spec §7.4 and error spans of §7.10 beyond the §7.12 table: token boundaries,
//! number forms, string escapes, nesting depth, Unicode whitespace and line/column reporting.

use rstmdb::dsl::guard::{Expr, Guard, GuardError, Literal, MAX_NESTING_DEPTH};

/// The error for a guard that must be rejected, as (kind, offset, length, covered text).
fn rejection(text: &str) -> (&'static str, usize, usize, String) {
    let error: GuardError = match Guard::parse(text) {
        Ok(guard) => panic!("`{text}` was accepted as `{guard}`"),
        Err(error) => error,
    };
    (
        error.kind.as_str(),
        error.span.offset,
        error.span.length,
        error.text(text).to_owned(),
    )
}

fn assert_rejected(text: &str, kind: &str, offset: usize, length: usize, covered: &str) {
    assert_eq!(
        rejection(text),
        (kind, offset, length, covered.to_owned()),
        "guard `{text}`"
    );
}

/// The literal on the right of `ctx.a == <literal>`.
fn literal_of(literal_text: &str) -> Literal {
    let text = format!("ctx.a == {literal_text}");
    match Guard::parse(&text).map(|guard| guard.expr().clone()) {
        Ok(Expr::Equality { literal, .. }) => literal,
        other => panic!("`{text}` parsed as {other:?}"),
    }
}

fn number_of(literal_text: &str) -> f64 {
    match literal_of(literal_text) {
        Literal::Number(number) => number,
        other => panic!("`{literal_text}` is {other:?}, not a number"),
    }
}

fn string_of(literal_text: &str) -> String {
    match literal_of(literal_text) {
        Literal::String(string) => string.into(),
        other => panic!("`{literal_text}` is {other:?}, not a string"),
    }
}

#[test]
fn all_spec_number_forms_are_read_as_their_values() {
    assert_eq!(number_of("5"), 5.0);
    assert_eq!(number_of("-5"), -5.0);
    assert_eq!(number_of("5."), 5.0);
    assert_eq!(number_of(".5"), 0.5);
    assert_eq!(number_of("-.5"), -0.5);
    assert_eq!(number_of("1e3"), 1000.0);
    assert_eq!(number_of("1.5E-2"), 0.015);
    assert_eq!(number_of("-2e+2"), -200.0);
    assert_eq!(number_of("1.e2"), 100.0);
    assert_eq!(number_of("0.1"), 0.1, "nearest f64, as Rust reads it");
    assert_eq!(
        number_of("1e-400"),
        0.0,
        "underflow rounds to zero and is fine"
    );
    assert_eq!(number_of("1.7976931348623157e308"), f64::MAX);
}

#[test]
fn malformed_or_overflowing_numbers_are_invalid_number() {
    assert_rejected("ctx.a == 1.2.3", "invalid_number", 9, 5, "1.2.3");
    assert_rejected("ctx.a == 1x", "invalid_number", 9, 2, "1x");
    assert_rejected("ctx.a == 5..", "invalid_number", 9, 3, "5..");
    assert_rejected("ctx.a > 1e+", "invalid_number", 8, 3, "1e+");
    assert_rejected("ctx.a > 1e5x && ctx.b", "invalid_number", 8, 4, "1e5x");
    assert_rejected("ctx.a == -1e400", "invalid_number", 9, 6, "-1e400");
    assert_rejected("ctx.a == 1.8e308 ", "invalid_number", 9, 7, "1.8e308");
}

#[test]
fn something_that_never_started_a_number_is_expected_number() {
    assert_rejected("ctx.a > true", "expected_number", 8, 4, "true");
    assert_rejected("ctx.a > -x", "expected_number", 8, 2, "-x");
    assert_rejected("ctx.a > .e5", "expected_number", 8, 3, ".e5");
    assert_rejected("ctx.a > - 5", "expected_number", 8, 1, "-");
    assert_rejected("ctx.a >", "expected_number", 7, 0, "");
    assert_rejected("ctx.a >= =1", "expected_number", 9, 1, "=");
}

#[test]
fn keywords_are_case_sensitive_and_must_end_at_a_token_boundary() {
    assert_eq!(literal_of("true"), Literal::Bool(true));
    assert_eq!(literal_of("false"), Literal::Bool(false));
    assert_eq!(literal_of("null"), Literal::Null);
    assert_rejected("ctx.a == truex", "invalid_literal", 9, 5, "truex");
    assert_rejected("ctx.a == null.b", "invalid_literal", 9, 6, "null.b");
    assert_rejected("ctx.a == false_", "invalid_literal", 9, 6, "false_");
    assert_rejected("ctx.a == TRUE", "expected_literal", 9, 4, "TRUE");
    assert_rejected("ctx.a == tru", "expected_literal", 9, 3, "tru");
    assert_rejected("ctx.a ==", "expected_literal", 8, 0, "");
    // A keyword followed by something that is not glued to it is complete.
    assert!(Guard::parse("ctx.a == true&&ctx.b").is_ok());
}

#[test]
fn roots_must_be_followed_directly_by_a_dot() {
    assert_rejected("ctx .a", "expected_path", 0, 3, "ctx");
    assert_rejected("ctxa.b", "expected_path", 0, 6, "ctxa.b");
    assert_rejected("payload", "expected_path", 0, 7, "payload");
    assert_rejected("payloadx.a", "expected_path", 0, 10, "payloadx.a");
    assert_rejected("Payload.a", "expected_path", 0, 9, "Payload.a");
    assert_rejected("ctx.a.", "empty_segment", 6, 0, "");
    assert_rejected("ctx.a . b", "trailing_input", 6, 3, ". b");
}

#[test]
fn path_segments_take_any_xid_continue_characters() {
    for text in [
        "ctx.ünï",
        "ctx.0",
        "ctx._",
        "ctx.a1.2b",
        "payload.名前",
        "ctx.x\u{301}",
    ] {
        assert!(Guard::parse(text).is_ok(), "`{text}` should parse");
    }
    // `-` and `$` are not identifier characters: the path ends before them.
    assert_rejected("ctx.a$b", "trailing_input", 5, 2, "$b");
}

#[test]
fn bang_equals_is_always_the_operator_never_a_negation() {
    assert_rejected("!=ctx.a", "expected_path", 0, 1, "!");
    assert_rejected("ctx.a !ctx.b", "trailing_input", 6, 6, "!ctx.b");
    assert!(Guard::parse("ctx.a !=1").is_ok());
    assert!(
        Guard::parse("! ctx.a").is_ok(),
        "whitespace may follow a `!`"
    );
    assert_rejected("! =ctx.a", "expected_path", 2, 1, "=");
}

#[test]
fn operand_errors_span_the_word_found() {
    assert_rejected("ctx.a && 'x' || ctx.b", "expected_path", 9, 3, "'x'");
    assert_rejected("ctx.a &&& ctx.b", "expected_path", 8, 1, "&");
    assert_rejected("ctx.a || (", "expected_path", 10, 0, "");
    assert_rejected("(ctx.a foo)", "expected_rparen", 7, 3, "foo");
    assert_rejected("(ctx.a = 1)", "expected_rparen", 7, 1, "=");
    assert_rejected("ctx.a & ctx.b", "trailing_input", 6, 7, "& ctx.b");
    assert_rejected("ctx.a == \"x\" \"y", "trailing_input", 13, 2, "\"y");
}

#[test]
fn string_escapes_are_decoded() {
    assert_eq!(string_of(r#""a\"b""#), "a\"b");
    assert_eq!(string_of(r#""\\""#), "\\");
    assert_eq!(string_of(r#""\/""#), "/");
    assert_eq!(string_of(r#""\b\f\n\r\t""#), "\u{8}\u{c}\n\r\t");
    assert_eq!(string_of(r#""\u0061""#), "a");
    assert_eq!(string_of(r#""\u00E9\u00e9""#), "éé");
    assert_eq!(string_of(r#""\ud83d\ude00""#), "😀");
    assert_eq!(string_of(r#""\uD83D\uDE00!""#), "😀!");
    assert_eq!(string_of("\"raw\nnewline and ü\""), "raw\nnewline and ü");
    assert_eq!(string_of(r#""""#), "");
}

#[test]
fn bad_escapes_span_the_escape_sequence() {
    // `ctx.a == "` is 10 bytes, so the escapes below start at offset 10.
    assert_rejected(r#"ctx.a == "\q""#, "invalid_escape", 10, 2, r"\q");
    assert_rejected(r#"ctx.a == "\U0061""#, "invalid_escape", 10, 2, r"\U");
    assert_rejected(r#"ctx.a == "\ud83d""#, "invalid_escape", 10, 6, r"\ud83d");
    assert_rejected(r#"ctx.a == "\ude00""#, "invalid_escape", 10, 6, r"\ude00");
    assert_rejected(r#"ctx.a == "\ud83dx""#, "invalid_escape", 10, 6, r"\ud83d");
    assert_rejected(
        r#"ctx.a == "\ud83d\u0041""#,
        "invalid_escape",
        10,
        6,
        r"\ud83d",
    );
    assert_rejected(
        r#"ctx.a == "\ud83d\ud83d""#,
        "invalid_escape",
        10,
        6,
        r"\ud83d",
    );
    assert_rejected(
        r#"ctx.a == "\ud83d\uzzzz""#,
        "invalid_escape",
        16,
        6,
        r"\uzzzz",
    );
    assert_rejected(r#"ctx.a == "\u12zz""#, "invalid_escape", 10, 6, r"\u12zz");
    // A malformed `\u` keeps its 6-byte span, cut short at the end of the text.
    assert_rejected(r#"ctx.a == "\u12""#, "invalid_escape", 10, 5, r#"\u12""#);
    assert_rejected(r#"ctx.a == "\u"#, "invalid_escape", 10, 2, r"\u");
    // A non-ASCII character after `\` is kept whole, so the span stays on character boundaries.
    assert_rejected(r#"ctx.a == "\é""#, "invalid_escape", 10, 3, r"\é");
}

#[test]
fn unterminated_strings_span_to_the_end_of_the_text() {
    assert_rejected(r#"ctx.a == "abc\"#, "unterminated_string", 9, 5, r#""abc\"#);
    assert_rejected(
        r#"ctx.a == "abc\" "#,
        "unterminated_string",
        9,
        7,
        r#""abc\" "#,
    );
    assert_rejected("ctx.a == \"", "unterminated_string", 9, 1, "\"");
}

fn nested(open: &str, depth: usize, close: &str) -> String {
    format!("{}ctx.a{}", open.repeat(depth), close.repeat(depth))
}

#[test]
fn nesting_up_to_64_is_accepted_and_65_is_too_deep_at_the_extra_token() {
    assert_eq!(MAX_NESTING_DEPTH, 64);
    assert!(Guard::parse(&nested("(", 64, ")")).is_ok());
    assert!(Guard::parse(&nested("!", 64, "")).is_ok());
    assert!(Guard::parse(&nested("!(", 32, ")")).is_ok());
    assert_rejected(&nested("(", 65, ")"), "too_deep", 64, 1, "(");
    assert_rejected(&nested("!", 65, ""), "too_deep", 64, 1, "!");
    assert_rejected(&nested("! ", 65, ""), "too_deep", 128, 1, "!");
    // `(` and `!` count together.
    assert_rejected(
        &format!("!{}", nested("(", 64, ")")),
        "too_deep",
        64,
        1,
        "(",
    );
}

#[test]
fn nesting_depth_is_per_branch_not_per_guard() {
    let deep = nested("(", 64, ")");
    assert!(Guard::parse(&format!("{deep} && {deep} || {deep}")).is_ok());
}

#[test]
fn long_and_or_chains_parse_without_exhausting_the_stack() {
    let chain = vec!["ctx.a"; 100_000].join(" && ");
    let guard = Guard::parse(&format!("{chain} || ctx.b")).expect("long chain parses");
    assert!(guard.eval(&serde_json::json!({"b": true}), None));
    let rejected = format!("{}ctx.a", "!(".repeat(10_000));
    assert_eq!(rejection(&rejected).0, "too_deep");
}

#[test]
fn any_unicode_whitespace_separates_tokens() {
    let ideographic = "\u{3000}ctx.ok\u{3000}&&\u{3000}ctx.n\u{3000}==\u{3000}5\u{3000}";
    let guard = Guard::parse(ideographic).expect("U+3000 is White_Space");
    assert!(guard.eval(&serde_json::json!({"ok": true, "n": 5}), None));
    assert!(Guard::parse("ctx.ok\u{a0}||\u{2028}ctx.n\t\r\n").is_ok());
    // Not White_Space: a zero-width space is trailing text.
    assert_rejected("ctx.ok\u{200b}", "trailing_input", 6, 3, "\u{200b}");
}

#[test]
fn whitespace_only_guards_are_empty_over_their_whole_text() {
    assert_rejected(" \n\u{3000}", "empty_guard", 0, 5, " \n\u{3000}");
}

#[test]
fn trailing_input_stops_at_the_last_non_whitespace_character() {
    assert_rejected(
        "ctx.ok foo bar \u{3000}\n",
        "trailing_input",
        7,
        7,
        "foo bar",
    );
}

#[test]
fn line_and_column_count_lines_and_unicode_scalars() {
    let text = "ctx.ok &&\nctx.ünï == ünï";
    let error = Guard::parse(text).expect_err("ünï is not a literal");
    assert_eq!(error.kind.as_str(), "expected_literal");
    assert_eq!(
        error.span.offset, 23,
        "byte offset: ü and ï take two bytes each"
    );
    assert_eq!(error.line_column(text), (2, 12));
    let third_line = "ctx.a\n&& ctx.b\n  && ";
    let error = Guard::parse(third_line).expect_err("an operand is missing");
    assert_eq!(error.line_column(third_line), (3, 6));
}

#[test]
fn messages_name_what_was_found() {
    let cases = [
        ("ctx.ok foo", "unexpected trailing text 'foo'"),
        (
            "ctx.ok &&",
            "expected a path such as ctx.field or payload.field, found the end of the guard",
        ),
        ("ctx.n > 1e", "invalid or out-of-range number '1e'"),
        ("(ctx.ok", "expected ')', found the end of the guard"),
        ("", "the guard is empty"),
    ];
    for (text, message) in cases {
        let error = Guard::parse(text).expect_err("rejected");
        assert_eq!(error.message(text), message);
    }
}

#[test]
fn error_text_and_position_do_not_panic_on_a_foreign_text() {
    let error = Guard::parse("ctx.ok foo").expect_err("rejected");
    assert_eq!(error.text("short"), "");
    assert_eq!(error.line_column("é"), (1, 2));
}
