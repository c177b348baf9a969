//! Running one bound command against the server and printing its result.

use futures::StreamExt;
use rstmdb_client::params::WatchAllParams;
use rstmdb_client::{Client, Op, Subscription};
use serde_json::{Map, Value};
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::commands::{self, Action};
use super::failure::{DefinitionRefusal, Failure, is_definition_error};
use super::invocation::{Invocation, UsageError};
use super::render;
use crate::cli::check::finding::Finding;

/// COMPACT writes a whole-state checkpoint, which can outlast an ordinary call's timeout.
const COMPACT_TIMEOUT: Duration = Duration::from_secs(600);

/// What the shell does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

/// How results are printed.
#[derive(Debug, Clone, Copy)]
pub struct OutputMode {
    /// Print each result as the server's raw JSON object, one line.
    pub json: bool,
    /// A person is at the prompt: say what a watch is doing.
    pub interactive: bool,
}

/// Writes to stdout; a closed stdout (`| head`) must not become a panic.
pub fn emit(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Runs one command. Ctrl-C abandons it and returns to the prompt (a watch handles Ctrl-C
/// itself, to UNWATCH first).
pub async fn execute(
    client: &Client,
    invocation: &Invocation,
    mode: OutputMode,
) -> Result<Flow, Failure> {
    if invocation.spec.action == Action::Watch {
        return run(client, invocation, mode).await;
    }
    tokio::select! {
        outcome = run(client, invocation, mode) => outcome,
        Ok(()) = tokio::signal::ctrl_c() => Err(Failure::Interrupted),
    }
}

async fn run(client: &Client, invocation: &Invocation, mode: OutputMode) -> Result<Flow, Failure> {
    let action = invocation.spec.action;
    let (op, params) = match action {
        Action::Help => {
            emit(&help_text(invocation.positional(0))?);
            return Ok(Flow::Continue);
        }
        Action::Quit => return Ok(Flow::Quit),
        Action::Watch => {
            watch(client, invocation, mode).await?;
            return Ok(Flow::Continue);
        }
        Action::PutMachine => return put_machine(client, invocation, mode).await,
        _ => request_for(invocation)?,
    };
    let client = if action == Action::Compact {
        client.with_request_timeout(COMPACT_TIMEOUT)
    } else {
        client.clone()
    };
    let raw = client.request(op, params).await?;
    print_result(action, &raw.result, mode);
    Ok(Flow::Continue)
}

fn print_result(action: Action, result: &Map<String, Value>, mode: OutputMode) {
    if mode.json {
        emit(&format!("{}\n", Value::Object(result.clone())));
    } else {
        emit(&render::result(action, result));
    }
}

/// `help` or `help COMMAND`; needs no server.
pub fn help_text(topic: Option<&str>) -> Result<String, Failure> {
    match topic {
        None => Ok(commands::overview()),
        Some(name) => commands::find(name)
            .map(commands::detail)
            .ok_or_else(|| UsageError::UnknownCommand(name.to_owned()).into()),
    }
}

/// The op and params of the commands that are one plain request.
fn request_for(invocation: &Invocation) -> Result<(Op, Map<String, Value>), Failure> {
    let mut params = Map::new();
    let op = match invocation.spec.action {
        Action::Ping => Op::Ping,
        Action::Info => Op::Info,
        Action::ListMachines => Op::ListMachines,
        Action::WalStats => Op::WalStats,
        Action::GetMachine => {
            params.insert("machine".into(), required(invocation, 0)?.into());
            params.insert(
                "version".into(),
                number::<u32>(invocation, 1, "version")?.into(),
            );
            Op::GetMachine
        }
        Action::Create => {
            params.insert("machine".into(), required(invocation, 0)?.into());
            params.insert(
                "version".into(),
                number::<u32>(invocation, 1, "version")?.into(),
            );
            optional(&mut params, "instance_id", invocation.positional(2));
            if let Some(ctx) = invocation.flag("ctx") {
                params.insert("initial_ctx".into(), json_object(ctx, "--ctx")?);
            }
            optional(&mut params, "idempotency_key", invocation.flag("key"));
            Op::CreateInstance
        }
        Action::Get | Action::Snapshot => {
            params.insert("instance_id".into(), required(invocation, 0)?.into());
            if invocation.spec.action == Action::Get {
                Op::GetInstance
            } else {
                Op::SnapshotInstance
            }
        }
        Action::List => {
            optional(&mut params, "machine", invocation.flag("machine"));
            optional(&mut params, "state", invocation.flag("state"));
            optional(&mut params, "after", invocation.flag("after"));
            for name in ["limit", "offset"] {
                if let Some(text) = invocation.flag(name) {
                    params.insert(name.into(), parse_number::<u32>(text, name)?.into());
                }
            }
            Op::ListInstances
        }
        Action::Apply => {
            params.insert("instance_id".into(), required(invocation, 0)?.into());
            params.insert("event".into(), required(invocation, 1)?.into());
            if let Some(payload) = invocation.positional(2) {
                params.insert("payload".into(), json_object(payload, "the payload")?);
            }
            optional(
                &mut params,
                "expected_state",
                invocation.flag("expect-state"),
            );
            if let Some(text) = invocation.flag("expect-offset") {
                let offset = parse_number::<u64>(text, "--expect-offset")?;
                params.insert("expected_wal_offset".into(), offset.into());
            }
            optional(&mut params, "event_id", invocation.flag("event-id"));
            optional(&mut params, "idempotency_key", invocation.flag("key"));
            Op::ApplyEvent
        }
        Action::Delete => {
            params.insert("instance_id".into(), required(invocation, 0)?.into());
            optional(&mut params, "idempotency_key", invocation.flag("key"));
            Op::DeleteInstance
        }
        Action::Batch => {
            params = batch_params(invocation)?;
            Op::Batch
        }
        Action::WalRead => {
            let from = match invocation.positional(0) {
                Some(text) => parse_number::<u64>(text, "from_offset")?,
                None => 0,
            };
            params.insert("from_offset".into(), from.into());
            if let Some(text) = invocation.flag("limit") {
                params.insert("limit".into(), parse_number::<u64>(text, "--limit")?.into());
            }
            Op::WalRead
        }
        Action::Compact => {
            params.insert("force_snapshot".into(), invocation.switch("force").into());
            Op::Compact
        }
        Action::ClusterStatus => Op::ClusterStatus,
        Action::ClusterAddLearner => {
            params.insert(
                "node_id".into(),
                number::<u64>(invocation, 0, "node_id")?.into(),
            );
            params.insert("raft_addr".into(), required(invocation, 1)?.into());
            params.insert("client_addr".into(), required(invocation, 2)?.into());
            Op::ClusterAddLearner
        }
        Action::ClusterPromote | Action::ClusterRemove | Action::ClusterTransferLeader => {
            params.insert(
                "node_id".into(),
                number::<u64>(invocation, 0, "node_id")?.into(),
            );
            match invocation.spec.action {
                Action::ClusterPromote => Op::ClusterPromote,
                Action::ClusterRemove => Op::ClusterRemoveNode,
                _ => Op::ClusterTransferLeader,
            }
        }
        Action::PutMachine | Action::Watch | Action::Help | Action::Quit => {
            return Err(UsageError::Invalid(format!(
                "`{}` is not a single request",
                invocation.spec.name
            ))
            .into());
        }
    };
    Ok((op, params))
}

fn required(invocation: &Invocation, index: usize) -> Result<&str, Failure> {
    let spec = invocation.spec;
    invocation.positional(index).ok_or_else(|| {
        let argument = spec
            .positionals
            .get(index)
            .map_or("an argument", |p| p.name);
        UsageError::MissingArgument {
            command: spec.name,
            argument,
            usage: spec.usage,
        }
        .into()
    })
}

fn optional(params: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        params.insert(key.to_owned(), value.into());
    }
}

fn number<T: FromStr>(invocation: &Invocation, index: usize, what: &str) -> Result<T, Failure> {
    parse_number(required(invocation, index)?, what)
}

fn parse_number<T: FromStr>(text: &str, what: &str) -> Result<T, Failure> {
    text.parse().map_err(|_| {
        UsageError::Invalid(format!(
            "{what} must be a non-negative integer, not `{text}`"
        ))
        .into()
    })
}

fn json_value(text: &str, what: &str) -> Result<Value, Failure> {
    serde_json::from_str(text)
        .map_err(|error| UsageError::Invalid(format!("{what} is not valid JSON: {error}")).into())
}

fn json_object(text: &str, what: &str) -> Result<Value, Failure> {
    match json_value(text, what)? {
        object @ Value::Object(_) => Ok(object),
        _ => Err(UsageError::Invalid(format!("{what} must be a JSON object")).into()),
    }
}

/// A file's text and parsed JSON.
fn read_json_file(path: &str) -> Result<(String, Value), Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| Failure::Input(format!("cannot read {path}: {error}")))?;
    match serde_json::from_str(&text) {
        Ok(value) => Ok((text, value)),
        Err(error) => Err(Failure::InvalidJsonFile(Box::new(Finding::syntax(
            path.to_owned(),
            text,
            &error,
        )))),
    }
}

