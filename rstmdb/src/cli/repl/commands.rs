//! The table of REPL commands: one entry per command with its arguments, flags, help text and
//! an example. Parsing (`invocation::bind`), `help` and tab completion all read this table.

use std::fmt::Write as _;

/// What a command does; [`super::execute`] matches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Ping,
    Info,
    PutMachine,
    GetMachine,
    ListMachines,
    Create,
    Get,
    List,
    Apply,
    Delete,
    Snapshot,
    Batch,
    WalRead,
    WalStats,
    Compact,
    Watch,
    ClusterStatus,
    ClusterAddLearner,
    ClusterPromote,
    ClusterTransferLeader,
    ClusterRemove,
    Help,
    Quit,
}

/// What an argument names, so that completion can offer the right words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    Machine,
    Instance,
    Command,
    /// Anything else: a number, an event name, a JSON value, a path.
    Other,
}

#[derive(Debug)]
pub struct Positional {
    pub name: &'static str,
    pub kind: ArgKind,
    pub required: bool,
}

#[derive(Debug)]
pub struct Flag {
    /// Without the leading `--`.
    pub name: &'static str,
    /// `None` for a switch; else what its value names.
    pub value: Option<ArgKind>,
    /// A flag that may be given several times (its values add up).
    pub repeats: bool,
}

#[derive(Debug)]
pub struct CommandSpec {
    pub name: &'static str,
    pub action: Action,
    pub positionals: &'static [Positional],
    pub flags: &'static [Flag],
    /// The usage line after the name.
    pub usage: &'static str,
    pub summary: &'static str,
    pub example: &'static str,
    /// Whether it changes the database (the completion names are refreshed after it).
    pub writes: bool,
}

const fn arg(name: &'static str, kind: ArgKind, required: bool) -> Positional {
    Positional {
        name,
        kind,
        required,
    }
}

const fn value(name: &'static str, kind: ArgKind) -> Flag {
    Flag {
        name,
        value: Some(kind),
        repeats: false,
    }
}

const fn switch(name: &'static str) -> Flag {
    Flag {
        name,
        value: None,
        repeats: false,
    }
}

const fn list(name: &'static str, kind: ArgKind) -> Flag {
    Flag {
        name,
        value: Some(kind),
        repeats: true,
    }
}

