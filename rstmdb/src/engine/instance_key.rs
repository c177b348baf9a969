//! The instance map's key: the id, shared with the index (`Arc<str>`), plus its first eight
//! bytes inline.
//!
//! At a million instances every search of the map is a chain of cache misses, and comparing
//! with a plain `Arc<str>` key reads each compared key's allocation: one more miss per
//! comparison. Comparing the inline prefixes first settles almost every comparison of ids that
//! differ early (generated UUIDs, most user ids) without that read; ids that share their first
//! eight bytes fall back to the full comparison. The order is byte order either way (see
//! [`prefix_of`]), so LIST_INSTANCES pages and the image are unchanged.
//!
//! Lookups by `&str` go through [`KeyView`]: the map borrows its keys as `dyn KeyView`, and a
//! [`Probe`] (a borrowed id with its prefix) is one too, so a search never allocates.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::sync::Arc;

/// An id's first eight bytes, big-endian, zero-padded: comparing two prefixes orders two ids
/// as their bytes do, except that equal prefixes leave the order open (e.g. `"ab"` and
/// `"ab\0"`, or two ids that only differ after byte eight).
fn prefix_of(id: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let len = id.len().min(8);
    bytes[..len].copy_from_slice(&id.as_bytes()[..len]);
    u64::from_be_bytes(bytes)
}

/// What the map compares: a prefix and the full id.
pub(crate) trait KeyView {
    fn prefix(&self) -> u64;
    fn text(&self) -> &str;
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for dyn KeyView + '_ {}

impl PartialOrd for dyn KeyView + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn KeyView + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.prefix()
            .cmp(&other.prefix())
            .then_with(|| self.text().cmp(other.text()))
    }
}

/// A stored key.
#[derive(Debug, Clone)]
pub(crate) struct InstanceKey {
    prefix: u64,
    id: Arc<str>,
}

impl InstanceKey {
    pub fn new(id: Arc<str>) -> InstanceKey {
        InstanceKey {
            prefix: prefix_of(&id),
            id,
        }
    }

    /// The id, shared with whoever else holds it (the index, the change log).
    pub fn id(&self) -> &Arc<str> {
        &self.id
    }
}

impl KeyView for InstanceKey {
    fn prefix(&self) -> u64 {
        self.prefix
    }

    fn text(&self) -> &str {
        &self.id
    }
}

impl<'a> Borrow<dyn KeyView + 'a> for InstanceKey {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

/// `Ord` must agree with the borrowed form's, which `BTreeMap` compares on lookups.
impl Ord for InstanceKey {
    fn cmp(&self, other: &Self) -> Ordering {
        (self as &dyn KeyView).cmp(other as &dyn KeyView)
    }
}

impl PartialOrd for InstanceKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for InstanceKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for InstanceKey {}

/// A borrowed id to look up.
pub(crate) struct Probe<'a> {
    prefix: u64,
    id: &'a str,
}

impl<'a> Probe<'a> {
    pub fn new(id: &'a str) -> Probe<'a> {
        Probe {
            prefix: prefix_of(id),
            id,
        }
    }

    pub fn view(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

impl KeyView for Probe<'_> {
    fn prefix(&self) -> u64 {
        self.prefix
    }

    fn text(&self) -> &str {
        self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstmdb_testkit::rng::Rng;

    /// Ids that stress the prefix: empty, shorter than eight bytes, NUL bytes, shared first
    /// eight bytes, bytes above 0x7f.
    fn tricky_id(rng: &mut Rng) -> String {
        let alphabet = [
            "", "\0", "a", "b", "ab", "é", "\u{7f}", "zzzzzzzz", "order-00",
        ];
        (0..rng.range(0, 4))
            .filter_map(|_| rng.pick(&alphabet).copied())
            .collect()
    }

    #[test]
    fn keys_order_as_their_bytes_do() {
        let seed = rstmdb_testkit::rng::seed_from_env("RSTMDB_KEY_SEED");
        let mut rng = Rng::new(seed);
        for _ in 0..20_000 {
            let (a, b) = (tricky_id(&mut rng), tricky_id(&mut rng));
            let (ka, kb) = (
                InstanceKey::new(a.as_str().into()),
                InstanceKey::new(b.as_str().into()),
            );
            let expected = a.as_bytes().cmp(b.as_bytes());
            assert_eq!(ka.cmp(&kb), expected, "{a:?} vs {b:?} (seed {seed})");
            let (pa, pb) = (Probe::new(&a), Probe::new(&b));
            assert_eq!(
                pa.view().cmp(kb.borrow()),
                expected,
                "{a:?} vs {b:?} (seed {seed})"
            );
            assert_eq!(
                pa.view().cmp(pb.view()),
                expected,
                "{a:?} vs {b:?} (seed {seed})"
            );
        }
    }
}