/// BATCH params from a file holding an array of ops or the whole `{"mode", "ops"}` object.
fn batch_params(invocation: &Invocation) -> Result<Map<String, Value>, Failure> {
    let path = required(invocation, 0)?;
    let (_, document) = read_json_file(path)?;
    let mut params = match document {
        Value::Array(ops) => Map::from_iter([("ops".to_owned(), Value::Array(ops))]),
        Value::Object(params) => params,
        _ => {
            return Err(Failure::Input(format!(
                "{path} must hold an array of ops or an object with \"ops\""
            )));
        }
    };
    if invocation.switch("atomic") {
        params.insert("mode".into(), "atomic".into());
    }
    Ok(params)
}

async fn put_machine(
    client: &Client,
    invocation: &Invocation,
    mode: OutputMode,
) -> Result<Flow, Failure> {
    let Some(path) = invocation.flag("file") else {
        let machine = required(invocation, 0)?;
        let version = number::<u32>(invocation, 1, "version")?;
        let definition = json_value(required(invocation, 2)?, "the definition")?;
        let params = put_params(machine, version, definition);
        let raw = client.request(Op::PutMachine, params).await?;
        print_result(Action::PutMachine, &raw.result, mode);
        return Ok(Flow::Continue);
    };
    if invocation.positional(2).is_some() {
        return Err(UsageError::Invalid(
            "give the definition inline or with --file, not both".into(),
        )
        .into());
    }
    let (text, document) = read_json_file(path)?;
    // The PUT_MACHINE wrapper form, as `rstmdb check` reads it; a bare definition has `states`.
    let wrapper = document
        .as_object()
        .filter(|object| !object.contains_key("states") && object.contains_key("definition"));
    let (definition, prefix) = match wrapper.and_then(|object| object.get("definition")) {
        Some(definition) => (definition.clone(), "/definition"),
        None => (document.clone(), ""),
    };
    let machine = match (
        invocation.positional(0),
        wrapper.and_then(|w| w.get("machine")),
    ) {
        (Some(machine), _) => machine.to_owned(),
        (None, Some(Value::String(machine))) => machine.clone(),
        _ => return Err(missing_in_file("MACHINE", path)),
    };
    let version = match (
        invocation.positional(1),
        wrapper.and_then(|w| w.get("version")),
    ) {
        (Some(text), _) => parse_number::<u32>(text, "version")?,
        (None, Some(value)) => value
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| Failure::Input(format!("{path}: \"version\" must be a u32")))?,
        _ => return Err(missing_in_file("VERSION", path)),
    };
    match client
        .request(Op::PutMachine, put_params(&machine, version, definition))
        .await
    {
        Ok(raw) => {
            print_result(Action::PutMachine, &raw.result, mode);
            Ok(Flow::Continue)
        }
        Err(error) if is_definition_error(&error) => {
            Err(Failure::Definition(Box::new(DefinitionRefusal {
                error,
                file: PathBuf::from(path),
                text,
                prefix,
            })))
        }
        Err(error) => Err(error.into()),
    }
}

