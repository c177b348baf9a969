//! The canonical printed form (`Display for Guard`): normalised spacing and literals,
//! parentheses only where the tree needs them, and always parsing back to the same tree.

use rstmdb::dsl::guard::Guard;

fn canonical(text: &str) -> String {
    let guard = Guard::parse(text).unwrap_or_else(|error| panic!("`{text}`: {error:?}"));
    let printed = guard.to_string();
    let reparsed = Guard::parse(&printed).unwrap_or_else(|error| panic!("`{printed}`: {error:?}"));
    assert_eq!(
        reparsed.expr(),
        guard.expr(),
        "`{text}` printed as `{printed}`"
    );
    printed
}

#[test]
fn spacing_is_normalised_to_single_spaces_around_binary_operators() {
    assert_eq!(
        canonical("  ctx.ok\n&&ctx.n==5||\u{3000}payload.x  "),
        "ctx.ok && ctx.n == 5 || payload.x"
    );
    assert_eq!(canonical("! ! ctx.a"), "!!ctx.a");
}

#[test]
fn redundant_parentheses_are_dropped() {
    assert_eq!(canonical("((ctx.a))"), "ctx.a");
    assert_eq!(canonical("!(ctx.a)"), "!ctx.a");
    assert_eq!(canonical("!(ctx.n == 5)"), "!ctx.n == 5");
    assert_eq!(
        canonical("(ctx.a && ctx.b) || ctx.c"),
        "ctx.a && ctx.b || ctx.c"
    );
    assert_eq!(
        canonical("ctx.a || (ctx.b && ctx.c)"),
        "ctx.a || ctx.b && ctx.c"
    );
}

#[test]
fn parentheses_that_shape_the_tree_are_kept() {
    assert_eq!(
        canonical("(ctx.a && ctx.b) && ctx.c"),
        "(ctx.a && ctx.b) && ctx.c"
    );
    assert_eq!(
        canonical("ctx.a && (ctx.b && ctx.c)"),
        "ctx.a && (ctx.b && ctx.c)"
    );
    assert_eq!(
        canonical("(ctx.a || ctx.b) || ctx.c"),
        "(ctx.a || ctx.b) || ctx.c"
    );
    assert_eq!(
        canonical("(ctx.a || ctx.b) && ctx.c"),
        "(ctx.a || ctx.b) && ctx.c"
    );
    assert_eq!(canonical("!(ctx.a || ctx.b)"), "!(ctx.a || ctx.b)");
    assert_eq!(canonical("!(ctx.a && ctx.b)"), "!(ctx.a && ctx.b)");
}

#[test]
fn numbers_print_in_their_shortest_exact_form() {
    assert_eq!(canonical("ctx.n >= 1e3"), "ctx.n >= 1000");
    assert_eq!(canonical("ctx.n > .5"), "ctx.n > 0.5");
    assert_eq!(canonical("ctx.n <= 5."), "ctx.n <= 5");
    assert_eq!(canonical("ctx.n == -2e+2"), "ctx.n == -200");
    assert_eq!(canonical("ctx.n == 1e300"), "ctx.n == 1e300");
    assert_eq!(canonical("ctx.n < 1.5E-7"), "ctx.n < 1.5e-7");
    assert_eq!(canonical("ctx.n < -0"), "ctx.n < -0");
    assert_eq!(canonical("ctx.n == 0.1"), "ctx.n == 0.1");
}

#[test]
fn strings_print_with_only_the_necessary_escapes() {
    assert_eq!(
        canonical(r#"ctx.s == "\u0061\"\\\/""#),
        r#"ctx.s == "a\"\\/""#
    );
    assert_eq!(
        canonical("ctx.s == \"line\nbreak\ttab\""),
        r#"ctx.s == "line\nbreak\ttab""#
    );
    assert_eq!(
        canonical(r#"ctx.s == "\u0001\ud83d\ude00é""#),
        r#"ctx.s == "\u0001😀é""#
    );
}

#[test]
fn keywords_and_unicode_paths_print_as_written() {
    assert_eq!(canonical("payload.ünï!=false"), "payload.ünï != false");
    assert_eq!(canonical("ctx.a==null"), "ctx.a == null");
}

#[test]
fn guards_compare_their_text_as_well_as_their_tree() {
    let grouped = Guard::parse("(ctx.a)").expect("parses");
    let plain = Guard::parse("ctx.a").expect("parses");
    assert_eq!(grouped.expr(), plain.expr());
    assert_ne!(
        grouped, plain,
        "the text as written is part of a stored definition"
    );
    assert_eq!(grouped.text(), "(ctx.a)");
}

#[test]
fn printing_never_nests_deeper_than_the_source() {
    let deepest = format!("{}ctx.a == 1{}", "!(".repeat(32), ")".repeat(32));
    assert_eq!(canonical(&deepest), format!("{}ctx.a == 1", "!".repeat(32)));
    let deepest_bangs = format!("{}ctx.a == 1", "!".repeat(64));
    assert_eq!(canonical(&deepest_bangs), deepest_bangs);
}
