//! Typed params (§4.7–§4.15) into the engine's commands and the database's BATCH items.

use crate::database::BatchItem;
use crate::engine::{
    ApplyEvent, Command, CreateInstance, DeleteInstance, InstanceIdChoice, PutMachine,
};
use rstmdb_protocol::params::{
    ApplyEventParams, CreateInstanceParams, DeleteInstanceParams, OpParams, PutMachineParams,
};
use rstmdb_protocol::{Op, RcpError};

pub(super) fn put_machine(p: PutMachineParams) -> Command {
    Command::PutMachine(PutMachine {
        machine: p.machine,
        version: p.version,
        definition: p.definition,
    })
}

pub(super) fn create_instance(p: CreateInstanceParams) -> Command {
    let instance_id = match p.instance_id {
        Some(id) => InstanceIdChoice::Given(id),
        // Ids the server generates are UUID v4, lowercase and hyphenated (spec §6.5).
        None => InstanceIdChoice::Generated(uuid::Uuid::new_v4().to_string()),
    };
    Command::CreateInstance(CreateInstance {
        machine: p.machine,
        version: p.version,
        instance_id,
        initial_ctx: Some(p.initial_ctx),
        idempotency_key: p.idempotency_key,
    })
}

pub(super) fn apply_event(p: ApplyEventParams) -> Command {
    Command::ApplyEvent(ApplyEvent {
        instance_id: p.instance_id,
        event: p.event,
        payload: p.payload,
        expected_state: p.expected_state,
        expected_wal_offset: p.expected_wal_offset,
        event_id: p.event_id,
        idempotency_key: p.idempotency_key,
    })
}

pub(super) fn delete_instance(p: DeleteInstanceParams) -> Command {
    Command::DeleteInstance(DeleteInstance {
        instance_id: p.instance_id,
        idempotency_key: p.idempotency_key,
    })
}

/// A BATCH sub-op (spec §4.15: the six allowed ops; the protocol crate already refused others).
pub(super) fn batch_item(op: Op, params: OpParams) -> BatchItem {
    let write = |command| BatchItem::Write { op, command };
    match params {
        OpParams::PutMachine(p) => write(put_machine(p)),
        OpParams::CreateInstance(p) => write(create_instance(p)),
        OpParams::ApplyEvent(p) => write(apply_event(p)),
        OpParams::DeleteInstance(p) => write(delete_instance(p)),
        OpParams::GetInstance(p) => BatchItem::GetInstance {
            instance_id: p.instance_id,
        },
        OpParams::GetMachine(p) => BatchItem::GetMachine {
            machine: p.machine,
            version: p.version,
        },
        _ => BatchItem::Refused {
            op,
            error: RcpError::batch_invalid(format!("{op} is not allowed in a batch")),
        },
    }
}
