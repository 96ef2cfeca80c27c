//! `agentfs doctor [--json]`: whether each part of agentfs works on this
//! machine, by real checks, one line each with the fix for what does not.
//! Exits 1 when something essential fails.
//!
//! Layout, in the order the checks run:
//! - `run_dir`: `$AGENTFS_HOME` and the run directory (owner, mode,
//!   stale entries and refused files).
//! - `router`: running or not, version, reachable on 127.0.0.1 and ::1.
//! - `shim_test`: a probe under the shim, end to end; [`probe`] is the
//!   probe itself (`agentfs doctor-probe`, hidden).
//! - `resolver`: whether this machine resolves `*.localhost` names.
//! - `trust`: whether the local CA is trusted where `agentfs trust` puts it.
//! - `interpreters`: whether node, python3, … in `PATH` can take the shim.
//! - `netns`: whether programs the shim cannot enter get a private network
//!   namespace here (Linux), tried end to end.
//! - `report`: the lines, and the JSON envelope; `http`: the small
//!   client the checks ask with.

mod http;
mod interpreters;
mod netns;
pub mod probe;
mod report;
mod resolver;
mod router;
mod run_dir;
mod shim_test;
mod trust;

use std::io::Write;

use anyhow::Result;

use agentfs_contract::{layout, urls};

use crate::inject::library::EmbeddedShim;
use crate::instance::names;
use report::Check;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Checks, in order: $AGENTFS_HOME and the run directory; the router; the shim, by
starting a small server under it (reached directly and through the router);
whether this machine resolves *.localhost names; whether programs the shim cannot
enter get a private network namespace (Linux); where the local CA is trusted
(https); and whether node, python3, bun, deno, ruby and php in PATH can take the
shim.

Each line starts with ✔ (works), ! (works, with a caveat), ✘ (does not work:
doctor then exits 1) or - (not tried), and each problem is followed by its fix.")]
pub struct DoctorArgs {
    /// Print the result as JSON, in the router API's envelope.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: DoctorArgs, shim: &EmbeddedShim) -> Result<i32> {
    let mut report = Report {
        checks: Vec::new(),
        live: !args.json,
    };
    if report.live {
        println!(
            "agentfs doctor: agentfs {} on {}/{}",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH
        );
    }
    match layout::home_from_env() {
        Ok(home) => {
            let (checks, usable) = run_dir::checks(&home);
            report.add(checks);
            let (checks, router_port) = router::checks(&home);
            report.add(checks);
            report.add(shim_test::checks(&home, shim, router_port, usable));
            report.add(vec![resolver::check(&live_hosts(&home))]);
            report.add(vec![netns::check(&home)]);
            report.add(vec![trust::check(&home)]);
        }
        Err(err) => report.add(vec![Check::fail(
            "home",
            err.to_string(),
            "export AGENTFS_HOME=\"$HOME/.agentfs\"",
        )]),
    }
    report.add(interpreters::checks(shim.bytes));
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report::envelope(&report.checks))?
        );
    } else {
        println!("{}", report::summary(&report.checks));
    }
    Ok(if report::failed(&report.checks) { 1 } else { 0 })
}

/// The checks so far, printed as they come when the output is text.
struct Report {
    checks: Vec<Check>,
    live: bool,
}

impl Report {
    fn add(&mut self, checks: Vec<Check>) {
        if self.live {
            let mut out = std::io::stdout().lock();
            for check in &checks {
                let _ = out.write_all(check.text().as_bytes());
            }
            let _ = out.flush();
        }
        self.checks.extend(checks);
    }
}

/// The host names of the live instances, for `/etc/hosts` lines.
fn live_hosts(home: &std::path::Path) -> Vec<String> {
    names::scan(home)
        .map(|scan| {
            scan.live()
                .flat_map(|entry| urls::hostnames(&entry.sidecar))
                .collect()
        })
        .unwrap_or_default()
}
