//! Configuration: the shipped files parse, precedence works, and every kind of bad value is
//! refused with a message naming where it came from.

use rstmdb::config::{Config, ConfigError, FsyncPolicySetting, apply_env};
use rstmdb_testkit::TOKEN_HASH;
use std::collections::HashMap;
use std::path::Path;

fn config_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config"))
}

/// An environment of exactly `pairs`.
pub fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn toml_error(text: &str) -> (String, Option<usize>) {
    match Config::from_toml(text, "test.toml") {
        Err(ConfigError::Toml(err)) => (err.message, err.span.map(|s| s.offset())),
        other => panic!("expected a TOML error, got {other:?}"),
    }
}

#[test]
fn documented_default_file_equals_built_in_defaults() {
    let config = Config::from_file(&config_dir().join("rstmdb.toml")).expect("rstmdb.toml parses");
    assert_eq!(config, Config::default());
    assert_eq!(config.network.bind_addr.to_string(), "127.0.0.1:7401");
    assert_eq!(config.storage.fsync_policy, FsyncPolicySetting::EveryWrite);
}

/// The first TOML block after `heading` in docs/protocol.md.
pub fn protocol_toml_block(heading: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    let doc = std::fs::read_to_string(path).expect("docs/protocol.md");
    let section = doc
        .find(heading)
        .unwrap_or_else(|| panic!("{heading} is there"));
    doc[section..]
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("{heading} has a TOML block"))
        .to_owned()
}

#[test]
fn the_protocol_documents_the_built_in_defaults() {
    let block = protocol_toml_block("### 9.2 Keys");
    let block = block.as_str();
    let config = Config::from_toml(block, "docs/protocol.md §9.2").expect("the block parses");
    assert_eq!(config, Config::default(), "§9.2 shows every default");
    // A table left out would parse to its defaults too: §9.2 must show every table the shipped
    // file has.
    let tables = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| line.starts_with('['))
            .filter_map(|line| line.split(']').next())
            .map(|header| header.trim_start_matches('[').to_owned())
            .collect()
    };
    let shipped = std::fs::read_to_string(config_dir().join("rstmdb.toml")).expect("rstmdb.toml");
    assert_eq!(
        tables(block),
        tables(&shipped),
        "the tables of §9.2 and rstmdb.toml"
    );
}

#[test]
fn shipped_example_files_parse_and_resolve() {
    let tls = Config::from_file(&config_dir().join("dev-tls.toml")).expect("dev-tls.toml parses");
    assert!(tls.tls.enabled && tls.tls.require_client_cert);
    let auth = tls.resolve().expect("dev-tls.toml resolves");
    assert_eq!(auth.token_hashes.len(), 1);

    for node in 1..=3u64 {
        let file = format!("cluster-node{node}.toml");
        let config = Config::from_file(&config_dir().join(&file)).expect("parses");
        config
            .resolve()
            .unwrap_or_else(|err| panic!("{file}: {err}"));
        let cluster = config.cluster.expect("a [cluster] table");
        assert_eq!(cluster.node_id, node, "{file}");
        assert_eq!(
            cluster.voters().expect("members").len(),
            3,
            "{file}: the same three members"
        );
    }

    let prod =
        Config::from_file(&config_dir().join("production.toml")).expect("production.toml parses");
    assert_eq!(prod.storage.max_machine_versions, 50);
    // The secrets file does not exist on a build machine: resolving names it.
    let err = prod.resolve().expect_err("missing secrets file");
    assert!(
        err.to_string().contains("/etc/rstmdb/token-hashes.txt"),
        "{err}"
    );
}

#[test]
fn unknown_key_is_an_error_pointing_at_the_key() {
    let text = "[network]\nbind_adr = \"127.0.0.1:1\"\n";
    let (message, offset) = toml_error(text);
    assert!(message.contains("unknown field `bind_adr`"), "{message}");
    assert!(
        message.contains("bind_addr"),
        "accepted keys are listed: {message}"
    );
    assert_eq!(offset, Some(text.find("bind_adr").unwrap()));
}

#[test]
fn unknown_table_is_an_error() {
    let (message, _) = toml_error("[netwerk]\nbind_addr = \"127.0.0.1:1\"\n");
    assert!(message.contains("unknown field `netwerk`"), "{message}");
}

