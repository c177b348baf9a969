//! Params of the connection ops: HELLO (§4.1) and AUTH (§4.2).

use serde::Serialize;
use serde_json::{Map, Value};

use super::FromParams;
use super::reader::ParamReader;
use crate::error::RcpError;

/// HELLO params. `protocol_version` is parsed as any u16; refusing versions other than 1 with
/// `UNSUPPORTED_PROTOCOL` is the server's job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HelloParams {
    pub protocol_version: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Preferred wire modes, most preferred first (see [`crate::WireMode::choose`]).
    pub wire_modes: Vec<String>,
    pub features: Vec<String>,
}

impl FromParams for HelloParams {
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError> {
        let p = ParamReader::new(params);
        Ok(Self {
            protocol_version: p.u16("protocol_version")?,
            client_name: p.opt_string("client_name")?,
            wire_modes: p.opt_string_list("wire_modes")?,
            features: p.opt_string_list("features")?,
        })
    }
}

/// AUTH params. Whether `method` is `"bearer"` and `token` non-empty are AUTH_FAILED checks the
/// server makes after these type checks.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct AuthParams {
    pub method: String,
    pub token: String,
}

/// Keeps the token out of logs.
impl std::fmt::Debug for AuthParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthParams")
            .field("method", &self.method)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl FromParams for AuthParams {
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError> {
        let p = ParamReader::new(params);
        Ok(Self {
            method: p.string("method")?,
            token: p.string("token")?,
        })
    }
}