use ArgKind::{Command as Cmd, Instance, Machine, Other};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "ping",
        action: Action::Ping,
        positionals: &[],
        flags: &[],
        usage: "",
        summary: "Check that the server answers (PING).",
        example: "ping",
        writes: false,
    },
    CommandSpec {
        name: "info",
        action: Action::Info,
        positionals: &[],
        flags: &[],
        usage: "",
        summary: "Show the server's version, features and limits (INFO).",
        example: "info",
        writes: false,
    },
    CommandSpec {
        name: "put-machine",
        action: Action::PutMachine,
        positionals: &[
            arg("machine", Machine, false),
            arg("version", Other, false),
            arg("definition", Other, false),
        ],
        flags: &[value("file", Other)],
        usage: "MACHINE VERSION (DEFINITION_JSON | --file PATH) | --file PATH",
        summary: "Register a machine definition version (PUT_MACHINE). The file holds a bare \
                  definition, or {\"machine\", \"version\", \"definition\"} and then MACHINE and \
                  VERSION may be left out. Definition errors point into the file.",
        example: "put-machine order 1 {\"states\":[\"created\",\"paid\"],\"initial\":\"created\",\
                  \"transitions\":[{\"from\":\"created\",\"event\":\"PAY\",\"to\":\"paid\"}]}",
        writes: true,
    },
    CommandSpec {
        name: "get-machine",
        action: Action::GetMachine,
        positionals: &[arg("machine", Machine, true), arg("version", Other, true)],
        flags: &[],
        usage: "MACHINE VERSION",
        summary: "Show a machine definition, normalised (GET_MACHINE).",
        example: "get-machine order 1",
        writes: false,
    },
    CommandSpec {
        name: "machines",
        action: Action::ListMachines,
        positionals: &[],
        flags: &[],
        usage: "",
        summary: "List machine names and their versions (LIST_MACHINES).",
        example: "machines",
        writes: false,
    },
    CommandSpec {
        name: "create",
        action: Action::Create,
        positionals: &[
            arg("machine", Machine, true),
            arg("version", Other, true),
            arg("instance_id", Other, false),
        ],
        flags: &[value("ctx", Other), value("key", Other)],
        usage: "MACHINE VERSION [INSTANCE_ID] [--ctx JSON] [--key IDEMPOTENCY_KEY]",
        summary: "Create an instance in the machine's initial state (CREATE_INSTANCE). Without \
                  an id the server generates one.",
        example: "create order 1 order-1 --ctx {\"customer\": \"alice\"}",
        writes: true,
    },
    CommandSpec {
        name: "get",
        action: Action::Get,
        positionals: &[arg("instance_id", Instance, true)],
        flags: &[],
        usage: "INSTANCE_ID",
        summary: "Show an instance: machine, state, context (GET_INSTANCE).",
        example: "get order-1",
        writes: false,
    },
    CommandSpec {
        name: "list",
        action: Action::List,
        positionals: &[],
        flags: &[
            value("machine", Machine),
            value("state", Other),
            value("limit", Other),
            value("offset", Other),
            value("after", Instance),
        ],
        usage: "[--machine M] [--state S] [--limit N] [--offset N] [--after INSTANCE_ID]",
        summary: "List instances, ordered by id (LIST_INSTANCES).",
        example: "list --machine order --state paid --limit 10",
        writes: false,
    },
    CommandSpec {
        name: "apply",
        action: Action::Apply,
        positionals: &[
            arg("instance_id", Instance, true),
            arg("event", Other, true),
            arg("payload", Other, false),
        ],
        flags: &[
            value("expect-state", Other),
            value("expect-offset", Other),
            value("event-id", Other),
            value("key", Other),
        ],
        usage: "INSTANCE_ID EVENT [PAYLOAD_JSON] [--expect-state S] [--expect-offset N] \
                [--event-id ID] [--key IDEMPOTENCY_KEY]",
        summary: "Fire an event at an instance (APPLY_EVENT); the payload is merged into ctx.",
        example: "apply order-1 PAY {\"amount\": 42.5} --expect-state created",
        writes: true,
    },
    CommandSpec {
        name: "delete",
        action: Action::Delete,
        positionals: &[arg("instance_id", Instance, true)],
        flags: &[value("key", Other)],
        usage: "INSTANCE_ID [--key IDEMPOTENCY_KEY]",
        summary: "Soft-delete an instance (DELETE_INSTANCE).",
        example: "delete order-2",
        writes: true,
    },
    CommandSpec {
        name: "snapshot",
        action: Action::Snapshot,
        positionals: &[arg("instance_id", Instance, true)],
        flags: &[],
        usage: "INSTANCE_ID",
        summary: "Write a point-in-time snapshot of one instance (SNAPSHOT_INSTANCE).",
        example: "snapshot order-1",
        writes: false,
    },
    CommandSpec {
        name: "batch",
        action: Action::Batch,
        positionals: &[arg("file", Other, true)],
        flags: &[switch("atomic")],
        usage: "FILE [--atomic]",
        summary: "Run the ops of a JSON file in one BATCH. The file holds an array of \
                  {\"op\", \"params\"} or {\"mode\", \"ops\"}; --atomic makes it all-or-nothing.",
        example: "batch ops.json --atomic",
        writes: true,
    },
    CommandSpec {
        name: "wal-read",
        action: Action::WalRead,
        positionals: &[arg("from_offset", Other, false)],
        flags: &[value("limit", Other)],
        usage: "[FROM_OFFSET] [--limit N]",
        summary: "Show WAL records from an offset, 0 (the default) being the oldest (WAL_READ).",
        example: "wal-read 0 --limit 20",
        writes: false,
    },
    CommandSpec {
        name: "wal-stats",
        action: Action::WalStats,
        positionals: &[],
        flags: &[],
        usage: "",
        summary: "Show WAL statistics: offsets, sizes, fsyncs (WAL_STATS).",
        example: "wal-stats",
        writes: false,
    },
    CommandSpec {
        name: "compact",
        action: Action::Compact,
        positionals: &[],
        flags: &[switch("force")],
        usage: "[--force]",
        summary: "Write a checkpoint and delete the WAL segments it covers (COMPACT).",
        example: "compact --force",
        writes: false,
    },
    CommandSpec {
        name: "watch",
        action: Action::Watch,
        positionals: &[arg("instance_id", Instance, false)],
        flags: &[
            list("machine", Machine),
            list("from-state", Other),
            list("to-state", Other),
            list("event", Other),
            value("from-offset", Other),
            switch("no-ctx"),
            value("count", Other),
        ],
        usage: "[INSTANCE_ID] [--machine M]... [--from-state S]... [--to-state S]... \
                [--event E]... [--from-offset N] [--no-ctx] [--count N]",
        summary: "Print transitions as they happen until Ctrl-C (or --count events), then \
                  unsubscribe. With an id: WATCH_INSTANCE; without: WATCH_ALL with filters \
                  (repeat a flag or separate values with commas).",
        example: "watch --machine order --to-state shipped --count 1",
        writes: false,
    },
    CommandSpec {
        name: "cluster-status",
        action: Action::ClusterStatus,
        positionals: &[],
        flags: &[],
        usage: "",
        summary: "Show the cluster as this node sees it: role, term, leader, members and \
                  their lag (CLUSTER_STATUS).",
        example: "cluster-status",
        writes: false,
    },
    CommandSpec {
        name: "cluster-add-learner",
        action: Action::ClusterAddLearner,
        positionals: &[
            arg("node_id", Other, true),
            arg("raft_addr", Other, true),
            arg("client_addr", Other, true),
        ],
        flags: &[],
        usage: "NODE_ID RAFT_ADDR CLIENT_ADDR",
        summary: "Add a node that receives the log without voting (CLUSTER_ADD_LEARNER).",
        example: "cluster-add-learner 4 10.0.0.4:7411 10.0.0.4:7401",
        writes: false,
    },
    CommandSpec {
        name: "cluster-promote",
        action: Action::ClusterPromote,
        positionals: &[arg("node_id", Other, true)],
        flags: &[],
        usage: "NODE_ID",
        summary: "Make a learner a voter (CLUSTER_PROMOTE).",
        example: "cluster-promote 4",
        writes: false,
    },
    CommandSpec {
        name: "cluster-remove",
        action: Action::ClusterRemove,
        positionals: &[arg("node_id", Other, true)],
        flags: &[],
        usage: "NODE_ID",
        summary: "Remove a node from the cluster (CLUSTER_REMOVE_NODE).",
        example: "cluster-remove 4",
        writes: false,
    },
    CommandSpec {
        name: "cluster-transfer-leader",
        action: Action::ClusterTransferLeader,
        positionals: &[arg("node_id", Other, true)],
        flags: &[],
        usage: "NODE_ID",
        summary: "Make another voter the leader (CLUSTER_TRANSFER_LEADER).",
        example: "cluster-transfer-leader 2",
        writes: false,
    },
    CommandSpec {
        name: "help",
        action: Action::Help,
        positionals: &[arg("command", Cmd, false)],
        flags: &[],
        usage: "[COMMAND]",
        summary: "List the commands, or show one command's usage and an example.",
        example: "help apply",
        writes: false,
    },
    CommandSpec {
        name: "quit",
        action: Action::Quit,
        positionals: &[],
        flags: &[],
        usage: "",
        summary: "Leave the shell (so do `exit` and Ctrl-D).",
        example: "quit",
        writes: false,
    },
];

