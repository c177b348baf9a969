//! Arbitrary bytes as a PUT_MACHINE definition: JSON → `MachineDefinition::from_json` →
//! checksum and normalised form.
//!
//! Checks: no panic (in the loader, the error details, or the source positions diagnostics
//! use); a valid definition's normalised form and its canonical JSON load again to the same
//! canonical JSON and checksum (§6.7: identical definitions have equal checksums).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rstmdb::dsl::definition::MachineDefinition;
use rstmdb::dsl::json_span;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(error) => {
            let offset = json_span::offset_of_serde_position(text, error.line(), error.column());
            assert!(text.is_char_boundary(offset));
            return;
        }
    };
    let definition = match MachineDefinition::from_json(&value) {
        Ok(definition) => definition,
        Err(error) => {
            let _ = (
                error.details(),
                error.problem(),
                error.reason(),
                error.kind_str(),
            );
            if let Some(range) = json_span::locate(text, error.pointer()) {
                let located = text
                    .get(range.clone())
                    .expect("located range is in the text");
                let _ = json_span::line_column(text, range.start);
                if let Ok(Value::String(decoded)) = serde_json::from_str::<Value>(located) {
                    let raw = json_span::decoded_range_to_raw(located, 0..decoded.len())
                        .expect("a decoded string maps back to its literal");
                    assert!(raw.end <= located.len());
                }
            }
            return;
        }
    };

    let canonical = definition.canonical_json();
    let checksum = definition.checksum();
    let normalized = definition.normalized();
    let from_normalized = MachineDefinition::from_json(&normalized)
        .unwrap_or_else(|e| panic!("normalised form {normalized} is rejected: {e:?}"));
    assert_eq!(
        from_normalized.canonical_json(),
        canonical,
        "normalising changed the definition"
    );
    let canonical_value: Value =
        serde_json::from_str(&canonical).expect("canonical serialisation is JSON");
    let from_canonical = MachineDefinition::from_json(&canonical_value)
        .unwrap_or_else(|e| panic!("canonical form {canonical} is rejected: {e:?}"));
    assert_eq!(
        from_canonical.checksum(),
        checksum,
        "canonical form has another checksum"
    );

    // The engine's per-event lookups over every state id and event.
    // (At most 64 x 64 of them: enough to cover the index, cheap enough per input.)
    for state in (0..definition.state_count() as u32).take(64) {
        let _ = definition.state_name(state);
        for transition in definition.transitions.iter().take(64) {
            let _ = definition.candidates(state, &transition.event);
        }
    }
});
