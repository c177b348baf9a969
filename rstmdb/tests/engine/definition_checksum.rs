//! The canonical serialisation and checksum of §6.7, with its four test vectors.

use rstmdb::dsl::definition::MachineDefinition;
use serde_json::{Value, json};

fn machine(text: &str) -> MachineDefinition {
    let value: Value = serde_json::from_str(text).expect("test definition is JSON");
    MachineDefinition::from_json(&value).expect("test definition is valid")
}

fn assert_vector(sent: &str, canonical: &str, checksum: &str) {
    let machine = machine(sent);
    assert_eq!(machine.canonical_json(), canonical);
    assert_eq!(machine.checksum_hex(), checksum);
    assert_eq!(
        machine.checksum(),
        u32::from_str_radix(checksum, 16).expect("hex")
    );
}

#[test]
fn vector_1_put_machine_example() {
    assert_vector(
        r#"{"states":["created","paid","shipped"],"initial":"created","transitions":[{"from":"created","event":"PAY","to":"paid"},{"from":"paid","event":"SHIP","to":"shipped","guard":"ctx.ready"}]}"#,
        r#"{"states":["created","paid","shipped"],"initial":"created","transitions":[{"from":["created"],"event":"PAY","to":"paid"},{"from":["paid"],"event":"SHIP","to":"shipped","guard":"ctx.ready"}]}"#,
        "eef67bea",
    );
}

#[test]
fn vector_2_sorted_meta_escapes_numbers_and_dropped_keys() {
    assert_vector(
        r#"{"states":["a","b"],"initial":"a","transitions":[{"from":"a","event":"GO","to":"b","guard":null,"note":"x"}],"meta":{"z":1,"a":{"y":"q\"/\u00e9\n","b":[2.5,true,null,1.0,1e2]}},"extra":1}"#,
        r#"{"states":["a","b"],"initial":"a","transitions":[{"from":["a"],"event":"GO","to":"b"}],"meta":{"a":{"b":[2.5,true,null,1.0,100.0],"y":"q\"/é\n"},"z":1}}"#,
        "467966b7",
    );
}

#[test]
fn vector_3_null_meta_is_left_out() {
    assert_vector(
        r#"{"states":["a","b"],"initial":"a","transitions":[{"from":["a"],"event":"GO","to":"b"}],"meta":null}"#,
        r#"{"states":["a","b"],"initial":"a","transitions":[{"from":["a"],"event":"GO","to":"b"}]}"#,
        "cd587fc1",
    );
}

#[test]
fn vector_4_large_float_uses_an_explicit_plus_exponent() {
    assert_vector(
        r#"{"states":["a"],"initial":"a","transitions":[],"meta":{"big":1e20}}"#,
        r#"{"states":["a"],"initial":"a","transitions":[],"meta":{"big":1e+20}}"#,
        "4f9ecc43",
    );
}

#[test]
fn plain_string_from_and_one_element_list_are_identical() {
    let plain = machine(
        r#"{"states":["a"],"initial":"a","transitions":[{"from":"a","event":"E","to":"a"}]}"#,
    );
    let list = machine(
        r#"{"states":["a"],"initial":"a","transitions":[{"from":["a"],"event":"E","to":"a"}]}"#,
    );
    assert_eq!(plain.canonical_json(), list.canonical_json());
    assert_eq!(plain.checksum(), list.checksum());
    assert_eq!(plain.normalized(), list.normalized());
}

#[test]
fn unknown_keys_do_not_change_the_checksum() {
    let bare = machine(
        r#"{"states":["a"],"initial":"a","transitions":[{"from":"a","event":"E","to":"a"}]}"#,
    );
    let decorated = machine(
        r#"{"version":3,"states":["a"],"initial":"a","transitions":[{"label":"x","from":"a","event":"E","to":"a","guard":null}],"comment":{"k":1}}"#,
    );
    assert_eq!(bare.checksum_hex(), decorated.checksum_hex());
    assert_eq!(decorated.normalized(), bare.normalized());
}

#[test]
fn guard_text_is_kept_exactly_as_received() {
    let spaced = machine(
        r#"{"states":["a"],"initial":"a","transitions":[{"from":"a","event":"E","to":"a","guard":"  ctx.ok\n&&  ctx.n  "}]}"#,
    );
    let tight = machine(
        r#"{"states":["a"],"initial":"a","transitions":[{"from":"a","event":"E","to":"a","guard":"ctx.ok && ctx.n"}]}"#,
    );
    assert!(
        spaced
            .canonical_json()
            .contains(r#""guard":"  ctx.ok\n&&  ctx.n  ""#)
    );
    assert_ne!(spaced.checksum(), tight.checksum());
}

#[test]
fn states_keep_order_and_duplicates() {
    let machine = machine(r#"{"states":["b","a","b"],"initial":"a","transitions":[]}"#);
    assert_eq!(
        machine.canonical_json(),
        r#"{"states":["b","a","b"],"initial":"a","transitions":[]}"#
    );
    let reordered = self::machine(r#"{"states":["a","b"],"initial":"a","transitions":[]}"#);
    assert_ne!(machine.checksum(), reordered.checksum());
}

#[test]
fn meta_keys_sort_by_bytes_at_every_depth_and_strings_escape_controls() {
    let machine = machine(
        "{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[],\"meta\":\
         {\"b\":[{\"é\":1,\"Z\":2,\"a\":3}],\"B\":\"\\u0001\\t\\u007f/\",\"-0\":-0,\"n\":[1e16,0.00001,0.000001,-12,18446744073709551615]}}",
    );
    assert_eq!(
        machine.canonical_json(),
        "{\"states\":[\"a\"],\"initial\":\"a\",\"transitions\":[],\"meta\":\
         {\"-0\":-0.0,\"B\":\"\\u0001\\t\u{7f}/\",\"b\":[{\"Z\":2,\"a\":3,\"é\":1}],\"n\":[1e+16,0.00001,1e-6,-12,18446744073709551615]}}"
    );
}

#[test]
fn normalized_form_is_the_canonical_json_parsed() {
    let machine = machine(
        r#"{"states":["a","b"],"initial":"a","transitions":[{"from":"a","event":"GO","to":"b","guard":"ctx.x"}],"meta":{"z":[1,{"y":2}]}}"#,
    );
    let reparsed: Value =
        serde_json::from_str(&machine.canonical_json()).expect("canonical JSON parses");
    assert_eq!(machine.normalized(), reparsed);
    assert_eq!(machine.normalized()["transitions"][0]["from"], json!(["a"]));
}
