//! `rstmdb cluster`: a cluster's status and membership from the command line (spec §12.3),
//! the same requests as the REPL's `cluster-*` commands, with the same output and exit
//! status.

use super::connect::ConnectArgs;
use clap::{Args, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

/// Which node to ask, and how to print its answer.
#[derive(Debug, Args)]
struct Target {
    #[command(flatten)]
    connect: ConnectArgs,

    /// Print the server's raw JSON result (one line) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Show the cluster as the node sees it: role, term, leader, members and their lag.
    Status(Target),
    /// Add a node that receives the log without voting; it catches up from the leader.
    AddLearner {
        node_id: u64,
        /// Where the other nodes reach it (its cluster.raft_addr).
        raft_addr: String,
        /// Where clients reach it (its cluster.client_addr).
        client_addr: String,
        #[command(flatten)]
        target: Target,
    },
    /// Make a learner a voter.
    Promote {
        node_id: u64,
        #[command(flatten)]
        target: Target,
    },
    /// Remove a node from the cluster (a voter stops voting first; the last voter stays).
    Remove {
        node_id: u64,
        #[command(flatten)]
        target: Target,
    },
    /// Make another voter the leader (writes pause for about one election).
    TransferLeader {
        node_id: u64,
        #[command(flatten)]
        target: Target,
    },
}

pub fn run(args: ClusterArgs) -> ExitCode {
    let (target, command) = match args.command {
        ClusterCommand::Status(target) => (target, "cluster-status".to_owned()),
        ClusterCommand::AddLearner {
            node_id,
            raft_addr,
            client_addr,
            target,
        } => (
            target,
            format!(
                "cluster-add-learner {node_id} {} {}",
                quoted(&raft_addr),
                quoted(&client_addr)
            ),
        ),
        ClusterCommand::Promote { node_id, target } => {
            (target, format!("cluster-promote {node_id}"))
        }
        ClusterCommand::Remove { node_id, target } => (target, format!("cluster-remove {node_id}")),
        ClusterCommand::TransferLeader { node_id, target } => {
            (target, format!("cluster-transfer-leader {node_id}"))
        }
    };
    super::repl::run_command(target.connect, command, target.json)
}

/// A word for the REPL's tokenizer: JSON string quoting keeps it one word whatever it holds.
fn quoted(word: &str) -> String {
    serde_json::to_string(word).unwrap_or_default()
}
