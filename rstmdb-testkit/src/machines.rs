//! The machine most tests use and the numbers that go with it.

use serde_json::Value;

/// The order machine of the spec's worked example (§4.7), `order` version 1, as one line of
/// JSON (what a REPL command line or a file carries).
pub const ORDER_DEFINITION: &str = r#"{"states":["created","paid","shipped"],"initial":"created","transitions":[{"from":"created","event":"PAY","to":"paid"},{"from":"paid","event":"SHIP","to":"shipped","guard":"ctx.ready"}]}"#;

/// The checksum of [`ORDER_DEFINITION`] (§6.7).
pub const ORDER_CHECKSUM: &str = "eef67bea";

/// The offset of a fresh database's first record: byte 0 of segment 1 (§6.10).
pub const FIRST_OFFSET: u64 = 1 << 40;

/// [`ORDER_DEFINITION`] as a JSON value.
pub fn order_definition() -> Value {
    serde_json::from_str(ORDER_DEFINITION).expect("ORDER_DEFINITION is JSON")
}
