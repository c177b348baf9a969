//! What `/health` answers: 200 only while the server accepts requests.

use std::sync::atomic::{AtomicU8, Ordering};

/// The server's life cycle as the health endpoint reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    /// Opening the data directory: checkpoint load and WAL replay.
    Recovering,
    /// Accepting requests.
    Serving,
    /// A termination signal arrived: finishing requests in flight.
    ShuttingDown,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Recovering => "recovering",
            HealthState::Serving => "serving",
            HealthState::ShuttingDown => "shutting_down",
        }
    }
}

/// Shared between `serve` (which moves it forward) and the HTTP endpoint (which reads it).
#[derive(Debug)]
pub struct Health(AtomicU8);

impl Default for Health {
    fn default() -> Self {
        Health(AtomicU8::new(Self::code(HealthState::Recovering)))
    }
}

impl Health {
    fn code(state: HealthState) -> u8 {
        match state {
            HealthState::Recovering => 0,
            HealthState::Serving => 1,
            HealthState::ShuttingDown => 2,
        }
    }

    pub fn set(&self, state: HealthState) {
        self.0.store(Self::code(state), Ordering::Release);
    }

    pub fn get(&self) -> HealthState {
        match self.0.load(Ordering::Acquire) {
            1 => HealthState::Serving,
            2 => HealthState::ShuttingDown,
            _ => HealthState::Recovering,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_starts_recovering_and_follows_the_life_cycle() {
        let health = Health::default();
        assert_eq!(health.get(), HealthState::Recovering);
        health.set(HealthState::Serving);
        assert_eq!(health.get(), HealthState::Serving);
        health.set(HealthState::ShuttingDown);
        assert_eq!(health.get(), HealthState::ShuttingDown);
    }
}
