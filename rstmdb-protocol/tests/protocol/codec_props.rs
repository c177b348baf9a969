//! Property tests: the decoders never panic on arbitrary bytes split arbitrarily, and what the
//! encoders write decodes back to the same payloads whatever the read boundaries.

use bytes::BytesMut;
use proptest::prelude::*;
use rstmdb_protocol::{FrameCodec, JsonlCodec, Request, WireCodec, WireError, WireMode};
use tokio_util::codec::{Decoder, Encoder};

/// Feeds `bytes` to `codec` in chunks of the given sizes (cycled), decoding after each chunk
/// the way `Framed` does, then signals end of stream. Stops at the first error.
fn feed<D>(codec: &mut D, bytes: &[u8], chunk_sizes: &[usize]) -> (Vec<String>, Option<WireError>)
where
    D: Decoder<Item = String, Error = WireError>,
{
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut rest = bytes;
    let mut sizes = chunk_sizes.iter().cycle();
    while !rest.is_empty() {
        let size = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        buf.extend_from_slice(&rest[..size]);
        rest = &rest[size..];
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(error) => return (items, Some(error)),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return (items, None),
            Err(error) => return (items, Some(error)),
        }
    }
}

fn chunkings() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..80, 1..8)
}

/// Payloads as servers and clients send them: compact JSON, possibly non-ASCII.
fn json_payloads() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        any::<String>().prop_map(|text| serde_json::json!({ "t": text }).to_string()),
        0..6,
    )
}

fn encode_all<E: Encoder<String, Error = WireError>>(
    codec: &mut E,
    payloads: &[String],
) -> Vec<u8> {
    let mut out = BytesMut::new();
    for payload in payloads {
        codec
            .encode(payload.clone(), &mut out)
            .expect("small payloads encode");
    }
    out.to_vec()
}

/// A valid byte stream with a few bytes overwritten, to reach the deeper decode steps.
fn corrupted(stream: Vec<u8>, edits: Vec<(usize, u8)>) -> Vec<u8> {
    let mut stream = stream;
    if !stream.is_empty() {
        for (at, byte) in edits {
            let at = at % stream.len();
            stream[at] = byte;
        }
    }
    stream
}

proptest! {
    // A failure's seed goes beside this file, as `codec_props.proptest-regressions`; proptest's
    // default would put it in a `proptest-regressions/` directory above the binary's `main.rs`.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn frame_decoder_never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        chunks in chunkings(),
        limit in 0usize..200,
    ) {
        let _ = feed(&mut FrameCodec::new(limit), &bytes, &chunks);
    }

    #[test]
    fn frame_decoder_never_panics_on_corrupted_frames(
        payloads in json_payloads(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        chunks in chunkings(),
    ) {
        let stream = corrupted(encode_all(&mut FrameCodec::default(), &payloads), edits);
        let _ = feed(&mut FrameCodec::new(1 << 16), &stream, &chunks);
    }

    #[test]
    fn jsonl_decoder_never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(prop_oneof![any::<u8>(), Just(b'\n'), Just(b'\r')], 0..300),
        chunks in chunkings(),
        limit in 0usize..100,
    ) {
        let (items, _) = feed(&mut JsonlCodec::new(limit), &bytes, &chunks);
        for item in items {
            prop_assert!(item.len() <= limit);
            prop_assert!(!item.contains('\n'));
        }
    }

    #[test]
    fn wire_decoder_never_panics_in_either_detected_mode(
        first in prop_oneof![Just(b'{'), Just(b'R'), any::<u8>()],
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        chunks in chunkings(),
    ) {
        let mut stream = vec![first];
        stream.extend(bytes);
        let _ = feed(&mut WireCodec::detect(1 << 16), &stream, &chunks);
    }

    #[test]
    fn frames_round_trip_whatever_the_chunking(payloads in json_payloads(), chunks in chunkings()) {
        let stream = encode_all(&mut FrameCodec::default(), &payloads);
        let (items, error) = feed(&mut FrameCodec::default(), &stream, &chunks);
        prop_assert!(error.is_none(), "{error:?}");
        prop_assert_eq!(items, payloads);
    }

    #[test]
    fn arbitrary_text_payloads_round_trip_through_frames(
        payloads in prop::collection::vec(any::<String>(), 0..5),
        chunks in chunkings(),
    ) {
        let stream = encode_all(&mut FrameCodec::default(), &payloads);
        let (items, error) = feed(&mut FrameCodec::default(), &stream, &chunks);
        prop_assert!(error.is_none(), "{error:?}");
        prop_assert_eq!(items, payloads);
    }

    #[test]
    fn json_lines_round_trip_whatever_the_chunking(payloads in json_payloads(), chunks in chunkings()) {
        let stream = encode_all(&mut JsonlCodec::default(), &payloads);
        let (items, error) = feed(&mut JsonlCodec::default(), &stream, &chunks);
        prop_assert!(error.is_none(), "{error:?}");
        prop_assert_eq!(items, payloads);
    }

    #[test]
    fn wire_codec_round_trips_in_both_modes(
        payloads in json_payloads(),
        chunks in chunkings(),
        jsonl in any::<bool>(),
    ) {
        let mode = if jsonl { WireMode::Jsonl } else { WireMode::BinaryJson };
        let stream = encode_all(&mut WireCodec::new(mode, 1 << 20), &payloads);
        let mut server = WireCodec::detect(1 << 20);
        let (items, error) = feed(&mut server, &stream, &chunks);
        prop_assert!(error.is_none(), "{error:?}");
        prop_assert_eq!(items, payloads.clone());
        if !payloads.is_empty() {
            prop_assert_eq!(server.mode(), mode, "the first byte selects the mode");
        }
    }

    #[test]
    fn request_parsing_never_panics(text in any::<String>()) {
        let _ = Request::parse(&text);
    }
}
