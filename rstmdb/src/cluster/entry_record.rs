//! A Raft entry in the WAL (`docs/cluster.md` section 2): one atomic unit of a header record,
//! kind [`ENTRY_KIND`], followed by the entry's data records, if it has any. Readers that are
//! not Raft skip kind 6.

use super::types::{CommandRecord, Entry, LogId, Membership, NodeId, RaftCommand};
use crate::wal::WalRecord;
use openraft::{CommittedLeaderId, EntryPayload};
use serde::{Deserialize, Serialize};

/// The record kind of an entry header, reserved by the engine's record codes.
pub use crate::engine::RAFT_ENTRY_KIND as ENTRY_KIND;

/// The payload size of a normal entry's header: every one is padded to it with spaces (JSON
/// allows trailing whitespace), so the leader's sequencer knows where the group's records
/// will land before Raft has given the entry its term and index (`docs/cluster.md` section 4).
/// The longest header, every number at its maximum, is 158 bytes.
pub const NORMAL_HEADER_BYTES: usize = 160;

/// Why records are not an entry.
#[derive(Debug, thiserror::Error)]
pub enum EntryRecordError {
    #[error("entry header at offset {offset} is not valid: {source}")]
    BadHeader {
        offset: u64,
        source: serde_json::Error,
    },
    #[error("record at offset {offset} has kind {kind} where {expected}")]
    UnexpectedKind {
        offset: u64,
        kind: u8,
        expected: &'static str,
    },
    #[error("data record at offset {offset} is not JSON text: {reason}")]
    BadPayload { offset: u64, reason: String },
    #[error("a command record has kind {kind}; data records are kinds 1 to 5")]
    CommandKind { kind: u8 },
    #[error("entry {index} has {count} records, more than a unit can hold")]
    TooManyRecords { index: u64, count: usize },
    #[error("membership entry {index} carries no membership")]
    MissingMembership { index: u64 },
    #[error("entry {index} cannot be encoded: {source}")]
    Encode {
        index: u64,
        source: serde_json::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PayloadKind {
    Normal,
    Blank,
    Membership,
}

/// The header record's payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryHeader {
    term: u64,
    leader: NodeId,
    index: u64,
    payload: PayloadKind,
    /// How many data records follow in the unit.
    records: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    membership: Option<Membership>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin: Option<u64>,
}

impl EntryHeader {
    pub fn log_id(&self) -> LogId {
        LogId::new(CommittedLeaderId::new(self.term, self.leader), self.index)
    }

    /// The origin of a normal entry's group.
    pub fn origin(&self) -> Option<u64> {
        self.origin
    }

    /// The membership a membership entry carries.
    pub fn membership(&self) -> Option<&Membership> {
        self.membership.as_ref()
    }

    /// Data records that follow the header in its unit.
    pub fn data_records(&self) -> u32 {
        self.records
    }

    pub fn decode(offset: u64, payload: &[u8]) -> Result<Self, EntryRecordError> {
        serde_json::from_slice(payload)
            .map_err(|source| EntryRecordError::BadHeader { offset, source })
    }