#[test]
fn wrong_type_is_an_error_at_the_value() {
    let text = "[storage]\nallow_flush_all = \"yes\"\n";
    let (message, offset) = toml_error(text);
    assert!(message.contains("bool"), "{message}");
    assert_eq!(offset, Some(text.find("\"yes\"").unwrap()));
}

#[test]
fn out_of_range_values_are_refused_with_the_range() {
    let (message, _) = toml_error("[network]\nmax_frame_bytes = 1024\n");
    assert!(message.contains("65536 to 16777216"), "{message}");
    let (message, _) = toml_error("[storage]\nwal_segment_size_mb = 0\n");
    assert!(message.contains("1 to 65536"), "{message}");
}

/// The watch delivery knobs reach the hub's limits from the file and from the environment, and
/// an out-of-range value names its range (or its variable).
#[test]
fn watch_delivery_settings_come_from_file_and_env() {
    let config = Config::from_toml(
        "[watch]\ndelivery_interval_ms = 0\ndelivery_cpu_percent = 100\n",
        "t",
    )
    .unwrap();
    let limits = rstmdb::assemble::watch_limits(&config.watch);
    assert_eq!(limits.delivery_interval_ms, 0);
    assert_eq!(limits.delivery_cpu_percent, 100);

    let mut config = Config::default();
    apply_env(
        &mut config,
        env_of(&[
            ("RSTMDB_WATCH_DELIVERY_INTERVAL_MS", "25"),
            ("RSTMDB_WATCH_DELIVERY_CPU_PERCENT", "40"),
        ]),
    )
    .unwrap();
    let limits = rstmdb::assemble::watch_limits(&config.watch);
    assert_eq!(limits.delivery_interval_ms, 25);
    assert_eq!(limits.delivery_cpu_percent, 40);

    let (message, _) = toml_error("[watch]\ndelivery_cpu_percent = 101\n");
    assert!(message.contains("0 to 100"), "{message}");
    let (message, _) = toml_error("[watch]\ndelivery_interval_ms = 5000\n");
    assert!(message.contains("0 to 1000"), "{message}");
    let err = apply_env(
        &mut Config::default(),
        env_of(&[("RSTMDB_WATCH_DELIVERY_CPU_PERCENT", "250")]),
    )
    .expect_err("250 percent");
    assert!(
        err.to_string()
            .contains("RSTMDB_WATCH_DELIVERY_CPU_PERCENT"),
        "{err}"
    );
}

/// `storage.idempotency_max_bytes` reaches the engine from the file and from the environment;
/// below its floor (0 included, which must not read as "unlimited") it is refused.
#[test]
fn idempotency_byte_budget_comes_from_file_and_env_with_a_floor() {
    let budget =
        |config: &Config| rstmdb::assemble::engine_config(&config.storage).idempotency_max_bytes;
    assert_eq!(budget(&Config::default()), 64 << 20);
    let config = Config::from_toml("[storage]\nidempotency_max_bytes = 2097152\n", "t").unwrap();
    assert_eq!(budget(&config), 2 << 20);
    let mut config = Config::default();
    apply_env(
        &mut config,
        env_of(&[("RSTMDB_IDEMPOTENCY_MAX_BYTES", "3145728")]),
    )
    .unwrap();
    assert_eq!(budget(&config), 3 << 20);

    let (message, _) = toml_error("[storage]\nidempotency_max_bytes = 0\n");
    assert!(message.contains("accepted: 1048576 to"), "{message}");
    let err = apply_env(
        &mut Config::default(),
        env_of(&[("RSTMDB_IDEMPOTENCY_MAX_BYTES", "1000")]),
    )
    .expect_err("below the floor");
    assert!(
        err.to_string().contains("RSTMDB_IDEMPOTENCY_MAX_BYTES"),
        "{err}"
    );
}

#[test]
fn fsync_policy_forms() {
    let parse = |v: &str| Config::from_toml(&format!("[storage]\nfsync_policy = {v}\n"), "t");
    assert_eq!(
        parse("\"never\"").unwrap().storage.fsync_policy,
        FsyncPolicySetting::Never
    );
    assert_eq!(
        parse("{ every_n = 100 }").unwrap().storage.fsync_policy,
        FsyncPolicySetting::EveryN(100)
    );
    assert_eq!(
        parse("{ every_ms = 10 }").unwrap().storage.fsync_policy,
        FsyncPolicySetting::EveryMs(10)
    );
    for bad in [
        "\"always\"",
        "{ every_n = 0 }",
        "{ every_n = 1, every_ms = 2 }",
        "{ every_s = 1 }",
    ] {
        let err = parse(bad).expect_err(bad).to_string();
        assert!(
            err.contains("every_write"),
            "{bad}: accepted values are listed: {err}"
        );
    }
}

