//! Property test: random command sequences against the engine and a deliberately simple model
//! (HashMaps of serde_json Values that follow the spec text), comparing every result and error;
//! then replay (from the last checkpoint) must rebuild the same state, undoing the last k
//! commands must restore the earlier state, and a snapshot must round-trip.

mod engine_support;

use engine_support::{FIRST_OFFSET, Harness};
use proptest::prelude::*;
use rstmdb::dsl::definition::MachineDefinition;
use rstmdb::engine::{
    ApplyEvent, Command, CreateInstance, DeleteInstance, Engine, EngineConfig, Executed,
    InstanceIdChoice, ListInstancesQuery, PutMachine,
};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

// ---------------------------------------------------------------------------------------------
// The machines: a small fixed set whose guards the model evaluates by hand.

#[derive(Debug, Clone, Copy)]
enum Guard {
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

struct Def {
    states: &'static [&'static str],
    transitions: Vec<(
        &'static [&'static str],
        &'static str,
        &'static str,
        Option<Guard>,
    )>,
}

fn defs() -> Vec<Def> {
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

fn def_json(def: &Def) -> Value {
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
struct ModelInstance {
    machine: String,
    version: u32,
    state: String,
    ctx: Map<String, Value>,
    created_at: i64,
    updated_at: i64,
    last_wal_offset: u64,
    last_event_id: Option<String>,
    deleted: Option<u64>,
}

#[derive(Debug, Clone)]
struct KeyEntry {
    timestamp: i64,
    offset: u64,
    /// The compared fields, as JSON.
    request: Value,
    /// The original result (applied:true), for replays.
    result: Value,
}

#[derive(Debug, Clone)]
struct Model {
    config: EngineConfig,
    machines: HashMap<(String, u32), usize>,
    instances: HashMap<String, ModelInstance>,
    /// (scope, key): scope is "" for CREATE and the instance id otherwise.
    keys: HashMap<(String, String), KeyEntry>,
    last_ts: i64,
}

type Outcome = Result<Value, Value>;

fn error(code: &str, details: Value) -> Outcome {
    Err(json!({"code": code, "details": details}))
}

impl Model {
    fn new(config: EngineConfig) -> Model {
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

    fn run(
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
    fn checkpoint(&mut self) {
        if self.config.allow_instance_recreate {
            self.instances.retain(|_, i| i.deleted.is_none());
        }
    }

    fn view(&self, id: &str) -> Option<Value> {
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

// ---------------------------------------------------------------------------------------------
// Random operations.

#[derive(Debug, Clone)]
enum Op {
    Put {
        name: u8,
        version: u32,
        def: usize,
    },
    Create {
        id: u8,
        given: bool,
        name: u8,
        version: u32,
        ctx: Option<Map<String, Value>>,
        key: Option<u8>,
    },
    Apply {
        id: u8,
        event: u8,
        payload: Option<Map<String, Value>>,
        expected_state: Option<u8>,
        expected_offset: u8,
        event_id: Option<u8>,
        key: Option<u8>,
    },
    Delete {
        id: u8,
        key: Option<u8>,
    },
    Flush,
    Checkpoint,
    Clock(i64),
    /// Sends an earlier command again, verbatim: idempotent replays and key conflicts.
    Repeat(prop::sample::Index),
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (0u64..100).prop_map(Value::from),
        (0u32..100).prop_map(|n| Value::from(f64::from(n) + 0.5)),
        (0u64..3).prop_map(|n| Value::from(n as f64)),
        "[a-c]{0,2}".prop_map(Value::from),
        (0u64..3).prop_map(|n| json!({"deep": n})),
    ]
}

fn map() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec(
        (prop::sample::select(vec!["flag", "n", "x", "y"]), value()),
        0..4,
    )
    .prop_map(|pairs| pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn op() -> impl Strategy<Value = Op> {
    let key = prop::option::weighted(0.5, 0u8..3);
    prop_oneof![
        4 => (0u8..2, 1u32..3, 0usize..3).prop_map(|(name, version, def)| Op::Put { name, version, def }),
        20 => (0u8..5, prop::bool::weighted(0.8), 0u8..2, 1u32..3, prop::option::of(map()), key.clone())
            .prop_map(|(id, given, name, version, ctx, key)| Op::Create { id, given, name, version, ctx, key }),
        50 => (0u8..5, 0u8..3, prop::option::of(map()), prop::option::weighted(0.2, 0u8..3), 0u8..6, prop::option::of(0u8..2), key.clone())
            .prop_map(|(id, event, payload, expected_state, expected_offset, event_id, key)| Op::Apply { id, event, payload, expected_state, expected_offset, event_id, key }),
        8 => (0u8..5, key).prop_map(|(id, key)| Op::Delete { id, key }),
        1 => Just(Op::Flush),
        2 => Just(Op::Checkpoint),
        12 => any::<prop::sample::Index>().prop_map(Op::Repeat),
        // Small steps around the 40 ms TTL hit its exact boundary often; a negative step is
        // the clock going back (§6.5).
        8 => prop::sample::select(vec![-10i64, 10, 20, 30, 40]).prop_map(Op::Clock),
    ]
}

/// Every test case starts with the four machine versions and one instance per id, so that
/// the random part mostly meets existing instances.
fn prelude() -> Vec<Op> {
    let mut ops = vec![
        Op::Put {
            name: 0,
            version: 1,
            def: 0,
        },
        Op::Put {
            name: 0,
            version: 2,
            def: 1,
        },
        Op::Put {
            name: 1,
            version: 1,
            def: 2,
        },
        Op::Put {
            name: 1,
            version: 2,
            def: 1,
        },
    ];
    for id in 0..5u8 {
        ops.push(Op::Create {
            id,
            given: true,
            name: id % 2,
            version: 1 + u32::from(id / 2) % 2,
            ctx: None,
            key: None,
        });
    }
    ops
}

fn config() -> impl Strategy<Value = EngineConfig> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec![0u32, 2]),
        prop::sample::select(vec![40i64, 1_000_000]),
        prop::sample::select(vec![2usize, 1_000]),
    )
        .prop_map(|(recreate, flush, versions, ttl, max)| EngineConfig {
            allow_instance_recreate: recreate,
            allow_flush_all: flush,
            max_machine_versions: versions,
            idempotency_ttl_ms: ttl,
            idempotency_max_entries: max,
        })
}

fn command(op: &Op, model: &Model, generated: &mut u32) -> Option<Command> {
    let name = |n: u8| format!("m{n}");
    let id = |n: u8| format!("i{n}");
    let key = |k: &Option<u8>| k.map(|k| format!("k{k}"));
    let defs = defs();
    Some(match op {
        Op::Put {
            name: n,
            version,
            def,
        } => Command::PutMachine(PutMachine {
            machine: name(*n),
            version: *version,
            definition: def_json(&defs[*def]),
        }),
        Op::Create {
            id: i,
            given,
            name: n,
            version,
            ctx,
            key: k,
        } => {
            *generated += 1;
            let instance_id = if *given {
                InstanceIdChoice::Given(id(*i))
            } else {
                InstanceIdChoice::Generated(format!("g{generated}"))
            };
            Command::CreateInstance(CreateInstance {
                machine: name(*n),
                version: *version,
                instance_id,
                initial_ctx: ctx.clone(),
                idempotency_key: key(k),
            })
        }
        Op::Apply {
            id: i,
            event,
            payload,
            expected_state,
            expected_offset,
            event_id,
            key: k,
        } => {
            let current = model
                .instances
                .get(&id(*i))
                .map_or(FIRST_OFFSET, |m| m.last_wal_offset);
            Command::ApplyEvent(ApplyEvent {
                instance_id: id(*i),
                event: format!("E{}", event + 1),
                payload: payload.clone(),
                expected_state: expected_state.map(|s| ["a", "b", "c"][s as usize].to_owned()),
                expected_wal_offset: match expected_offset {
                    0 => Some(current),
                    1 => Some(current + 1),
                    _ => None,
                },
                event_id: event_id.map(|e| format!("ev{e}")),
                idempotency_key: key(k),
            })
        }
        Op::Delete { id: i, key: k } => Command::DeleteInstance(DeleteInstance {
            instance_id: id(*i),
            idempotency_key: key(k),
        }),
        Op::Flush => Command::FlushAll,
        Op::Checkpoint | Op::Clock(_) | Op::Repeat(_) => return None,
    })
}

fn engine_outcome(h: &mut Harness, cmd: Command, now: i64) -> (Outcome, Option<Executed>) {
    match h.run_at(cmd, now) {
        Ok(executed) => (
            Ok(serde_json::to_value(&executed.result).unwrap()),
            Some(executed),
        ),
        Err(e) => (Err(json!({"code": e.code(), "details": e.details()})), None),
    }
}

fn compare_reads(h: &Harness, model: &Model, ids: &[String]) {
    for id in ids {
        let engine = h
            .engine
            .get_instance(id)
            .ok()
            .map(|v| serde_json::to_value(v).unwrap());
        assert_eq!(engine, model.view(id), "GET_INSTANCE {id}");
    }
    for (machine, state) in [
        (None, None),
        (Some("m0"), None),
        (Some("m1"), Some("b")),
        (None, Some("a")),
    ] {
        let query = ListInstancesQuery {
            machine: machine.map(Into::into),
            state: state.map(Into::into),
            limit: 3,
            ..Default::default()
        };
        let page = h.engine.list_instances(&query);
        let mut expected: Vec<&String> = model
            .instances
            .iter()
            .filter(|(_, i)| {
                i.deleted.is_none()
                    && machine.is_none_or(|m| i.machine == m)
                    && state.is_none_or(|s| i.state == s)
            })
            .map(|(id, _)| id)
            .collect();
        expected.sort();
        assert_eq!(
            page.total,
            expected.len() as u64,
            "total for {machine:?} {state:?}"
        );
        let got: Vec<&String> = page.instances.iter().map(|i| &i.id).collect();
        assert_eq!(got, expected.iter().take(3).copied().collect::<Vec<_>>());
        assert_eq!(page.has_more, expected.len() > 3);
    }
    let mut versions: Vec<(String, u32)> = model.machines.keys().cloned().collect();
    versions.sort();
    let listed: Vec<(String, u32)> = h
        .engine
        .list_machines()
        .items
        .into_iter()
        .flat_map(|item| {
            item.versions
                .into_iter()
                .map(move |v| (item.machine.clone(), v))
        })
        .collect();
    assert_eq!(listed, versions);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_engine_agrees_with_the_model(config in config(), ops in prop::collection::vec(op(), 1..80), undo_k in 0usize..8) {
        let defs = defs();
        let checksums: Vec<String> = defs
            .iter()
            .map(|d| MachineDefinition::from_json(&def_json(d)).unwrap().checksum_hex())
            .collect();
        let mut h = Harness::new(config.clone());
        let mut model = Model::new(config.clone());
        let mut generated = 0;
        let mut sent: Vec<Command> = Vec::new();
        let mut ids: Vec<String> = (0..5).map(|i| format!("i{i}")).collect();
        // Recovery's starting point: the last checkpoint's bytes and how many records it covers.
        let mut base: (Vec<u8>, usize) = (Engine::new(config.clone()).encode_snapshot(), 0);
        // Since the last checkpoint: (state before, executed) for the undo check.
        let mut undoable: Vec<(Vec<u8>, Executed)> = Vec::new();

        for op in prelude().iter().chain(&ops) {
            match op {
                Op::Clock(delta) => { h.now_ms += delta; continue; }
                Op::Checkpoint => {
                    h.engine.drop_deleted();
                    model.checkpoint();
                    base = (h.engine.encode_snapshot(), h.records.len());
                    undoable.clear();
                    continue;
                }
                _ => {}
            }
            let cmd = match op {
                Op::Repeat(index) if !sent.is_empty() => sent[index.index(sent.len())].clone(),
                _ => match command(op, &model, &mut generated) {
                    Some(cmd) => cmd,
                    None => continue,
                },
            };
            sent.push(cmd.clone());
            if let Command::CreateInstance(CreateInstance { instance_id: InstanceIdChoice::Generated(g), .. }) = &cmd {
                ids.push(g.clone());
            }
            let offset = h.next_offset;
            let now = h.now_ms;
            let before = h.engine.encode_snapshot();
            let (expected, writes) = model.run(&cmd, now, offset, &defs, &checksums);
            let (actual, executed) = engine_outcome(&mut h, cmd.clone(), now);
            prop_assert_eq!(&actual, &expected, "command {:?}", cmd);
            if let Some(executed) = executed {
                prop_assert_eq!(executed.wal_offset.is_some(), writes);
                if writes {
                    prop_assert_eq!(executed.wal_offset, Some(offset));
                }
                undoable.push((before, executed));
            }
            compare_reads(&h, &model, &ids);
            let counts: u64 = h.engine.state_counts().iter().map(|c| c.count).sum();
            prop_assert_eq!(counts, h.engine.live_instance_count());
        }

        // Replay: the last checkpoint plus the records after it.
        let mut replayed = Engine::decode_snapshot(config.clone(), &base.0).unwrap();
        for (record, offset) in &h.records[base.1..] {
            let read = serde_json::from_str(&serde_json::to_string(record).unwrap()).unwrap();
            replayed.apply_record(&read, *offset).unwrap();
        }
        prop_assert_eq!(replayed.encode_snapshot(), h.engine.encode_snapshot());
        prop_assert_eq!(replayed.state_counts(), h.engine.state_counts());

        // A snapshot round trip.
        let bytes = h.engine.encode_snapshot();
        let decoded = Engine::decode_snapshot(config, &bytes).unwrap();
        prop_assert_eq!(decoded.encode_snapshot(), bytes);

        // Undo the last k executed commands: the state before the k-th from the end returns.
        let k = undo_k.min(undoable.len());
        let mut target = None;
        for (before, executed) in undoable.into_iter().rev().take(k) {
            h.engine.undo(executed.undo);
            target = Some(before);
        }
        if let Some(target) = target {
            prop_assert_eq!(h.engine.encode_snapshot(), target);
        }
    }
}
