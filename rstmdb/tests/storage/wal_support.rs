//! What the WAL fault tests of this binary share: a record holding a payload, and recovery that
//! returns the payloads it replayed.

use rstmdb::wal::fault::FaultStorage;
use rstmdb::wal::{NewRecord, Storage, Wal, WalConfig, WalError};
use std::sync::Arc;

pub fn rec(payload: &[u8]) -> NewRecord<'_> {
    NewRecord {
        kind: 3,
        timestamp_ms: 1,
        payload,
    }
}

/// Opens the WAL on `storage` (recovery included) and returns it with every payload replayed,
/// in order.
pub fn recover_payloads(
    storage: &FaultStorage,
    config: WalConfig,
) -> Result<(Wal, Vec<Vec<u8>>), WalError> {
    let mut seen = Vec::new();
    let storage: Arc<dyn Storage> = Arc::new(storage.clone());
    let (wal, _) = Wal::open(storage, config, None, &mut |record| {
        seen.push(record.payload.to_vec());
        Ok(())
    })?;
    Ok((wal, seen))
}
