//! Machine definitions (§7.1–7.3, §7.10) and the guard language (§7.4–7.12).
//!
//! - [`guard`]: lexer, parser (strict, byte spans), printer and the allocation-free evaluator.
//! - [`definition`]: the JSON definition — shape checks, validation, normalisation, checksum.
//! - [`json_span`]: positions in the definition's source text, for diagnostics.

pub mod definition;
pub mod guard;
pub mod json_span;