#[test]
fn env_overrides_file_and_flags_style_values_parse() {
    let mut config = Config::from_toml("[storage]\nfsync_policy = \"never\"\n", "t").unwrap();
    apply_env(
        &mut config,
        env_of(&[
            ("RSTMDB_FSYNC_POLICY", "EVERY_N:7"),
            ("RSTMDB_BIND", "127.0.0.1:9999"),
            ("RSTMDB_ALLOW_FLUSH_ALL", "Yes"),
            ("RSTMDB_DATA", "/tmp/x"),
        ]),
    )
    .unwrap();
    assert_eq!(config.storage.fsync_policy, FsyncPolicySetting::EveryN(7));
    assert_eq!(config.network.bind_addr.port(), 9999);
    assert!(config.storage.allow_flush_all);
    assert_eq!(config.storage.data_dir, Path::new("/tmp/x"));
}

#[test]
fn bad_env_values_name_the_variable() {
    for (var, value) in [
        ("RSTMDB_FSYNC_POLICY", "every_n:"),
        ("RSTMDB_FSYNC_POLICY", "sometimes"),
        ("RSTMDB_ALLOW_FLUSH_ALL", "maybe"),
        ("RSTMDB_MAX_CONNECTIONS", "12x"),
        ("RSTMDB_BIND", "localhost"),
        ("RSTMDB_MAX_FRAME_BYTES", "100"),
    ] {
        let mut config = Config::default();
        let err = apply_env(&mut config, env_of(&[(var, value)])).expect_err(var);
        assert!(
            matches!(&err, ConfigError::Env { var: v, .. } if *v == var),
            "{var}={value}: {err}"
        );
        assert!(err.to_string().contains(var), "{err}");
    }
}

#[test]
fn auth_rules() {
    let mut config = Config::default();
    config.auth.required = true;
    let err = config
        .resolve()
        .expect_err("required without hashes")
        .to_string();
    assert!(err.contains("auth.required"), "{err}");

    // The spec's worked example hash, upper-cased: accepted and lowercased.
    let hash = TOKEN_HASH.to_ascii_uppercase();
    apply_env(&mut config, env_of(&[("RSTMDB_AUTH_TOKEN_HASH", &hash)])).unwrap();
    let auth = config.resolve().unwrap();
    assert_eq!(auth.token_hashes, vec![hash.to_ascii_lowercase()]);

    config.auth.token_hashes.push("abc".into());
    let err = config.resolve().expect_err("short hash").to_string();
    assert!(
        err.contains("auth.token_hashes[1]: not a SHA-256 hex digest"),
        "{err}"
    );
}

#[test]
fn secrets_file_lines_are_trimmed_and_comments_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.txt");
    let hash = TOKEN_HASH;
    std::fs::write(&path, format!("# tokens\n\n  {hash}  \n")).unwrap();
    let mut config = Config::default();
    config.auth.required = true;
    config.auth.secrets_file = Some(path);
    assert_eq!(
        config.resolve().unwrap().token_hashes,
        vec![hash.to_owned()]
    );
}

#[test]
fn tls_rules_name_the_missing_key() {
    let mut config = Config::default();
    config.tls.enabled = true;
    assert!(
        config
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("tls.cert_path")
    );
    config.tls.cert_path = Some("c.pem".into());
    assert!(
        config
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("tls.key_path")
    );
    config.tls.key_path = Some("k.pem".into());
    config.tls.require_client_cert = true;
    assert!(
        config
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("tls.client_ca_path")
    );
    config.tls.client_ca_path = Some("ca.pem".into());
    assert!(config.resolve().is_ok());
}

#[test]
fn replication_role_other_than_standalone_stops_start_up() {
    let config =
        Config::from_toml("[replication]\nrole = \"replica\"\nupstream = \"x\"\n", "t").unwrap();
    let err = config.resolve().unwrap_err().to_string();
    assert!(err.contains("replication.role"), "{err}");
}
