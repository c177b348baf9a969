//! The name checks of §7.3 steps 2 and 3, run on a definition whose shape is already known.

use super::error::{DefinitionError, DefinitionErrorKind};
use super::index::{CandidateIndex, StateIndex};
use super::shape::DefinitionShape;
use super::{DefinitionIndex, MachineDefinition, Transition};
use crate::dsl::guard::Guard;

pub(super) fn validate(shape: DefinitionShape<'_>) -> Result<MachineDefinition, DefinitionError> {
    let states = StateIndex::new(&shape.states);

    let initial_id = states.id(shape.initial).ok_or_else(|| {
        DefinitionError::unknown_state(
            DefinitionErrorKind::UnknownInitial,
            "/initial".to_owned(),
            shape.initial,
        )
    })?;

    let mut candidates = CandidateIndex::new(states.len());
    let mut transitions = Vec::with_capacity(shape.transitions.len());
    for (i, transition) in shape.transitions.iter().enumerate() {
        let to_id = states.id(transition.to).ok_or_else(|| {
            DefinitionError::unknown_state(
                DefinitionErrorKind::UnknownTarget,
                format!("/transitions/{i}/to"),
                transition.to,
            )
        })?;

        let guard = transition
            .guard
            .map(|text| {
                Guard::parse(text).map_err(|error| DefinitionError::Guard {
                    pointer: format!("/transitions/{i}/guard"),
                    guard: text.to_owned(),
                    error,
                })
            })
            .transpose()?;

        let from_ids = transition
            .from
            .names()
            .iter()
            .enumerate()
            .map(|(k, &name)| {
                states.id(name).ok_or_else(|| {
                    DefinitionError::unknown_state(
                        DefinitionErrorKind::UnknownSource,
                        transition.from.pointer(i, k),
                        name,
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        // The shape pass capped the transition count at `u32::MAX`.
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        for &state in &from_ids {
            if let Some(earlier) = candidates.unguarded(state, transition.event) {
                return Err(DefinitionError::unreachable(i, earlier as usize));
            }
        }
        for &state in &from_ids {
            candidates.push(state, transition.event, index, guard.is_some());
        }

        transitions.push(Transition {
            from: transition
                .from
                .names()
                .iter()
                .map(|&name| name.to_owned())
                .collect(),
            event: transition.event.to_owned(),
            to: transition.to.to_owned(),
            to_id,
            guard,
        });
    }

    Ok(MachineDefinition {
        states: shape.states.iter().map(|&name| name.to_owned()).collect(),
        initial: shape.initial.to_owned(),
        transitions,
        meta: shape.meta.cloned(),
        index: DefinitionIndex {
            states,
            initial_id,
            candidates,
        },
    })
}
