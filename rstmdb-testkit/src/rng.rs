//! A seeded SplitMix64 for tests that make random choices: a failure names its seed, and the
//! same seed replays the same choices. Statistical quality is irrelevant here.

/// SplitMix64 (Steele, Lea and Flood): one addition and a mix per number.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..high` (`low` when the range is empty).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        low + self.next_u64() % (high - low)
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.range(0, 100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        let len = items.len() as u64;
        (len > 0).then(|| &items[self.range(0, len) as usize])
    }

    /// An independent generator for a sub-task.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }

    /// `len` bytes: the next numbers in little-endian order, the last one cut short.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// A fresh seed per run (std's `RandomState` is randomly keyed).
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::process::id())
}

/// The seed in the environment variable `var`, or a fresh one when it is unset. Printed either
/// way, with the variable that replays it, on stderr (which the harness shows for a failing
/// test). Panics when `var` is set but is not a number.
pub fn seed_from_env(var: &str) -> u64 {
    let seed = match std::env::var(var) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}={text:?} is not a seed (an unsigned number)")),
        Err(_) => random_seed(),
    };
    eprintln!("seed {seed} (replay with {var}={seed})");
    seed
}
