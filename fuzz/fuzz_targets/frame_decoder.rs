//! Arbitrary bytes, in arbitrary chunkings, through `FrameCodec` and the server's `WireCodec`.
//!
//! Input: `[limit][n][n chunk sizes][stream bytes]`. Checks: no panic; every chunking gives the
//! same items and the same fault as reading the stream in one piece; no item is over the limit;
//! end of stream leaves nothing buffered without a fault; each item survives encode + decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rstmdb_protocol::{FrameCodec, WireCodec, WireMode};
use rstmdb_fuzz::Input;
use rstmdb_fuzz::stream::{Decoded, chunks, decode_stream};
use tokio_util::codec::{Decoder, Encoder};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    // Small limits make `too_large` reachable; 0 is a legal (if useless) configuration.
    let max_frame_bytes = usize::from(input.u16() % 4096);
    let sizes_len = usize::from(input.byte() % 8);
    let sizes = input.take(sizes_len);
    let stream = input.rest();
    let pieces = chunks(sizes, stream);

    let frames =
        |pieces: &[&[u8]]| decode_stream(&mut FrameCodec::new(max_frame_bytes), pieces, |_, _| {});
    let whole = frames(&[stream]);
    assert_eq!(
        frames(&pieces),
        whole,
        "chunking changed what FrameCodec read"
    );
    check_items(&whole, max_frame_bytes);
    for item in &whole.items {
        let mut codec = FrameCodec::new(max_frame_bytes);
        let mut encoded = bytes::BytesMut::new();
        codec
            .encode(item.as_str(), &mut encoded)
            .expect("an item within the limit encodes");
        assert_eq!(
            codec
                .decode(&mut encoded)
                .expect("own frame decodes")
                .as_deref(),
            Some(item.as_str())
        );
    }

    // The server side: mode detected from the first byte, switched the way a HELLO would.
    let wire = |pieces: &[&[u8]]| {
        decode_stream(
            &mut WireCodec::detect(max_frame_bytes),
            pieces,
            switch_like_hello,
        )
    };
    let whole = wire(&[stream]);
    assert_eq!(wire(&pieces), whole, "chunking changed what WireCodec read");
    check_items(&whole, max_frame_bytes);
});

/// An item naming a wire mode switches to it, as the server does after answering HELLO.
fn switch_like_hello(codec: &mut WireCodec, item: &str) {
    if item.contains("\"jsonl\"") {
        codec.set_mode(WireMode::Jsonl);
    } else if item.contains("\"binary_json\"") {
        codec.set_mode(WireMode::BinaryJson);
    }
}

fn check_items(decoded: &Decoded, max_frame_bytes: usize) {
    for item in &decoded.items {
        assert!(item.len() <= max_frame_bytes, "item over the limit");
    }
    if decoded.fault.is_none() {
        assert_eq!(
            decoded.left_over, 0,
            "end of stream left bytes without a fault"
        );
    }
}