/// The command called `name` (`exit` is `quit`).
pub fn find(name: &str) -> Option<&'static CommandSpec> {
    let name = if name == "exit" { "quit" } else { name };
    COMMANDS.iter().find(|command| command.name == name)
}

/// `help`: every command with its summary's first sentence.
pub fn overview() -> String {
    let width = COMMANDS.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::from("Commands (`help COMMAND` for usage and an example):\n");
    for command in COMMANDS {
        let first = command
            .summary
            .split(". ")
            .next()
            .unwrap_or(command.summary);
        let first = first.trim_end_matches('.');
        let _ = writeln!(out, "  {:width$}  {first}.", command.name);
    }
    out
}

/// `help COMMAND`: usage, description, example.
pub fn detail(spec: &CommandSpec) -> String {
    format!(
        "usage: {} {}\n\n{}\n\nexample:\n  {}\n",
        spec.name, spec.usage, spec.summary, spec.example
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::repl::invocation::bind;

    #[test]
    fn every_command_has_help_with_an_example_that_binds() {
        for command in COMMANDS {
            let example = crate::cli::repl::parse::tokenize(command.example)
                .unwrap_or_else(|e| panic!("{}: {e}", command.name));
            let bound = bind(&example).unwrap_or_else(|e| panic!("{}: {e}", command.name));
            assert_eq!(bound.spec.name, command.name);
            assert!(overview().contains(command.name));
        }
    }
}
