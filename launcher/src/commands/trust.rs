//! `agentfs trust [--check]` and `agentfs untrust`: the local CA (made on
//! first use) put where this user's browsers and clients look for roots,
//! or taken out, saying exactly what changed where; never a prompt.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::json;

use agentfs_contract::layout;
use agentfs_tls::Ca;

use crate::trust::{self, Op, Outcome, Scope};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Linux: the NSS databases Chromium, Chrome and Firefox read (~/.pki/nssdb, created if
missing, and each Firefox profile), through certutil (Debian: libnss3-tools); the
system store only as root or with --system, which uses sudo -n and never asks for a
password. macOS: the login keychain (macOS asks you to confirm).

Exit status: 0 when the CA is trusted at every place looked at (--check) or was put
there; 1 otherwise, with each place and the command that would fix it.")]
pub struct TrustArgs {
    /// Only say where the CA is trusted: exit 0 when at every place looked at, 1 otherwise.
    #[arg(long)]
    pub check: bool,
    #[command(flatten)]
    pub scope: ScopeArgs,
}

#[derive(Debug, clap::Args)]
pub struct UntrustArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
}

#[derive(Debug, clap::Args)]
pub struct ScopeArgs {
    /// Include the system store (as root this is the default), through `sudo -n`.
    #[arg(long, conflicts_with = "no_system")]
    pub system: bool,
    /// Leave the system store alone, even as root.
    #[arg(long)]
    pub no_system: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: TrustArgs) -> Result<i32> {
    let op = if args.check { Op::Check } else { Op::Trust };
    act(op, &args.scope)
}

pub fn run_untrust(args: UntrustArgs) -> Result<i32> {
    act(Op::Untrust, &args.scope)
}

fn act(op: Op, args: &ScopeArgs) -> Result<i32> {
    let home = layout::home_from_env()?;
    let ca = match op {
        Op::Trust => Some(Ca::open_or_create(&home)?),
        Op::Check | Op::Untrust => Ca::open(&home)?,
    };
    let Some(ca) = ca else {
        return nothing_made(op, &home, args.json);
    };
    let user_home = user_home()?;
    let scope = Scope::new(user_home, args.system, args.no_system);
    let outcomes = trust::apply(op, &ca, &scope);
    let all_done = !outcomes.is_empty() && outcomes.iter().all(|o| o.done(op));
    if args.json {
        let data = json!({
            "ca": {"name": ca.name(), "path": ca.cert_path(), "sha256": ca.fingerprint()},
            "places": outcomes,
            "done": all_done,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"status": "success", "data": data}))?
        );
    } else {
        say(op, &ca, &outcomes, &scope);
    }
    Ok(if all_done { 0 } else { 1 })
}

fn say(op: Op, ca: &Ca, outcomes: &[Outcome], scope: &Scope) {
    println!(
        "agentfs: {} ({}, SHA-256 {})",
        ca.name(),
        ca.cert_path().display(),
        ca.fingerprint()
    );
    if outcomes.is_empty() {
        println!("  no place to look at was found");
    }
    for outcome in outcomes {
        println!("  {}", trust::line(outcome));
    }
    if !scope.system && !cfg!(target_os = "macos") {
        println!(
            "  the system store was left alone (--system adds it, through sudo -n); \
             wrapped apps trust the CA without it"
        );
    }
    if op == Op::Trust && outcomes.iter().any(|o| o.state == trust::State::Added) {
        println!("  restart open browsers so they read it again");
    }
}

/// `--check` and `untrust` before any CA was made: nothing trusts it.
fn nothing_made(op: Op, home: &std::path::Path, json: bool) -> Result<i32> {
    let what = format!(
        "no CA was made in {} yet (the router makes it on first use, or `agentfs trust`)",
        home.display()
    );
    if json {
        let data = json!({"ca": null, "places": [], "done": op == Op::Untrust});
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"status": "success", "data": data}))?
        );
    } else {
        println!("agentfs: {what}");
    }
    Ok(if op == Op::Untrust { 0 } else { 1 })
}

fn user_home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .context("HOME is not set: the NSS databases and keychains are found under it")
}
