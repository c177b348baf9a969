//! The engine, machine definitions and guards, in this process and without I/O: the rules of
//! each command, idempotency, the image and replay, the model-based property tests, the guard
//! language, and the heap the engine and guard evaluation use (measured per thread, so other
//! tests of this binary do not disturb the count).

mod definition_checksum;
mod definition_json_span;
mod definition_properties;
mod definition_validation;
mod engine_apply;
mod engine_cut;
mod engine_idempotency;
mod engine_image;
mod engine_instances;
mod engine_list_walk;
mod engine_memory;
mod engine_model;
mod engine_put_machine;
mod engine_record;
mod engine_replay;
mod engine_undo;
mod engine_worked_example;
mod guard_eval_allocates_nothing;
mod guard_evaluation;
mod guard_lexical_rules;
mod guard_printing;
mod guard_properties;
mod guard_spec_examples;

mod engine_model_support;
mod engine_support;
