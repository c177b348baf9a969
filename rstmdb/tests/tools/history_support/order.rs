//! The ordering rules: each instance's chain, the log holding every acknowledged write, and
//! reads never going back in time.

use super::checker::{Checker, Key, Model, Visible, Write};
use super::report::Rule;
use super::{Call, OpId, Operation, Outcome, merged};
use std::collections::{BTreeMap, HashMap};

impl Checker<'_> {
    /// Per instance: a single chain from the create, following the machine and the merge.
    pub(super) fn check_chains(&mut self, model: Model<'_>) {
        let mut chains: BTreeMap<&str, Vec<(&Key, &Write<'_>)>> = BTreeMap::new();
        for (key, write) in &self.writes {
            if write.offset().is_some() {
                chains.entry(key.0.as_str()).or_default().push((key, write));
            }
        }
        let mut found = Vec::new();
        for (instance, mut chain) in chains {
            chain.sort_by_key(|(_, w)| w.offset());
            let mut prev: Option<(&Key, &Write<'_>)> = None;
            for &(key, write) in &chain {
                let mut ops = self.involved(write);
                if let Some((_, p)) = prev {
                    ops.extend(self.involved(p));
                }
                match (prev, write.is_create()) {
                    (Some((pkey, _)), true) => found.push((
                        Rule::BrokenChain,
                        instance,
                        format!("create {} follows write {}", key.1, pkey.1),
                        ops,
                    )),
                    (None, false) => found.push((
                        Rule::BrokenChain,
                        instance,
                        format!("write {} has no create before it", key.1),
                        ops,
                    )),
                    (Some((pkey, p)), false) => {
                        let (Some(prev_state), Some(state)) = (p.state(), write.state()) else {
                            continue;
                        };
                        if let Some(from) = write.started_from()
                            && from != prev_state
                        {
                            found.push((
                                Rule::BrokenChain,
                                instance,
                                format!(
                                    "write {} starts from {from} but {} left {prev_state}",
                                    key.1, pkey.1
                                ),
                                ops.clone(),
                            ));
                        }
                        if let Some(Call::Apply { event, payload, .. }) = write.call {
                            let expected = model(prev_state, event, payload);
                            if expected.as_deref() != Some(state) {
                                found.push((Rule::WrongTransition, instance, format!("{event} from {prev_state} gave {state}, the machine gives {expected:?}"), ops.clone()));
                            }
                            if let (Some(pctx), Some(ctx)) = (p.ctx(), write.ctx())
                                && merged(pctx, payload) != *ctx
                            {
                                found.push((
                                    Rule::WrongContext,
                                    instance,
                                    format!(
                                        "ctx of {} is not the ctx of {} merged with its payload",
                                        key.1, pkey.1
                                    ),
                                    ops.clone(),
                                ));
                            }
                        }
                    }
                    (None, true) => {}
                }
                prev = Some((key, write));
            }
            // Real time: acknowledged before another was invoked => lower offset.
            for &(key, write) in &chain {
                let (Some(offset), Some(invoked)) = (write.offset(), write.first_invoke) else {
                    continue;
                };
                for &(other_key, other) in &chain {
                    if let (Some(acked), Some(other_offset)) = (other.acked_at, other.offset())
                        && acked < invoked
                        && other_offset > offset
                        && !write.baseline
                    {
                        let mut ops = self.involved(write);
                        ops.extend(self.involved(other));
                        found.push((Rule::RealTimeOrder, instance, format!("{} was acknowledged before {} was invoked but has the higher offset", other_key.1, key.1), ops));
                    }
                }
            }
        }
        let found: Vec<(Rule, String, String, Vec<OpId>)> = found
            .into_iter()
            .map(|(rule, instance, message, ops)| (rule, instance.to_string(), message, ops))
            .collect();
        for (rule, instance, message, ops) in found {
            self.flag(rule, &instance, message, ops);
        }
    }

    /// Every acknowledged write is in every later WAL read that covers its offset.
    pub(super) fn check_log(&mut self) {
        let mut found = Vec::new();
        for snapshot in &self.history.wal {
            let at: HashMap<u64, &super::LoggedWrite> =
                snapshot.records.iter().map(|r| (r.offset, r)).collect();
            for ((instance, key), write) in &self.writes {
                let (Some(acked), Some(offset)) = (write.acked_at, write.offset()) else {
                    continue;
                };
                if acked >= snapshot.at_us || offset < snapshot.oldest_offset {
                    continue;
                }
                let present = at.get(&offset).is_some_and(|r| {
                    r.key.as_deref() == Some(key.as_str()) && &r.instance == instance
                });
                if !present {
                    found.push((
                        instance.clone(),
                        format!(
                            "acknowledged write {key} @{offset} is not in the log read at {}us",
                            snapshot.at_us
                        ),
                        self.involved(write),
                    ));
                }
            }
        }
        for (instance, message, ops) in found {
            self.flag(Rule::LostAck, &instance, message, ops);
        }
    }

    /// No read older than what was acknowledged or read before it was invoked.
    pub(super) fn check_reads(&mut self) {
        // Per instance: (time it became visible, offset, op that showed it).
        let mut visible: HashMap<&str, Vec<Visible>> = HashMap::new();
        for ((instance, _), write) in &self.writes {
            if let (Some(acked), Some(offset)) = (write.acked_at, write.offset()) {
                let op = write.ops.iter().copied().find(|id| {
                    self.history.ops[*id]
                        .outcome
                        .as_ref()
                        .is_some_and(Outcome::is_ok)
                });
                visible
                    .entry(instance)
                    .or_default()
                    .push((acked, offset, op));
            }
        }
        let reads: Vec<(OpId, &Operation, u64)> = self
            .history
            .ops
            .iter()
            .enumerate()
            .filter_map(|(id, op)| match &op.outcome {
                Some(Outcome::Read {
                    last_wal_offset, ..
                }) => Some((id, op, *last_wal_offset)),
                _ => None,
            })
            .collect();
        for (id, op, offset) in &reads {
            visible.entry(op.call.instance()).or_default().push((
                op.complete_us,
                *offset,
                Some(*id),
            ));
        }
        let mut found = Vec::new();
        for (id, op) in self.history.ops.iter().enumerate() {
            let not_found = matches!(&op.outcome, Some(Outcome::Failed { code }) if code == "INSTANCE_NOT_FOUND");
            if !(matches!(op.call, Call::Get { .. }) && not_found) {
                continue;
            }
            let Some(events) = visible.get(op.call.instance()) else {
                continue;
            };
            if let Some((_, existed, by)) = events.iter().find(|(t, _, _)| *t < op.invoke_us) {
                let mut ops = vec![id];
                ops.extend(*by);
                found.push((
                    op.call.instance().to_owned(),
                    format!("instance not found after @{existed} was visible"),
                    ops,
                ));
            }
        }
        for (id, op, offset) in reads {
            let Some(events) = visible.get(op.call.instance()) else {
                continue;
            };
            let newest = events
                .iter()
                .filter(|(t, _, _)| *t < op.invoke_us)
                .max_by_key(|(_, o, _)| *o);
            if let Some((_, newer, by)) = newest
                && *newer > offset
            {
                let mut ops = vec![id];
                ops.extend(*by);
                found.push((
                    op.call.instance().to_owned(),
                    format!("read @{offset} after @{newer} was already visible"),
                    ops,
                ));
            }
        }
        for (instance, message, ops) in found {
            self.flag(Rule::StaleRead, &instance, message, ops);
        }
    }
}
