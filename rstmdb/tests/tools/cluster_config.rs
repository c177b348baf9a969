//! The `[cluster]` table of spec §12.4: the spec's own example parses to the documented values,
//! every bad value stops start-up naming its key, the `RSTMDB_CLUSTER_*` variables build the
//! table, and a valid table is accepted.

use crate::config_sources::{env_of, protocol_toml_block};
use rstmdb::config::{ClusterConfig, Config, ConfigError, ReadConsistency, apply_env};

const VALID: &str = r#"
[cluster]
node_id = 2
raft_addr = "node2.internal:7411"
members = ["1=node1.internal:7411", "2=node2.internal:7411", "3=10.0.0.3:7411"]
"#;

fn rule_key(config: &Config) -> (&'static str, String) {
    match config.resolve() {
        Err(ConfigError::Rule { key, message, .. }) => (key, message),
        other => panic!("expected a rule error, got {other:?}"),
    }
}

#[test]
fn the_protocols_example_parses_to_the_documented_values() {
    let block = protocol_toml_block("### 12.4 Configuration");
    let config = Config::from_toml(&block, "docs/protocol.md §12.4").expect("the block parses");
    let cluster = config.cluster.expect("a [cluster] table");
    assert_eq!(
        cluster,
        ClusterConfig {
            node_id: 1,
            raft_addr: "127.0.0.1:7411".to_owned(),
            client_addr: Some("127.0.0.1:7401".to_owned()),
            members: vec![
                "1=127.0.0.1:7411".to_owned(),
                "2=127.0.0.1:7412".to_owned(),
                "3=127.0.0.1:7413".to_owned(),
            ],
            ..ClusterConfig::default()
        },
        "the example shows the defaults of the other keys"
    );
    assert_eq!(cluster.read_consistency, ReadConsistency::Linearizable);
    assert_eq!(
        cluster
            .voters()
            .expect("voters")
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
}

#[test]
fn a_valid_table_is_accepted_and_standalone_is_untouched() {
    let config = Config::from_toml(VALID, "t").expect("parses");
    assert!(config.resolve().is_ok(), "{:?}", config.resolve());
    assert!(Config::default().resolve().is_ok());
}

#[test]
fn a_tls_cluster_needs_the_ca_its_nodes_check_each_other_against() {
    let config = Config::from_toml(
        &format!("[tls]\nenabled = true\ncert_path = \"c.pem\"\nkey_path = \"k.pem\"\n{VALID}"),
        "t",
    )
    .expect("parses");
    let (key, _) = rule_key(&config);
    assert_eq!(key, "tls.client_ca_path");
}

#[test]
fn every_bad_value_names_its_key() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("node_id", "0", "cluster.node_id", "1 or more"),
        ("raft_addr", "\"7411\"", "cluster.raft_addr", "`7411`"),
        ("raft_addr", "\"host:0\"", "cluster.raft_addr", "`host:0`"),
        (
            "client_addr",
            "\"nowhere\"",
            "cluster.client_addr",
            "`nowhere`",
        ),
        (
            "members",
            "[\"1=a:1\", \"1=b:2\"]",
            "cluster.members",
            "node id 1 is listed twice",
        ),
        ("members", "[\"a:1\"]", "cluster.members", "no `=`"),
        (
            "members",
            "[\"0=a:1\"]",
            "cluster.members",
            "`0` is not a node id",
        ),
        (
            "members",
            "[\"x=a:1\"]",
            "cluster.members",
            "`x` is not a node id",
        ),
        (
            "election_timeout_min_ms",
            "600",
            "cluster.election_timeout_min_ms",
            "600 ms is not below",
        ),
        (
            "heartbeat_interval_ms",
            "300",
            "cluster.heartbeat_interval_ms",
            "300 ms is not between",
        ),
        (
            "write_timeout_ms",
            "0",
            "cluster.write_timeout_ms",
            "at least 1",
        ),
    ];
    for (name, value, expected_key, expected_message) in cases {
        let mut text = format!("[cluster]\n{name} = {value}\n");
        for (base, base_value) in [("node_id", "2"), ("raft_addr", "\"127.0.0.1:7411\"")] {
            if base != *name {
                text.push_str(&format!("{base} = {base_value}\n"));
            }
        }
        let config = Config::from_toml(&text, "t").unwrap_or_else(|e| panic!("{text}: {e}"));
        let (key, message) = rule_key(&config);
        assert_eq!(key, *expected_key, "{text}: {message}");
        assert!(message.contains(expected_message), "{text}: {message}");
    }
}

#[test]
fn flush_all_and_auth_without_a_shared_secret_are_refused_in_cluster_mode() {
    let flush = Config::from_toml(&format!("[storage]\nallow_flush_all = true\n{VALID}"), "t")
        .expect("parses");
    assert_eq!(rule_key(&flush).0, "storage.allow_flush_all");
    let auth =
        Config::from_toml(&format!("[auth]\nrequired = true\n{VALID}"), "t").expect("parses");
    assert_eq!(rule_key(&auth).0, "cluster.secret_file");
}

#[test]
fn an_unknown_key_or_consistency_is_a_toml_error_at_the_key() {
    for (text, expected) in [
        (format!("{VALID}leader = 1\n"), "unknown field `leader`"),
        (
            format!("{VALID}read_consistency = \"eventual\"\n"),
            "unknown variant `eventual`",
        ),
    ] {
        match Config::from_toml(&text, "t") {
            Err(ConfigError::Toml(err)) => {
                assert!(err.message.contains(expected), "{}", err.message);
                assert!(err.span.is_some(), "points at the key");
            }
            other => panic!("expected a TOML error, got {other:?}"),
        }
    }
}

#[test]
fn the_cluster_variables_build_the_table() {
    let mut config = Config::default();
    apply_env(
        &mut config,
        env_of(&[
            ("RSTMDB_CLUSTER_NODE_ID", "3"),
            ("RSTMDB_CLUSTER_RAFT_ADDR", "0.0.0.0:7411"),
            ("RSTMDB_CLUSTER_MEMBERS", "1=n1:7411, 2=n2:7411,3=n3:7411"),
            ("RSTMDB_CLUSTER_SECRET_FILE", "/run/secrets/cluster"),
        ]),
    )
    .expect("env applies");
    let cluster = config.cluster.as_ref().expect("a cluster table");
    assert_eq!(cluster.node_id, 3);
    assert_eq!(cluster.members, ["1=n1:7411", "2=n2:7411", "3=n3:7411"]);
    assert_eq!(
        cluster.secret_file.as_deref(),
        Some(std::path::Path::new("/run/secrets/cluster"))
    );

    let mut missing = Config::default();
    apply_env(&mut missing, env_of(&[("RSTMDB_CLUSTER_NODE_ID", "3")])).expect("env applies");
    assert_eq!(
        rule_key(&missing).0,
        "cluster.raft_addr",
        "what is missing is named"
    );

    let err = apply_env(
        &mut Config::default(),
        env_of(&[("RSTMDB_CLUSTER_NODE_ID", "three")]),
    )
    .expect_err("not a number");
    assert!(err.to_string().contains("RSTMDB_CLUSTER_NODE_ID"), "{err}");
}
