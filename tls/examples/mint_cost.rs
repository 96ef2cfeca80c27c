//! What a leaf costs: minting one for a name first asked for, and handing
//! out a cached one, in process. `bench/tls/handshake.sh` runs it beside
//! the whole first handshake to a new name.
//!
//! `cargo run --release -p agentfs-tls --example mint_cost -- [NAMES]`

use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use agentfs_tls::{Ca, Leaves, Subject};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let names: usize = std::env::args().nth(1).map_or(Ok(1000), |n| n.parse())?;
    let home = std::env::temp_dir().join(format!("afs-mint-{}", std::process::id()));
    std::fs::create_dir_all(&home)?;
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700))?;
    let started = Instant::now();
    let ca = Ca::open_or_create(&home)?;
    let made_ca = started.elapsed();
    let leaves = Leaves::new(ca)?;
    let subjects: Vec<Subject> = (0..names)
        .map(|i| Subject::for_sni(&format!("{i}.a1.bench.localhost")).expect("a localhost name"))
        .collect();
    let mut minted = Vec::with_capacity(names);
    for subject in &subjects {
        let start = Instant::now();
        leaves.get(subject)?;
        minted.push(start.elapsed().as_secs_f64() * 1e6);
    }
    let mut cached = Vec::with_capacity(names);
    for subject in &subjects {
        let start = Instant::now();
        leaves.get(subject)?;
        cached.push(start.elapsed().as_secs_f64() * 1e6);
    }
    std::fs::remove_dir_all(&home)?;
    println!("CA made in {:.1} ms", made_ca.as_secs_f64() * 1e3);
    println!(
        "leaf minted (first use of a name): {}",
        summary(&mut minted)
    );
    println!(
        "leaf from the cache:               {}",
        summary(&mut cached)
    );
    Ok(())
}

fn summary(us: &mut [f64]) -> String {
    us.sort_by(f64::total_cmp);
    let at = |q: f64| us[((us.len() as f64 * q) as usize).min(us.len() - 1)];
    format!(
        "median {:.1} us, p99 {:.1} us ({} names)",
        at(0.5),
        at(0.99),
        us.len()
    )
}
