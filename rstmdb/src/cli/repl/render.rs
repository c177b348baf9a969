//! Turning results into text: aligned tables by default, the raw JSON with `--json`. Every
//! string from the server reaches a table through [`cell`] or [`safe`], which escape control
//! characters, so stored data cannot drive the operator's terminal.

use rstmdb_client::Event;
use rstmdb_client::terminal_text::escape_controls;
use serde_json::{Map, Value};
use std::fmt::Write as _;

use super::commands::Action;

/// A table with aligned columns: a header row, then one row per item.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Columns padded to their widest cell and separated by two spaces; no trailing spaces.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (index, cell) in row.iter().enumerate().take(columns) {
                widths[index] = widths[index].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (index, cell) in row.iter().enumerate().take(columns) {
                if index + 1 == columns {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:width$}  ", width = widths[index]);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A scalar as a user reads it: strings without quotes, everything else as compact JSON;
/// control characters escaped (JSON leaves DEL and C1 controls as they are).
pub fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(text)) => safe(text),
        Some(other) => safe(&other.to_string()),
    }
}

/// `text` with its control characters escaped, for a terminal.
pub fn safe(text: &str) -> String {
    escape_controls(text).into_owned()
}

/// An object as a two-column `field  value` table, in the server's key order.
fn fields(object: &Map<String, Value>) -> String {
    let mut table = Table::new(&["field", "value"]);
    for (key, value) in object {
        table.row(vec![safe(key), cell(Some(value))]);
    }
    table.render()
}

/// The readable form of a successful result.
pub fn result(action: Action, result: &Map<String, Value>) -> String {
    match action {
        Action::Ping => "pong\n".to_owned(),
        Action::ListMachines => machines(result),
        Action::List => instances(result),
        Action::WalRead => wal_records(result),
        Action::Batch => batch(result),
        Action::GetMachine => definition(result),
        Action::WalStats => fields(&flatten(result)),
        Action::ClusterStatus => cluster_status(result),
        Action::ClusterPromote | Action::ClusterRemove => members(result),
        _ => fields(result),
    }
}

/// CLUSTER_STATUS: the node's view as fields, then its members as a table.
fn cluster_status(result: &Map<String, Value>) -> String {
    let mut head = result.clone();
    head.remove("members");
    format!("{}{}", fields(&flatten(&head)), members(result))
}

/// The columns of a cluster's members table: fields of each member, by name.
const MEMBER_COLUMNS: [&str; 7] = [
    "node_id",
    "voter",
    "raft_addr",
    "client_addr",
    "fsync_policy",
    "matched_index",
    "lag_entries",
];

fn members(result: &Map<String, Value>) -> String {
    let mut table = Table::new(&MEMBER_COLUMNS);
    for member in items(result, "members") {
        let member = member.as_object().cloned().unwrap_or_default();
        table.row(
            MEMBER_COLUMNS
                .iter()
                .map(|key| cell(member.get(*key)))
                .collect(),
        );
    }
    let count = items(result, "members").len();
    format!("{}({count} members)\n", table.render())
}

/// Nested objects (`io_stats`, `fsync_latency_us`) as `outer.inner` rows.
fn flatten(object: &Map<String, Value>) -> Map<String, Value> {
    let mut flat = Map::new();
    for (key, value) in object {
        match value {
            Value::Object(inner) => {
                for (inner_key, inner_value) in inner {
                    flat.insert(format!("{key}.{inner_key}"), inner_value.clone());
                }
            }
            other => {
                flat.insert(key.clone(), other.clone());
            }
        }
    }
    flat
}

fn items<'a>(result: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    result
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn machines(result: &Map<String, Value>) -> String {
    let mut table = Table::new(&["machine", "versions"]);
    for item in items(result, "items") {
        let versions = joined(items(item.as_object().unwrap_or(&Map::new()), "versions"));
        table.row(vec![cell(item.get("machine")), versions]);
    }
    let count = items(result, "items").len();
    format!("{}({count} machines)\n", table.render())
}

fn instances(result: &Map<String, Value>) -> String {
    let columns = ["id", "machine", "version", "state", "last_wal_offset"];
    let mut table = Table::new(&columns);
    let page = items(result, "instances");
    for instance in page {
        table.row(columns.iter().map(|c| cell(instance.get(*c))).collect());
    }
    let total = cell(result.get("total"));
    let mut footer = format!("({} of {total} instances", page.len());
    if result.get("has_more") == Some(&Value::Bool(true)) {
        let last = page.last().map(|i| cell(i.get("id"))).unwrap_or_default();
        let _ = write!(footer, "; more with --after {last}");
    }
    format!("{}{footer})\n", table.render())
}

