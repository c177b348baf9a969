//! rstmdb-client: the RCP wire protocol and an async client.
#![forbid(unsafe_code)]