    /// The entry, given its data records as read back from the WAL, in order.
    pub fn into_entry(
        self,
        data: impl IntoIterator<Item = WalRecord>,
    ) -> Result<Entry, EntryRecordError> {
        let log_id = self.log_id();
        let payload = match (self.payload, self.membership) {
            (PayloadKind::Blank, _) => EntryPayload::Blank,
            (PayloadKind::Membership, Some(membership)) => EntryPayload::Membership(membership),
            (PayloadKind::Membership, None) => {
                return Err(EntryRecordError::MissingMembership {
                    index: log_id.index,
                });
            }
            (PayloadKind::Normal, _) => {
                let mut records = Vec::with_capacity(self.records as usize);
                for WalRecord {
                    kind,
                    timestamp_ms,
                    payload: bytes,
                    offset,
                    ..
                } in data
                {
                    if kind == ENTRY_KIND {
                        return Err(EntryRecordError::UnexpectedKind {
                            offset,
                            kind,
                            expected: "a data record of the entry was expected",
                        });
                    }
                    let text =
                        String::from_utf8(bytes).map_err(|e| EntryRecordError::BadPayload {
                            offset,
                            reason: e.to_string(),
                        })?;
                    let payload = serde_json::value::RawValue::from_string(text).map_err(|e| {
                        EntryRecordError::BadPayload {
                            offset,
                            reason: e.to_string(),
                        }
                    })?;
                    records.push(CommandRecord {
                        kind,
                        timestamp_ms,
                        payload,
                    });
                }
                EntryPayload::Normal(RaftCommand {
                    origin: self.origin.unwrap_or_default(),
                    records,
                })
            }
        };
        Ok(Entry { log_id, payload })
    }
}

/// An entry encoded as the records of its unit: the header first.
#[derive(Debug)]
pub struct EncodedEntry {
    pub log_id: LogId,
    pub header: Vec<u8>,
    /// The header record's timestamp: the first data record's, or 0.
    pub timestamp_ms: i64,
}

/// Encodes `entry`'s header; its data records are the command's, written as they are.
pub fn encode_header(entry: &Entry) -> Result<EncodedEntry, EntryRecordError> {
    let log_id = entry.log_id;
    let (payload, records, membership, origin, timestamp_ms) = match &entry.payload {
        EntryPayload::Blank => (PayloadKind::Blank, 0, None, None, 0),
        EntryPayload::Membership(m) => (PayloadKind::Membership, 0, Some(m.clone()), None, 0),
        EntryPayload::Normal(command) => {
            for record in &command.records {
                if record.kind == 0 || record.kind == ENTRY_KIND {
                    return Err(EntryRecordError::CommandKind { kind: record.kind });
                }
            }
            let count = u32::try_from(command.records.len())
                .ok()
                .filter(|n| *n < u32::MAX);
            let Some(count) = count else {
                return Err(EntryRecordError::TooManyRecords {
                    index: log_id.index,
                    count: command.records.len(),
                });
            };
            let timestamp_ms = command.records.first().map_or(0, |r| r.timestamp_ms);
            (
                PayloadKind::Normal,
                count,
                None,
                Some(command.origin),
                timestamp_ms,
            )
        }
    };
    let header = EntryHeader {
        term: log_id.leader_id.term,
        leader: log_id.leader_id.node_id,
        index: log_id.index,
        payload,
        records,
        membership,
        origin,
    };
    let mut header = serde_json::to_vec(&header)
        .map_err(|source| EntryRecordError::BadHeader { offset: 0, source })?;
    if payload == PayloadKind::Normal {
        assert!(
            header.len() <= NORMAL_HEADER_BYTES,
            "a normal entry's header is {} bytes",
            header.len()
        );
        header.resize(NORMAL_HEADER_BYTES, b' ');
    }
    Ok(EncodedEntry {
        log_id,
        header,
        timestamp_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data record read back at `offset`.
    fn data(payload: &[u8], offset: u64) -> WalRecord {
        WalRecord {
            offset,
            sequence: 1,
            kind: 2,
            timestamp_ms: 0,
            unit: None,
            payload: payload.to_vec(),
        }
    }

    fn header(json: &str) -> Result<EntryHeader, EntryRecordError> {
        EntryHeader::decode(4096, json.as_bytes())
    }

    #[test]
    fn a_header_with_an_unknown_field_or_a_missing_one_is_refused_with_its_offset() {
        for bad in [
            r#"{"term":1,"leader":1,"index":0,"payload":"blank","records":0,"extra":1}"#,
            r#"{"term":1,"leader":1,"payload":"blank","records":0}"#,
            r#"{"term":1,"leader":1,"index":0,"payload":"other","records":0}"#,
        ] {
            let err = header(bad).expect_err(bad);
            assert!(err.to_string().contains("offset 4096"), "{err}");
        }
    }

    #[test]
    fn a_membership_header_without_its_membership_is_refused() {
        let membership =
            header(r#"{"term":2,"leader":1,"index":9,"payload":"membership","records":0}"#)
                .expect("header");
        let err = membership.into_entry([]).expect_err("no membership");
        assert!(
            matches!(err, EntryRecordError::MissingMembership { index: 9 }),
            "{err}"
        );
    }

    #[test]
    fn a_data_record_that_is_not_json_text_is_refused_with_its_offset() {
        let normal =
            header(r#"{"term":2,"leader":1,"index":9,"payload":"normal","records":1,"origin":5}"#)
                .expect("header");
        let err = normal
            .clone()
            .into_entry([data(b"{not json", 8192)])
            .expect_err("not JSON");
        assert!(err.to_string().contains("offset 8192"), "{err}");
        let err = normal
            .into_entry([data(&[0xff, 0xfe], 8192)])
            .expect_err("not UTF-8");
        assert!(err.to_string().contains("offset 8192"), "{err}");
    }

    #[test]
    fn every_normal_header_has_the_same_size_and_decodes() {
        for (term, index, count, origin) in [(0, 0, 0, 0), (u64::MAX, u64::MAX, 1, u64::MAX)] {
            let entry = Entry {
                log_id: LogId::new(CommittedLeaderId::new(term, u64::MAX), index),
                payload: EntryPayload::Normal(RaftCommand {
                    origin,
                    records: (0..count)
                        .map(|_| CommandRecord {
                            kind: 2,
                            timestamp_ms: 0,
                            payload: serde_json::value::RawValue::from_string("{}".to_owned())
                                .expect("json"),
                        })
                        .collect(),
                }),
            };
            let encoded = encode_header(&entry).expect("encode");
            assert_eq!(encoded.header.len(), NORMAL_HEADER_BYTES);
            let decoded = EntryHeader::decode(0, &encoded.header).expect("decode");
            assert_eq!(decoded.log_id(), entry.log_id);
            assert_eq!(decoded.origin(), Some(origin));
        }
    }

    #[test]
    fn a_command_record_of_the_header_kind_is_not_encoded() {
        let entry = Entry {
            log_id: LogId::default(),
            payload: EntryPayload::Normal(RaftCommand {
                origin: 1,
                records: vec![CommandRecord {
                    kind: ENTRY_KIND,
                    timestamp_ms: 0,
                    payload: serde_json::value::RawValue::from_string("1".to_owned())
                        .expect("json"),
                }],
            }),
        };
        let err = encode_header(&entry).expect_err("kind 6");
        assert!(
            matches!(err, EntryRecordError::CommandKind { kind: 6 }),
            "{err}"
        );
    }
}
