//! The simple model for `engine_model.rs`: HashMaps of serde_json Values that follow the spec
//! text directly, and a fixed set of machines whose guards the model evaluates by hand.

use rstmdb::engine::{Command, EngineConfig, InstanceIdChoice};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

// ---------------------------------------------------------------------------------------------
// The machines: a small fixed set whose guards the model evaluates by hand.

#[derive(Debug, Clone, Copy)]
pub enum Guard {
    CtxFlag,
    NotCtxFlag,
    PayloadNAbove5,
    PayloadNAtLeast80,
}

impl Guard {
    fn text(self) -> &'static str {
        match self {
            Guard::CtxFlag => "ctx.flag",
            Guard::NotCtxFlag => "!ctx.flag",
            Guard::PayloadNAbove5 => "payload.n > 5",
            Guard::PayloadNAtLeast80 => "payload.n >= 80",
        }
    }

    /// §7.7, for just these guards.
    fn eval(self, ctx: &Map<String, Value>, payload: Option<&Map<String, Value>>) -> bool {
        let truthy = |v: Option<&Value>| match v {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Number(n)) => n.as_f64() != Some(0.0),
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => !o.is_empty(),
            Some(Value::Bool(true)) => true,
        };
        let n = payload.and_then(|p| p.get("n")).and_then(Value::as_f64);
        match self {
            Guard::CtxFlag => truthy(ctx.get("flag")),
            Guard::NotCtxFlag => !truthy(ctx.get("flag")),
            Guard::PayloadNAbove5 => n.is_some_and(|n| n > 5.0),
            Guard::PayloadNAtLeast80 => n.is_some_and(|n| n >= 80.0),
        }
    }
}

pub struct Def {
    pub states: &'static [&'static str],
    pub transitions: Vec<(
        &'static [&'static str],
        &'static str,
        &'static str,
        Option<Guard>,
    )>,
}

pub fn defs() -> Vec<Def> {
    use Guard::*;
    vec![
        Def {
            states: &["a", "b", "c"],
            transitions: vec![
                (&["a"], "E1", "b", None),
                (&["b"], "E2", "c", Some(CtxFlag)),
                (&["c"], "E1", "a", None),
            ],
        },
        Def {
            states: &["a", "b", "c"],
            transitions: vec![
                (&["a"], "E1", "c", Some(PayloadNAtLeast80)),
                (&["a"], "E1", "b", Some(PayloadNAbove5)),
                (&["a"], "E1", "a", None),
                (&["b", "c"], "E2", "a", Some(NotCtxFlag)),
                (&["c"], "E3", "b", None),
            ],
        },
        Def {
            states: &["a", "b"],
            transitions: vec![
                (&["a"], "E3", "b", Some(PayloadNAbove5)),
                (&["a"], "E3", "a", Some(CtxFlag)),
                (&["b"], "E3", "a", Some(CtxFlag)),
                (&["b"], "E1", "b", None),
            ],
        },
    ]
}

pub fn def_json(def: &Def) -> Value {
    let transitions: Vec<Value> = def
        .transitions
        .iter()
        .map(|(from, event, to, guard)| {
            let mut t = json!({"from": from, "event": event, "to": to});
            if let Some(g) = guard {
                t["guard"] = json!(g.text());
            }
            t
        })
        .collect();
    json!({"states": def.states, "initial": def.states[0], "transitions": transitions})
}

// ---------------------------------------------------------------------------------------------
// The model.

#[derive(Debug, Clone)]
pub struct ModelInstance {
    pub machine: String,
    pub version: u32,
    pub state: String,
    pub ctx: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_wal_offset: u64,
    pub last_event_id: Option<String>,
    pub deleted: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub timestamp: i64,
    pub offset: u64,
    /// The compared fields, as JSON.
    pub request: Value,
    /// The original result (applied:true), for replays.
    pub result: Value,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub config: EngineConfig,
    pub machines: HashMap<(String, u32), usize>,
    pub instances: HashMap<String, ModelInstance>,
    /// (scope, key): scope is "" for CREATE and the instance id otherwise.
    pub keys: HashMap<(String, String), KeyEntry>,
    pub last_ts: i64,
}

