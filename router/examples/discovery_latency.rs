//! Measures how long after a sidecar's rename its listener is routable.
//!
//! `cargo run --release -p agentfs-router --example discovery_latency -- [N]`
//!
//! For each of N rounds: bind a Unix socket in a fresh run dir, take its
//! lock, write the sidecar atomically (temp file + rename, as the shim does),
//! and time from the rename until the router's route table holds it. Then
//! remove it and wait until the route is gone. Prints p50, p99 and max.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentfs_contract::sidecar::{now_rfc3339, Kind, Sidecar, VERSION};
use agentfs_contract::{layout, liveness, naming};
use agentfs_router::{Config, Listeners, Router, Table};

fn has(table: &Arc<Table>, instance: &str) -> bool {
    table
        .apps
        .get("lat")
        .is_some_and(|a| a.contains_key(instance))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(200);
    let home = std::env::temp_dir().join(format!("afr-lat-{}", std::process::id()));
    let run_dir = layout::run_dir(&home);
    layout::ensure_private_dir(&run_dir)?;
    let router = Router::start(Config::for_home(&home), Listeners::default())?;
    let mut routes = router.routes();
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let instance = format!("i{round}");
        let socket = naming::socket_path(&run_dir, "lat", &instance, None)?;
        let lock = liveness::try_acquire(&naming::lock_path(&socket))?.ok_or("lock held")?;
        let listener = std::os::unix::net::UnixListener::bind(&socket)?;
        let car = Sidecar {
            version: VERSION,
            kind: Kind::Shim,
            app: "lat".into(),
            instance: instance.clone(),
            pid: std::process::id(),
            socket: socket.clone(),
            address: "127.0.0.1".into(),
            port: 3000,
            primary: true,
            listening: true,
            hostname: naming::instance_hostname("lat", &instance),
            argv: vec![],
            cwd: "/".into(),
            started_at: now_rfc3339(),
            target: None,
            not_routed: None,
        };
        // write_atomic ends with the rename: time from just before it returns.
        let start = Instant::now();
        car.write_atomic(&naming::sidecar_path(&socket))?;
        let renamed = Instant::now();
        tokio::time::timeout(
            Duration::from_secs(5),
            routes.wait_for(|t| has(t, &instance)),
        )
        .await??;
        samples.push((Instant::now() - renamed, renamed - start));
        drop(listener);
        drop(lock);
        liveness::remove_if_stale(&socket)?;
        tokio::time::timeout(
            Duration::from_secs(5),
            routes.wait_for(|t| !has(t, &instance)),
        )
        .await??;
    }
    router.shutdown().await;
    let _ = std::fs::remove_dir_all(&home);
    let mut lat: Vec<Duration> = samples.iter().map(|s| s.0).collect();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "discovery latency over {rounds} sidecar renames: p50 {:?}, p99 {:?}, max {:?}",
        pct(0.50),
        pct(0.99),
        lat[lat.len() - 1]
    );
    Ok(())
}
