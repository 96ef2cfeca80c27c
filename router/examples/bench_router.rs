//! The router for `bench/router/run.sh`: serves one existing Unix-socket
//! backend as app `bench`, instance `a1`, on 127.0.0.1:PORT.
//!
//! `cargo run --release -p agentfs-router --example bench_router -- HOME PORT`
//! expects `HOME/run/bench_a1.sock` to be listening already; it takes the
//! socket's lock and writes its sidecar, as the shim would, then serves until killed.
//! TLS too, on the same port, with a CA made in HOME.

use std::path::PathBuf;

use agentfs_contract::sidecar::{now_rfc3339, Kind, Sidecar, VERSION};
use agentfs_contract::{layout, liveness, naming};
use agentfs_router::{listen, Config, Listeners, Router};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let home = PathBuf::from(args.next().ok_or("usage: bench_router HOME PORT")?);
    let port: u16 = args
        .next()
        .ok_or("usage: bench_router HOME PORT")?
        .parse()?;
    let run_dir = layout::run_dir(&home);
    let socket = naming::socket_path(&run_dir, "bench", "a1", None)?;
    let _lock = liveness::try_acquire(&naming::lock_path(&socket))?.ok_or("lock is held")?;
    let car = Sidecar {
        version: VERSION,
        kind: Kind::Manual,
        app: "bench".into(),
        instance: "a1".into(),
        pid: std::process::id(),
        socket: socket.clone(),
        address: "127.0.0.1".into(),
        port: 8080,
        primary: true,
        listening: true,
        hostname: naming::instance_hostname("bench", "a1"),
        argv: std::env::args().collect(),
        cwd: "/".into(),
        started_at: now_rfc3339(),
        target: None,
        not_routed: None,
    };
    car.write_atomic(&naming::sidecar_path(&socket))?;
    let listeners = Listeners {
        http: listen::bind_addrs(&["127.0.0.1".parse()?], port)?,
        control: None,
    };
    // ROUTER_THREADS overrides the worker count the router recommends.
    let workers = std::env::var("ROUTER_THREADS")
        .ok()
        .and_then(|n| n.parse().ok());
    let runtime = agentfs_router::runtime(workers)?;
    runtime.block_on(async {
        let config = Config {
            tls: Some(agentfs_router::tls::config_for_home(&home)?),
            ..Config::for_home(&home)
        };
        let router = Router::start(config, listeners)?;
        let mut routes = router.routes();
        routes.wait_for(|t| !t.apps.is_empty()).await?;
        println!("ready");
        std::future::pending::<()>().await;
        Ok(())
    })
}
