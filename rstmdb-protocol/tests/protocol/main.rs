//! The protocol crate's tests, in one binary: frame test vectors, codec properties, number
//! round trips, param validation and every op example of the spec (`../fixtures/`).

mod codec_props;
mod frame_vectors;
mod number_round_trip;
mod param_validation;
mod spec_examples;
