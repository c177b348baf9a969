//! Tab completion: command names, flags, and the machine names and instance ids the server
//! knows; plus the line editor's "is this command complete?" check for multi-line JSON.

use rstmdb_client::Client;
use rstmdb_client::params::ListInstancesParams;
use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};
use std::sync::{Arc, Mutex, PoisonError};

use super::commands::{self, ArgKind, COMMANDS};
use super::parse;

/// The most instance ids fetched for completion: one LIST_INSTANCES page at its maximum.
const COMPLETION_INSTANCES_LIMIT: u32 = 1000;

/// Names offered for completion, as last fetched from the server.
#[derive(Debug, Default, Clone)]
pub struct Names {
    pub machines: Vec<String>,
    pub instances: Vec<String>,
}

/// Shared between the line editor (which reads it) and the loop (which refreshes it).
pub type SharedNames = Arc<Mutex<Names>>;

/// Fetches machine names (LIST_MACHINES) and the first page of instance ids
/// (LIST_INSTANCES). Completion is a convenience: a failed fetch keeps the old names.
pub async fn refresh(client: &Client, names: &SharedNames) {
    let machines = client.list_machines().await.ok();
    let page = ListInstancesParams {
        limit: Some(COMPLETION_INSTANCES_LIMIT),
        ..Default::default()
    };
    let instances = client.list_instances(page).await.ok();
    let mut names = names.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(machines) = machines {
        names.machines = machines
            .items
            .into_iter()
            .map(|item| item.machine)
            .collect();
    }
    if let Some(instances) = instances {
        names.instances = instances.instances.into_iter().map(|i| i.id).collect();
    }
}

/// The words that may complete `prefix`, given the words before it on the line.
pub fn candidates(before: &[&str], prefix: &str, names: &Names) -> Vec<String> {
    let pool: Vec<String> = match before.split_first() {
        None => command_names(),
        Some((name, arguments)) => {
            let Some(spec) = commands::find(name) else {
                return Vec::new();
            };
            if prefix.starts_with("--") {
                spec.flags.iter().map(|f| format!("--{}", f.name)).collect()
            } else {
                match argument_kind(spec, arguments) {
                    Some(ArgKind::Machine) => names.machines.clone(),
                    Some(ArgKind::Instance) => names.instances.clone(),
                    Some(ArgKind::Command) => command_names(),
                    Some(ArgKind::Other) | None => Vec::new(),
                }
            }
        }
    };
    let mut matching: Vec<String> = pool.into_iter().filter(|w| w.starts_with(prefix)).collect();
    matching.sort();
    matching.dedup();
    matching
}

fn command_names() -> Vec<String> {
    COMMANDS.iter().map(|c| c.name.to_owned()).collect()
}

/// What the next word names: a flag's value after a flag that takes one, else the next
/// positional argument.
fn argument_kind(spec: &commands::CommandSpec, arguments: &[&str]) -> Option<ArgKind> {
    let mut positional = 0;
    let mut words = arguments.iter();
    while let Some(word) = words.next() {
        match word.strip_prefix("--") {
            Some(flag) => {
                let takes_value = spec
                    .flags
                    .iter()
                    .find(|f| f.name == flag)
                    .and_then(|f| f.value);
                if let Some(kind) = takes_value
                    && words.next().is_none()
                {
                    return Some(kind);
                }
            }
            None => positional += 1,
        }
    }
    spec.positionals.get(positional).map(|p| p.kind)
}

/// The rustyline helper: completion from [`Names`], multi-line input until JSON balances.
#[derive(Debug)]
pub struct ReplHelper {
    names: SharedNames,
}

impl ReplHelper {
    pub fn new(names: SharedNames) -> Self {
        Self { names }
    }
}

impl Completer for ReplHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _context: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let before = line.get(..pos).unwrap_or(line);
        let start = before.rfind(char::is_whitespace).map_or(0, |index| {
            index + before[index..].chars().next().map_or(1, char::len_utf8)
        });
        let words: Vec<&str> = before[..start].split_whitespace().collect();
        let names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        Ok((start, candidates(&words, &before[start..], &names)))
    }
}

impl Validator for ReplHelper {
    fn validate(&self, context: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        if parse::is_complete(context.input()) {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            machines: vec!["order".into(), "invoice".into()],
            instances: vec!["order-1".into(), "order-2".into(), "inv-9".into()],
        }
    }

    #[test]
    fn the_first_word_completes_to_command_names() {
        assert_eq!(candidates(&[], "wal-", &names()), ["wal-read", "wal-stats"]);
    }

    #[test]
    fn arguments_complete_to_what_the_server_knows() {
        assert_eq!(
            candidates(&["get"], "order-", &names()),
            ["order-1", "order-2"]
        );
        assert_eq!(candidates(&["create"], "o", &names()), ["order"]);
        // The version after the machine is not a name.
        assert!(candidates(&["create", "order"], "", &names()).is_empty());
        assert_eq!(
            candidates(&["list", "--machine"], "in", &names()),
            ["invoice"]
        );
        assert_eq!(candidates(&["help"], "sn", &names()), ["snapshot"]);
    }

    #[test]
    fn flags_complete_after_two_dashes() {
        assert_eq!(
            candidates(&["apply", "order-1"], "--e", &names()),
            ["--event-id", "--expect-offset", "--expect-state"]
        );
    }
}
