//! The container files expose nothing beyond the host and ship no well-known password: every
//! port compose publishes is bound to 127.0.0.1, Grafana's admin password must be set, the
//! image's metrics endpoint is reachable from the other containers, and data directories,
//! certificates and keys stay out of commits and build contexts.

use std::path::{Path, PathBuf};

fn repo_file(path: &str) -> (PathBuf, String) {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    let text = std::fs::read_to_string(&full)
        .unwrap_or_else(|err| panic!("read {}: {err}", full.display()));
    (full, text)
}

/// The items of every `ports:` list in a compose file, unquoted. A line-level reading is enough
/// for the file's plain block style, and a list in another style shows up as a failure here
/// (no items found) rather than passing unread.
fn published_ports(compose: &str) -> Vec<String> {
    let mut ports = Vec::new();
    let mut in_ports: Option<usize> = None;
    for line in compose.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(ports_indent) = in_ports {
            if let Some(item) = trimmed.strip_prefix("- ").filter(|_| indent > ports_indent) {
                ports.push(item.trim_matches(['"', '\'']).to_owned());
                continue;
            }
            in_ports = None;
        }
        if trimmed == "ports:" {
            in_ports = Some(indent);
        } else if trimmed.starts_with("ports:") {
            panic!("an inline ports list is not checked: {line}");
        }
    }
    ports
}

#[test]
fn compose_publishes_every_port_on_loopback_only() {
    for (file, count) in [
        ("docker/compose.yaml", 4),
        ("docker/compose.cluster.yaml", 6),
    ] {
        let (path, compose) = repo_file(file);
        let ports = published_ports(&compose);
        assert_eq!(ports.len(), count, "{}: ports {ports:?}", path.display());
        for port in &ports {
            assert!(
                port.starts_with("127.0.0.1:"),
                "{}: {port} is published on every interface",
                path.display()
            );
        }
    }
}

#[test]
fn grafana_has_no_default_admin_password() {
    let (path, compose) = repo_file("docker/compose.yaml");
    let setting = compose
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("GF_SECURITY_ADMIN_PASSWORD:"))
        .unwrap_or_else(|| panic!("{}: no GF_SECURITY_ADMIN_PASSWORD", path.display()));
    // `${VAR:?message}` makes compose stop when the variable is unset or empty.
    assert!(
        setting.contains("${GRAFANA_ADMIN_PASSWORD:?"),
        "{}: {setting}",
        path.display()
    );
    assert!(
        !compose.contains(":-admin"),
        "a default admin password is back"
    );
}

#[test]
fn the_image_serves_metrics_on_every_interface_of_the_container() {
    let (path, dockerfile) = repo_file("docker/Dockerfile");
    assert!(
        dockerfile.contains("RSTMDB_METRICS_BIND=0.0.0.0:9090"),
        "{}: Prometheus in another container could not scrape a loopback-only endpoint",
        path.display()
    );
}

#[test]
fn data_directories_certificates_and_keys_are_ignored_by_git_and_docker() {
    for (file, wanted) in [
        (".gitignore", &["/data*/", "certs/", "*.key", "*.pem"][..]),
        (
            ".dockerignore",
            &["data*", "**/certs", "**/*.key", "**/*.pem"],
        ),
        (
            "docker/Dockerfile.dockerignore",
            &["data*", "**/certs", "**/*.key", "**/*.pem"],
        ),
    ] {
        let (path, text) = repo_file(file);
        let patterns: Vec<&str> = text.lines().map(str::trim).collect();
        for pattern in wanted {
            assert!(
                patterns.contains(pattern),
                "{} does not exclude {pattern}",
                path.display()
            );
        }
    }
}
