//! Snapshot and restore are exact: an engine stopped at any point, checkpointed to a state
//! directory, and restored from it emits — for the rest of the input — exactly the alerts (ids
//! and contents) that one uninterrupted engine emits. Input is simulated data with events
//! arriving slightly out of order, so the reorder buffer, open hours and days, live tokens and
//! open incidents are all non-trivial at the split points.

use std::collections::BTreeMap;

use scopewatch::alert::Alert;
use scopewatch::detect::{Engine, EngineConfig};
use scopewatch::event::Event;
use scopewatch::pipeline::{Checkpoint, StateDir};
use scopewatch::registry::Registry;
use scopewatch::simulate::{simulate, SimConfig};

fn lines(alerts: &[Alert]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| serde_json::to_string(a).expect("alert json"))
        .collect()
}

/// Feeds events; late ones are counted (the same ones in every run, as the order is the same).
fn feed(engine: &mut Engine, events: &[Event], out: &mut Vec<Alert>) -> usize {
    events
        .iter()
        .filter(|e| engine.push((*e).clone(), out).is_err())
        .count()
}

#[test]
fn a_restored_engine_continues_exactly() {
    let sim = simulate(&SimConfig { seed: 2, days: 21 });
    let registry = Registry::parse(&sim.registry_toml).expect("registry");
    let mut events = sim.events.clone();
    // Deliver every 5th pair swapped: out of order by seconds to minutes, within lateness.
    for i in (0..events.len().saturating_sub(1)).step_by(5) {
        events.swap(i, i + 1);
    }

    let mut whole = Engine::new(EngineConfig::default(), registry.clone());
    let mut expected = Vec::new();
    let late = feed(&mut whole, &events, &mut expected);
    let (end_state, end_baselines) = (whole.snapshot(), whole.baselines().clone());
    whole.finish(&mut expected);
    assert!(expected.len() > 20, "the data must raise alerts to compare");

    let n = events.len();
    // Stop in the learning period, mid-run, and near the end; the last one restores twice.
    let splits = [n / 50, n / 3, (2 * n) / 3, n - 10];
    let dir = tempfile::tempdir().expect("tempdir");
    for (round, &split) in splits.iter().enumerate() {
        let state = StateDir::new(dir.path().join(format!("round-{round}")));
        let mut first = Engine::new(EngineConfig::default(), registry.clone());
        let mut got = Vec::new();
        let mut late_seen = feed(&mut first, &events[..split], &mut got);
        let carried = first.carried_over();
        state
            .save(&Checkpoint {
                baselines: first.baselines().clone(),
                engine: first.snapshot(),
                positions: BTreeMap::from([("input".to_string(), split as u64)]),
            })
            .expect("save");
        drop(first);

        let loaded = state.load().expect("load").expect("a checkpoint");
        assert_eq!(loaded.positions["input"], split as u64);
        let mut resumed = Engine::restore(
            EngineConfig::default(),
            registry.clone(),
            loaded.baselines,
            loaded.engine,
        )
        .expect("restore");
        assert_eq!(resumed.carried_over(), carried, "split {split}");
        late_seen += feed(&mut resumed, &events[split..], &mut got);
        // Not only the alerts: the whole state at the end of input is the same.
        assert!(
            resumed.snapshot() == end_state,
            "split {split}: engine state at end of input differs"
        );
        assert!(
            *resumed.baselines() == end_baselines,
            "split {split}: baselines at end of input differ"
        );
        resumed.finish(&mut got);

        assert_eq!(late_seen, late, "split {split}: late events");
        assert_eq!(
            resumed.stats(),
            whole.stats(),
            "split {split}: engine counters"
        );
        let (want, have) = (lines(&expected), lines(&got));
        if let Some(i) = (0..want.len().min(have.len())).find(|&i| want[i] != have[i]) {
            panic!(
                "split {split}: alert {i} differs\n want {}\n have {}",
                want[i], have[i]
            );
        }
        assert_eq!(have.len(), want.len(), "split {split}: alert count");
    }
}

#[test]
fn a_state_of_another_version_is_refused() {
    let engine = Engine::new(EngineConfig::default(), Registry::default());
    let mut state = engine.snapshot();
    state.version += 1;
    let err = Engine::restore(
        EngineConfig::default(),
        Registry::default(),
        engine.baselines().clone(),
        state,
    )
    .err()
    .expect("refused")
    .to_string();
    assert!(err.contains("version"), "{err}");
}
