//! Numbers in requests keep their value through serialise → parse (found by the
//! `request_envelope` fuzz target; see docs/fuzzing.md).

use rstmdb_protocol::Request;

/// A 38-digit integer does not fit u64, so it is read as a double. Without correct rounding
/// serde_json read it one ulp off, printed that, and read the printed text back as a different
/// double: a ctx value changed between a client's request and a replay of it. Spec §6.7: every
/// such number is the nearest f64.
#[test]
fn a_large_number_reads_as_the_nearest_double_and_survives_a_round_trip() {
    let digits = "17777777777777777777777777099511627776";
    let text = format!(
        r#"{{"type":"request","id":"20","op":"WAL_READ","params":{{"from_offset":{digits},"limit":2}}}}"#
    );
    let request = Request::parse(&text).expect("the request parses");
    let nearest: f64 = digits.parse().expect("std parses with correct rounding");
    assert_eq!(request.params["from_offset"].as_f64(), Some(nearest));

    let printed = serde_json::to_string(&request).expect("a request serialises");
    assert_eq!(
        Request::parse(&printed),
        Ok(request),
        "printed as {printed}"
    );
}
