//! Arbitrary text as a request payload: `Request::parse`, then `OpParams::parse` (and the
//! params of every BATCH entry).
//!
//! Checks: no panic; an error becomes an encodable response; a parsed request serialises and
//! parses back to itself; typed params turn back into an object that parses to the same params.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rstmdb_protocol::{OpParams, Request, ServerMessage, encode_response};

fuzz_target!(|data: &[u8]| {
    let payload = String::from_utf8_lossy(data);
    let request = match Request::parse(&payload) {
        Ok(request) => request,
        Err(error) => {
            let encoded = encode_response(&error.into_response());
            ServerMessage::parse(&encoded).expect("the client reads the server's error response");
            return;
        }
    };
    let text = serde_json::to_string(&request).expect("a request serialises");
    assert_eq!(
        Request::parse(&text).as_ref(),
        Ok(&request),
        "request round trip"
    );

    let params = match OpParams::parse(request.op, &request.params) {
        Ok(params) => params,
        Err(error) => {
            let encoded = encode_response(&rstmdb_protocol::Response::error(request.id, error));
            ServerMessage::parse(&encoded).expect("the client reads the server's error response");
            return;
        }
    };
    assert_eq!(params.op(), request.op);
    let object = params
        .to_object()
        .expect("parsed params turn back into an object");
    assert_eq!(
        OpParams::parse(request.op, &object).as_ref(),
        Ok(&params),
        "params round trip"
    );

    if let OpParams::Batch(batch) = &params {
        for entry in &batch.ops {
            // The server parses each entry when it runs; any outcome but a panic is fine.
            let _ = OpParams::parse(entry.op, &entry.params);
        }
    }
});