fn wal_records(result: &Map<String, Value>) -> String {
    let mut table = Table::new(&[
        "seq", "offset", "type", "instance", "machine", "event", "states",
    ]);
    for record in items(result, "records") {
        let entry = record.get("entry");
        let field = |name: &str| cell(entry.and_then(|e| e.get(name)));
        let machine = match entry.and_then(|e| e.get("version")) {
            Some(version) => format!("{}@{}", field("machine"), cell(Some(version))),
            None => field("machine"),
        };
        let states = match (
            entry.and_then(|e| e.get("from_state")),
            entry.and_then(|e| e.get("to_state")),
        ) {
            (Some(from), Some(to)) => format!("{} -> {}", cell(Some(from)), cell(Some(to))),
            _ => "-".to_owned(),
        };
        table.row(vec![
            cell(record.get("sequence")),
            cell(record.get("offset")),
            field("type"),
            field("instance_id"),
            machine,
            field("event"),
            states,
        ]);
    }
    format!(
        "{}(next_offset {})\n",
        table.render(),
        cell(result.get("next_offset"))
    )
}

/// A list of strings (or anything) joined with commas.
fn joined(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| cell(Some(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// GET_MACHINE: checksum, initial state and states, then one row per transition.
fn definition(result: &Map<String, Value>) -> String {
    let empty = Map::new();
    let definition = result
        .get("definition")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut head = Table::new(&["field", "value"]);
    head.row(vec!["checksum".into(), cell(result.get("checksum"))]);
    head.row(vec!["initial".into(), cell(definition.get("initial"))]);
    head.row(vec!["states".into(), joined(items(definition, "states"))]);
    let mut transitions = Table::new(&["from", "event", "to", "guard"]);
    for transition in items(definition, "transitions") {
        let from = match transition.get("from") {
            Some(Value::Array(states)) => joined(states),
            other => cell(other),
        };
        transitions.row(vec![
            from,
            cell(transition.get("event")),
            cell(transition.get("to")),
            cell(transition.get("guard")),
        ]);
    }
    format!("{}\n{}", head.render(), transitions.render())
}

fn batch(result: &Map<String, Value>) -> String {
    let mut table = Table::new(&["#", "status", "outcome"]);
    for (index, item) in items(result, "results").iter().enumerate() {
        let outcome = match item.get("error") {
            Some(Value::Object(error)) => {
                format!(
                    "{}: {}",
                    cell(error.get("code")),
                    cell(error.get("message"))
                )
            }
            _ => cell(item.get("result")),
        };
        table.row(vec![index.to_string(), cell(item.get("status")), outcome]);
    }
    table.render()
}

/// One line per watch event: offset, instance, machine@version, event, transition, ctx.
pub fn event(event: &Event) -> String {
    let mut line = format!(
        "{}  {}  {}@{}  {}  {} -> {}",
        event.wal_offset,
        safe(&event.instance_id),
        safe(&event.machine),
        event.version,
        safe(&event.event),
        safe(&event.from_state),
        safe(&event.to_state)
    );
    if let Some(ctx) = &event.ctx {
        let _ = write!(line, "  ctx={}", cell(Some(&Value::Object(ctx.clone()))));
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn columns_line_up_under_their_headers() {
        let mut table = Table::new(&["id", "state"]);
        table.row(vec!["order-1".into(), "paid".into()]);
        table.row(vec!["o2".into(), "created".into()]);
        assert_eq!(
            table.render(),
            "id       state\norder-1  paid\no2       created\n"
        );
    }

    #[test]
    fn an_instance_page_says_how_to_get_the_next_one() {
        let page = object(json!({"instances": [{"id": "order-1", "machine": "order",
            "version": 1, "state": "paid", "last_wal_offset": 7}], "total": 2, "has_more": true}));
        let text = result(Action::List, &page);
        assert!(
            text.contains("order-1  order    1        paid   7"),
            "{text}"
        );
        assert!(
            text.ends_with("(1 of 2 instances; more with --after order-1)\n"),
            "{text}"
        );
    }

    #[test]
    fn a_definition_shows_one_row_per_transition() {
        let machine = object(json!({"checksum": "eef67bea", "definition": {
            "states": ["created", "paid"], "initial": "created",
            "transitions": [{"from": ["created"], "event": "PAY", "to": "paid"},
                            {"from": ["created", "paid"], "event": "X", "to": "paid",
                             "guard": "ctx.ok"}]}}));
        let text = result(Action::GetMachine, &machine);
        assert!(text.contains("states    created, paid\n"), "{text}");
        assert!(
            text.contains("\nfrom           event  to    guard\n"),
            "{text}"
        );
        assert!(text.contains("created        PAY    paid  -\n"), "{text}");
        assert!(
            text.contains("created, paid  X      paid  ctx.ok\n"),
            "{text}"
        );
    }

    #[test]
    fn wal_stats_show_nested_counters_as_dotted_fields() {
        let stats = object(json!({"entry_count": 8, "io_stats": {"fsyncs": 3}}));
        let text = result(Action::WalStats, &stats);
        assert!(text.contains("io_stats.fsyncs  3"), "{text}");
    }
}