pub type Outcome = Result<Value, Value>;

fn error(code: &str, details: Value) -> Outcome {
    Err(json!({"code": code, "details": details}))
}

impl Model {
    pub fn new(config: EngineConfig) -> Model {
        Model {
            config,
            machines: HashMap::new(),
            instances: HashMap::new(),
            keys: HashMap::new(),
            last_ts: 0,
        }
    }

    fn known_key(&self, scope: &str, key: &Option<String>, now: i64) -> Option<&KeyEntry> {
        let entry = self.keys.get(&(scope.to_owned(), key.clone()?))?;
        (now < entry.timestamp + self.config.idempotency_ttl_ms).then_some(entry)
    }

    /// A write happened at `now` with `offset`: expire, then record the key, then evict.
    fn record(&mut self, now: i64, key: Option<(String, String)>, entry: Option<KeyEntry>) {
        self.last_ts = now;
        let ttl = self.config.idempotency_ttl_ms;
        self.keys.retain(|_, e| now < e.timestamp + ttl);
        if let (Some(key), Some(entry)) = (key, entry) {
            self.keys.insert(key, entry);
        }
        while self.keys.len() > self.config.idempotency_max_entries {
            let oldest = self
                .keys
                .iter()
                .min_by_key(|(_, e)| e.offset)
                .map(|(k, _)| k.clone())
                .unwrap();
            self.keys.remove(&oldest);
        }
    }