fn missing_in_file(what: &str, path: &str) -> Failure {
    UsageError::Invalid(format!(
        "give {what}: {path} is not a {{\"machine\", \"version\", \"definition\"}} file"
    ))
    .into()
}

fn put_params(machine: &str, version: u32, definition: Value) -> Map<String, Value> {
    Map::from_iter([
        ("machine".to_owned(), machine.into()),
        ("version".to_owned(), version.into()),
        ("definition".to_owned(), definition),
    ])
}

/// Subscribes, prints events until Ctrl-C or `--count`, then UNWATCHes.
async fn watch(client: &Client, invocation: &Invocation, mode: OutputMode) -> Result<(), Failure> {
    let count = match invocation.flag("count") {
        Some(text) => Some(parse_number::<u64>(text, "--count")?),
        None => None,
    };
    let from_offset = match invocation.flag("from-offset") {
        Some(text) => Some(parse_number::<u64>(text, "--from-offset")?),
        None => None,
    };
    let include_ctx = !invocation.switch("no-ctx");
    let mut subscription = match invocation.positional(0) {
        Some(instance_id) => {
            client
                .watch_instance(instance_id, include_ctx, from_offset)
                .await?
        }
        None => {
            let filter = WatchAllParams {
                include_ctx,
                from_offset,
                machines: invocation.flag_values("machine"),
                from_states: invocation.flag_values("from-state"),
                to_states: invocation.flag_values("to-state"),
                events: invocation.flag_values("event"),
            };
            client.watch_all(filter).await?
        }
    };
    if mode.interactive {
        eprintln!("watching; press Ctrl-C to stop");
    }
    let outcome = stream_events(&mut subscription, count, mode).await;
    let unwatched = subscription.unwatch().await;
    outcome?;
    unwatched.map_err(Failure::from)
}

async fn stream_events(
    subscription: &mut Subscription,
    count: Option<u64>,
    mode: OutputMode,
) -> Result<(), Failure> {
    let mut seen = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    while count.is_none_or(|count| seen < count) {
        let event = tokio::select! {
            Ok(()) = &mut ctrl_c => return Ok(()),
            event = subscription.next() => event,
        };
        let Some(event) = event else {
            return Ok(());
        };
        let event = event?;
        if mode.json {
            let line = serde_json::to_string(&event).unwrap_or_default();
            emit(&format!("{line}\n"));
        } else {
            emit(&render::event(&event));
        }
        seen += 1;
    }
    Ok(())
}
