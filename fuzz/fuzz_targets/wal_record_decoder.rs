//! Arbitrary bytes through the WAL record decoder (`wal::record::decode`).
//!
//! Input: `[flags][bytes]`; flag bit 0 recomputes the CRCs first (so mutations reach the
//! header rules behind them). Checks: no panic; the header decoder and the whole-record decoder
//! agree; a decoded record re-encodes to exactly the bytes it was read from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rstmdb::wal::record::{self, HEADER_LEN};
use rstmdb_fuzz::Input;
use rstmdb_fuzz::fixup::fix_wal_segment;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.byte();
    let mut bytes = input.rest().to_vec();
    if flags & 1 != 0 {
        fix_wal_segment(&mut bytes);
    }

    let header = record::decode_header(&bytes);
    match record::decode(&bytes) {
        Ok((decoded, payload)) => {
            assert_eq!(header, Ok(decoded), "header and record decoders disagree");
            assert_eq!(payload.len(), decoded.payload_len as usize);
            let mut encoded = Vec::new();
            record::encode_into(
                &mut encoded,
                decoded.kind,
                decoded.sequence,
                decoded.timestamp_ms,
                decoded.unit,
                decoded.unsynced_before,
                payload,
            );
            assert_eq!(encoded.len() as u64, decoded.record_len());
            assert_eq!(
                &bytes[..encoded.len()],
                &encoded[..],
                "re-encoding changed the record"
            );
        }
        Err(error) => {
            if let Err(header_error) = header {
                assert_eq!(error, header_error, "header fault reported differently");
            } else {
                assert!(
                    bytes.len() >= HEADER_LEN,
                    "a decoded header needs its bytes"
                );
            }
        }
    }
});
