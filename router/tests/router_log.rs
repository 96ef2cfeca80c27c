//! The router's log stays bounded whatever the run directory does: a
//! sidecar rewritten again and again with a new fault each time is logged a
//! few times, and many entries going stale over many reads are told in a
//! few summary lines.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use agentfs_contract::naming;
use agentfs_contract::sidecar::{self, Sidecar};
use agentfs_router::reports::{LINES_PER_FILE, REMOVALS_EVERY};
use common::log::Log;
use common::*;

/// A live instance whose sidecar the test flips between listening and not:
/// once the route table shows a flip, the router has read every change of
/// the run directory made before it.
struct Pace {
    path: std::path::PathBuf,
    car: Sidecar,
    _held: Held,
}

impl Pace {
    async fn start(home: &Home, router: &TestRouter) -> Pace {
        let held = Held::instances(home, "pace", 1);
        router.wait_instances("pace", 1).await;
        let socket = naming::socket_path(&home.run_dir(), "pace", "i0", None).unwrap();
        let path = naming::sidecar_path(&socket);
        let car = Sidecar::parse(&fs::read(&path).unwrap()).unwrap();
        Pace {
            path,
            car,
            _held: held,
        }
    }

    async fn flip(&mut self, router: &TestRouter) {
        self.car.listening = !self.car.listening;
        self.car.write_atomic(&self.path).unwrap();
        let routed = self.car.listening;
        router
            .wait_routes("the pace instance to follow its sidecar", |t| {
                t.apps.contains_key("pace") == routed
            })
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_whose_fault_keeps_changing_is_logged_a_few_times() {
    let log = Log::capture();
    let home = Home::new();
    let router = TestRouter::start(&home);
    let mut pace = Pace::start(&home, &router).await;
    let bad = home.run_dir().join("flip_a1.json");
    let mut future = serde_json::to_value(&pace.car).unwrap();
    future["version"] = 2.into();
    let future = future.to_string();
    let faults: [&[u8]; 2] = [b"{\"version\": 1, nope", future.as_bytes()];
    for n in 0..200 {
        sidecar::write_atomic(&bad, faults[n % 2]).unwrap();
        pace.flip(&router).await;
    }
    let needle = bad.display().to_string();
    let lines = log.lines_with(&needle);
    assert_eq!(lines.len() as u32, LINES_PER_FILE, "{lines:#?}");
    assert!(
        lines[lines.len() - 1].contains("not logged until it is removed"),
        "{lines:#?}"
    );

    // Gone and back: a new file, logged again.
    fs::remove_file(&bad).unwrap();
    pace.flip(&router).await;
    sidecar::write_atomic(&bad, faults[0]).unwrap();
    pace.flip(&router).await;
    assert_eq!(log.lines_with(&needle).len() as u32, LINES_PER_FILE + 1);
    router.stop().await;
}

/// The sum of `name=N` over `lines`.
fn sum_of(lines: &[String], name: &str) -> u64 {
    let key = format!("{name}=");
    lines
        .iter()
        .filter_map(|line| line.split_whitespace().find_map(|w| w.strip_prefix(&key)))
        .filter_map(|n| n.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_stale_entries_over_many_reads_are_told_in_a_few_lines() {
    const ROUNDS: usize = 5;
    const PER_ROUND: usize = 40;
    let log = Log::capture();
    let home = Home::new();
    // Full reads every 100 ms as well as the file events: removals are
    // found by both, over many reads.
    let router = TestRouter::start_with(&home, |config| {
        config.reconcile = Duration::from_millis(100);
    });
    let started = Instant::now();
    let run_dir = home.run_dir();
    for round in 0..ROUNDS {
        let app = format!("churn{round}");
        let held = Held::instances(&home, &app, PER_ROUND);
        router.wait_instances(&app, PER_ROUND).await;
        // Their owner is gone: every entry is stale.
        drop(held);
        router.wait_instances(&app, 0).await;
        wait_until("the stale files removed", || {
            file_names(&run_dir).is_empty()
        })
        .await;
    }
    // At most one line at once and one per REMOVALS_EVERY after it.
    let most = |since: Instant| 2 + since.elapsed().as_secs() / REMOVALS_EVERY.as_secs();
    let lines = log.lines_with("churn");
    assert!(lines.len() as u64 <= most(started), "{lines:#?}");
    let all = (ROUNDS * PER_ROUND) as u64;
    let told = |lines: &[String]| sum_of(lines, "stale") + sum_of(lines, "closed");
    wait_until("every removal told", || {
        told(&log.lines_with("churn")) == all
    })
    .await;
    let lines = log.lines_with("churn");
    assert!(lines.len() as u64 <= most(started), "{lines:#?}");
    assert!(lines.iter().all(|l| l.contains("removed")), "{lines:#?}");
    router.stop().await;
}
