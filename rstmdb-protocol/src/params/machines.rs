//! Params of PUT_MACHINE (§4.7) and GET_MACHINE (§4.8).

use serde::Serialize;
use serde_json::{Map, Value};

use super::FromParams;
use super::reader::ParamReader;
use crate::error::RcpError;

/// PUT_MACHINE params.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PutMachineParams {
    pub machine: String,
    pub version: u32,
    /// Kept as any JSON value: a definition that is present but not an object is reported by
    /// the definition validator as `invalid_definition` (kind `not_object`), not here (§4.7).
    pub definition: Value,
}

impl FromParams for PutMachineParams {
    /// `checksum` is accepted and ignored whatever its value, so it is not read.
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError> {
        let p = ParamReader::new(params);
        Ok(Self {
            machine: p.string("machine")?,
            version: p.u32("version")?,
            definition: p.required("definition")?.clone(),
        })
    }
}

/// GET_MACHINE params; there is no "latest" form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GetMachineParams {
    pub machine: String,
    pub version: u32,
}

impl FromParams for GetMachineParams {
    fn from_params(params: &Map<String, Value>) -> Result<Self, RcpError> {
        let p = ParamReader::new(params);
        Ok(Self {
            machine: p.string("machine")?,
            version: p.u32("version")?,
        })
    }
}