    pub fn run(
        &mut self,
        cmd: &Command,
        now: i64,
        offset: u64,
        defs: &[Def],
        checksums: &[String],
    ) -> (Outcome, bool) {
        let now = now.max(self.last_ts);
        match cmd {
            Command::PutMachine(p) => {
                let index = defs
                    .iter()
                    .position(|d| def_json(d) == p.definition)
                    .unwrap();
                let id = (p.machine.clone(), p.version);
                if let Some(&existing) = self.machines.get(&id) {
                    if existing == index {
                        return (
                            Ok(
                                json!({"machine":p.machine,"version":p.version,"stored_checksum":checksums[index],"created":false}),
                            ),
                            false,
                        );
                    }
                    return (
                        error(
                            "MACHINE_VERSION_EXISTS",
                            json!({"reason":"version_exists","machine":p.machine,"version":p.version,"existing_checksum":checksums[existing],"new_checksum":checksums[index]}),
                        ),
                        false,
                    );
                }
                let limit = self.config.max_machine_versions;
                let count = self
                    .machines
                    .keys()
                    .filter(|(n, _)| *n == p.machine)
                    .count();
                if limit > 0 && count >= limit as usize {
                    return (
                        error(
                            "MACHINE_VERSION_LIMIT_EXCEEDED",
                            json!({"reason":"version_limit","machine":p.machine,"limit":limit}),
                        ),
                        false,
                    );
                }
                self.machines.insert(id, index);
                self.record(now, None, None);
                (
                    Ok(
                        json!({"machine":p.machine,"version":p.version,"stored_checksum":checksums[index],"created":true}),
                    ),
                    true,
                )
            }
            Command::CreateInstance(c) => {
                let ctx = c.initial_ctx.clone().unwrap_or_default();
                if let Some(entry) = self.known_key("", &c.idempotency_key, now) {
                    let same = entry.request["machine"] == json!(c.machine)
                        && entry.request["version"] == json!(c.version)
                        && entry.request["ctx"] == Value::Object(ctx.clone())
                        && match &c.instance_id {
                            InstanceIdChoice::Given(id) => entry.request["id"] == json!(id),
                            InstanceIdChoice::Generated(_) => true,
                        };
                    return (
                        replay_or_conflict(entry, same, c.idempotency_key.as_deref()),
                        false,
                    );
                }
                let id = c.instance_id.as_str();
                match self.instances.get(id) {
                    Some(i) if i.deleted.is_none() || !self.config.allow_instance_recreate => {
                        return (
                            error(
                                "INSTANCE_EXISTS",
                                json!({"reason":"instance_exists","instance_id":id}),
                            ),
                            false,
                        );
                    }
                    _ => {}
                }
                let Some(&index) = self.machines.get(&(c.machine.clone(), c.version)) else {
                    return (
                        error(
                            "MACHINE_NOT_FOUND",
                            json!({"reason":"machine_not_found","machine":c.machine,"version":c.version}),
                        ),
                        false,
                    );
                };
                let initial = defs[index].states[0];
                self.instances.insert(
                    id.to_owned(),
                    ModelInstance {
                        machine: c.machine.clone(),
                        version: c.version,
                        state: initial.to_owned(),
                        ctx: ctx.clone(),
                        created_at: now,
                        updated_at: now,
                        last_wal_offset: offset,
                        last_event_id: None,
                        deleted: None,
                    },
                );
                let result =
                    json!({"instance_id":id,"state":initial,"wal_offset":offset,"applied":true});
                let key = c.idempotency_key.clone().map(|k| (String::new(), k));
                let entry = KeyEntry {
                    timestamp: now,
                    offset,
                    request: json!({"machine":c.machine,"version":c.version,"ctx":ctx,"id":id}),
                    result: result.clone(),
                };
                self.record(now, key, Some(entry));
                (Ok(result), true)
            }
            Command::ApplyEvent(a) => {
                let request = json!({"op":"apply","event":a.event,"payload":a.payload,"expected_state":a.expected_state,"expected_wal_offset":a.expected_wal_offset,"event_id":a.event_id});
                if let Some(entry) = self.known_key(&a.instance_id, &a.idempotency_key, now) {
                    let same = entry.request == request;
                    return (
                        replay_or_conflict(entry, same, a.idempotency_key.as_deref()),
                        false,
                    );
                }
                let Some(instance) = self
                    .instances
                    .get(&a.instance_id)
                    .filter(|i| i.deleted.is_none())
                else {
                    return (
                        error(
                            "INSTANCE_NOT_FOUND",
                            json!({"reason":"instance_not_found","instance_id":a.instance_id}),
                        ),
                        false,
                    );
                };
                if let Some(expected) = &a.expected_state
                    && *expected != instance.state
                {
                    return (
                        error(
                            "CONFLICT",
                            json!({"reason":"state_mismatch","expected":expected,"actual":instance.state}),
                        ),
                        false,
                    );
                }
                if let Some(expected) = a.expected_wal_offset
                    && expected != instance.last_wal_offset
                {
                    return (
                        error(
                            "CONFLICT",
                            json!({"reason":"wal_offset_mismatch","expected":expected,"actual":instance.last_wal_offset}),
                        ),
                        false,
                    );
                }
                let def = &defs[self.machines[&(instance.machine.clone(), instance.version)]];
                let candidates: Vec<_> = def
                    .transitions
                    .iter()
                    .filter(|(from, event, _, _)| {
                        *event == a.event && from.contains(&instance.state.as_str())
                    })
                    .collect();
                if candidates.is_empty() {
                    return (
                        error(
                            "INVALID_TRANSITION",
                            json!({"reason":"no_transition","state":instance.state,"event":a.event}),
                        ),
                        false,
                    );
                }
                let mut tried = Vec::new();
                let mut to = None;
                for (_, _, target, guard) in candidates {
                    match guard {
                        None => {
                            to = Some(*target);
                            break;
                        }
                        Some(g) if g.eval(&instance.ctx, a.payload.as_ref()) => {
                            to = Some(*target);
                            break;
                        }
                        Some(g) => tried.push(g.text()),
                    }
                }
                let Some(to) = to else {
                    return (
                        error(
                            "GUARD_FAILED",
                            json!({"reason":"guard_failed","state":instance.state,"event":a.event,"guards":tried}),
                        ),
                        false,
                    );
                };
                let mut ctx = instance.ctx.clone();
                for (k, v) in a.payload.clone().unwrap_or_default() {
                    ctx.insert(k, v);
                }
                let mut result = json!({"from_state":instance.state,"to_state":to,"ctx":ctx,"wal_offset":offset,"applied":true});
                if let Some(e) = &a.event_id {
                    result["event_id"] = json!(e);
                }
                let instance = self.instances.get_mut(&a.instance_id).unwrap();
                instance.state = to.to_owned();
                instance.ctx = ctx;
                instance.updated_at = now;
                instance.last_wal_offset = offset;
                instance.last_event_id = a.event_id.clone();
                let key = a
                    .idempotency_key
                    .clone()
                    .map(|k| (a.instance_id.clone(), k));
                let entry = KeyEntry {
                    timestamp: now,
                    offset,
                    request,
                    result: result.clone(),
                };
                self.record(now, key, Some(entry));
                (Ok(result), true)
            }
            Command::DeleteInstance(d) => {
                if let Some(entry) = self.known_key(&d.instance_id, &d.idempotency_key, now) {
                    let same = entry.request == json!({"op":"delete"});
                    return (
                        replay_or_conflict(entry, same, d.idempotency_key.as_deref()),
                        false,
                    );
                }
                match self.instances.get_mut(&d.instance_id) {
                    Some(i) if i.deleted.is_none() => {
                        i.deleted = Some(offset);
                        i.updated_at = now;
                        let result = json!({"instance_id":d.instance_id,"deleted":true,"wal_offset":offset,"applied":true});
                        let key = d
                            .idempotency_key
                            .clone()
                            .map(|k| (d.instance_id.clone(), k));
                        let entry = KeyEntry {
                            timestamp: now,
                            offset,
                            request: json!({"op":"delete"}),
                            result: result.clone(),
                        };
                        self.record(now, key, Some(entry));
                        (Ok(result), true)
                    }
                    Some(i) => (
                        Ok(
                            json!({"instance_id":d.instance_id,"deleted":true,"wal_offset":i.deleted,"applied":false}),
                        ),
                        false,
                    ),
                    None => (
                        error(
                            "INSTANCE_NOT_FOUND",
                            json!({"reason":"instance_not_found","instance_id":d.instance_id}),
                        ),
                        false,
                    ),
                }
            }
            Command::FlushAll => {
                if !self.config.allow_flush_all {
                    return (
                        error("BAD_REQUEST", json!({"reason":"flush_all_disabled"})),
                        false,
                    );
                }
                let live = self
                    .instances
                    .values()
                    .filter(|i| i.deleted.is_none())
                    .count();
                let result = json!({"flushed":true,"instances_removed":live,"machines_removed":self.machines.len()});
                *self = Model {
                    last_ts: now,
                    ..Model::new(self.config.clone())
                };
                (Ok(result), true)
            }
        }
    }

    /// A checkpoint drops deleted instances (§6.4); tombstones keep the id when re-creation is
    /// disabled, which the model shows as a deleted instance whose state nobody can read.
    pub fn checkpoint(&mut self) {
        if self.config.allow_instance_recreate {
            self.instances.retain(|_, i| i.deleted.is_none());
        }
    }

    pub fn view(&self, id: &str) -> Option<Value> {
        let i = self.instances.get(id).filter(|i| i.deleted.is_none())?;
        let mut v = json!({"instance_id":id,"machine":i.machine,"version":i.version,"state":i.state,
            "ctx":i.ctx,"last_wal_offset":i.last_wal_offset,"created_at":i.created_at,"updated_at":i.updated_at});
        if let Some(e) = &i.last_event_id {
            v["last_event_id"] = json!(e);
        }
        Some(v)
    }
}

fn replay_or_conflict(entry: &KeyEntry, same: bool, key: Option<&str>) -> Outcome {
    if same {
        let mut result = entry.result.clone();
        result["applied"] = json!(false);
        Ok(result)
    } else {
        error(
            "CONFLICT",
            json!({"reason":"idempotency_key_reused","idempotency_key":key,"original_wal_offset":entry.offset}),
        )
    }
}
