//! Arbitrary bytes, in arbitrary chunkings, through `JsonlCodec`.
//!
//! Input: `[limit][n][n chunk sizes][stream bytes]`. Checks: no panic; every chunking gives the
//! same lines and fault as one piece; a line is never blank, never holds `\n`, never exceeds the
//! limit; end of stream leaves nothing buffered without a fault; each line survives
//! encode + decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rstmdb_protocol::JsonlCodec;
use rstmdb_fuzz::Input;
use rstmdb_fuzz::stream::{chunks, decode_stream};
use tokio_util::codec::{Decoder, Encoder};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let max_frame_bytes = usize::from(input.u16() % 4096);
    let sizes_len = usize::from(input.byte() % 8);
    let sizes = input.take(sizes_len);
    let stream = input.rest();

    let lines =
        |pieces: &[&[u8]]| decode_stream(&mut JsonlCodec::new(max_frame_bytes), pieces, |_, _| {});
    let whole = lines(&[stream]);
    assert_eq!(
        lines(&chunks(sizes, stream)),
        whole,
        "chunking changed the lines read"
    );
    if whole.fault.is_none() {
        assert_eq!(
            whole.left_over, 0,
            "end of stream left bytes without a fault"
        );
    }
    for line in &whole.items {
        assert!(line.len() <= max_frame_bytes, "line over the limit");
        assert!(!line.contains('\n'), "line holds a newline");
        assert!(
            !line.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r')),
            "blank line delivered"
        );
        let mut codec = JsonlCodec::new(max_frame_bytes);
        let mut encoded = bytes::BytesMut::new();
        codec
            .encode(line.as_str(), &mut encoded)
            .expect("a decoded line encodes");
        let again = codec.decode(&mut encoded).expect("own line decodes");
        // A line ending in `\r` loses it on the way back (the decoder strips one `\r`).
        let expected = if line.ends_with('\r') {
            &line[..line.len() - 1]
        } else {
            line.as_str()
        };
        if !expected.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            assert_eq!(again.as_deref(), Some(expected));
        }
    }
});
