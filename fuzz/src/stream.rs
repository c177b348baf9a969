//! Feeding a byte stream to a decoder the way a socket would: in chunks of arbitrary size,
//! including empty reads, then end of stream.

use bytes::BytesMut;
use rstmdb_protocol::WireError;
use tokio_util::codec::Decoder;

/// Splits `data` into chunks whose sizes cycle through `sizes` (each taken modulo 64, so 0 is an
/// empty read). With no sizes, or only zero sizes, the data is one chunk.
pub fn chunks<'a>(sizes: &[u8], mut data: &'a [u8]) -> Vec<&'a [u8]> {
    if sizes.iter().all(|size| size % 64 == 0) {
        return vec![data];
    }
    let mut out = Vec::new();
    for &size in sizes.iter().cycle() {
        if data.is_empty() {
            break;
        }
        let (head, rest) = data.split_at(usize::from(size % 64).min(data.len()));
        out.push(head);
        data = rest;
    }
    out
}

/// Everything a decoder produced from one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub items: Vec<String>,
    /// The fault that ended the stream (as `Debug` text), or `None` if it ended cleanly.
    pub fault: Option<String>,
    /// Bytes still buffered when the stream ended cleanly (0 after a fault: how much a fault
    /// leaves buffered depends on the chunking, and the connection is closed anyway).
    pub left_over: usize,
}

/// Decodes `chunks` as one stream and then end of stream, as `tokio_util`'s `FramedRead` does:
/// after each chunk, `decode` until it needs more; at the end, `decode_eof` until it is done.
/// `after_item` runs after every item (a server switches wire mode after a HELLO there).
pub fn decode_stream<D>(
    codec: &mut D,
    chunks: &[&[u8]],
    mut after_item: impl FnMut(&mut D, &str),
) -> Decoded
where
    D: Decoder<Item = String, Error = WireError>,
{
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut fault = None;
    'stream: for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(item)) => {
                    after_item(codec, &item);
                    items.push(item);
                }
                Ok(None) => break,
                Err(error) => {
                    fault = Some(format!("{error:?}"));
                    break 'stream;
                }
            }
        }
    }
    while fault.is_none() {
        match codec.decode_eof(&mut buf) {
            Ok(Some(item)) => {
                after_item(codec, &item);
                items.push(item);
            }
            Ok(None) => break,
            Err(error) => fault = Some(format!("{error:?}")),
        }
    }
    let left_over = if fault.is_some() { 0 } else { buf.len() };
    Decoded {
        items,
        fault,
        left_over,
    }
}
