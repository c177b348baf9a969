//! Server configuration (spec §9): built-in defaults < TOML file < `RSTMDB_*` environment
//! variables < command-line flags.
//!
//! - [`model`]: the typed configuration tree, its defaults and the value checks that run while the
//!   TOML file is read (so errors point at the key);
//! - [`fsync`]: the `storage.fsync_policy` value forms;
//! - [`cluster`]: the `[cluster]` table (spec §12.4) and its rules;
//! - [`env`]: environment-variable overrides, each error naming its variable;
//! - [`resolve`]: cross-field rules and the auth token hashes (config, env, secrets file);
//! - [`error`]: `ConfigError`, rendered by miette in the binary.

mod cluster;
mod env;
mod error;
mod fsync;
mod model;
mod resolve;

pub use cluster::{ClusterConfig, ReadConsistency};
pub use env::apply_env;
pub use error::{ConfigError, TomlError};
pub use fsync::FsyncPolicySetting;
pub use model::{
    AuthConfig, CompactionConfig, Config, MetricsConfig, NetworkConfig, ReplicationConfig,
    StorageConfig, TlsConfig, WatchConfig,
};
pub use resolve::ResolvedAuth;

use std::path::Path;

impl Config {
    /// Parses a TOML document. `origin` names it in error messages (usually the file path).
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|err| ConfigError::toml(origin, text, err))
    }

    /// Reads and parses a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, &path.display().to_string())
    }
}
