//! Doctor's https check: whether this home's local CA exists and where
//! this user's browsers and clients trust it (the places `agentfs trust`
//! would change). Not essential: plain `http://` works without it.

use std::path::Path;

use agentfs_tls::Ca;

use super::report::Check;
use crate::trust::{self, Op, Scope, State};

pub fn check(home: &Path) -> Check {
    let ca = match Ca::open(home) {
        Ok(Some(ca)) => ca,
        Ok(None) => {
            return Check::skipped(
                "trust",
                "https: no local CA yet (the router makes it when it starts; `agentfs trust` \
                 makes it and trusts it)",
            )
        }
        Err(err) => {
            return Check::warn(
                "trust",
                format!("https: the local CA cannot be used: {err}"),
                "agentfs trust",
            )
        }
    };
    let Some(user_home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
        return Check::skipped(
            "trust",
            "https: HOME is not set, so no browser database was looked at",
        );
    };
    let outcomes = trust::apply(Op::Check, &ca, &Scope::new(user_home.into(), false, false));
    let places = |wanted: fn(State) -> bool| {
        outcomes
            .iter()
            .filter(|o| wanted(o.state))
            .map(|o| format!("{} ({})", o.place, o.path.display()))
            .collect::<Vec<_>>()
    };
    let trusted = places(|s| s == State::Trusted);
    let missing = places(|s| s != State::Trusted);
    let details = serde_json::json!({"ca": ca.cert_path(), "name": ca.name(), "places": outcomes});
    if missing.is_empty() && !trusted.is_empty() {
        return Check::ok(
            "trust",
            format!("https: {} is trusted in {}", ca.name(), trusted.join(", ")),
        )
        .with_details(details);
    }
    let trusted = if trusted.is_empty() {
        String::new()
    } else {
        format!("; trusted in {}", trusted.join(", "))
    };
    let missing = if missing.is_empty() {
        "any place looked at".to_owned()
    } else {
        missing.join(", ")
    };
    Check::warn(
        "trust",
        format!(
            "https: {} is not trusted in {missing}: clients that read it there refuse \
             https://…localhost (wrapped apps trust it anyway){trusted}",
            ca.name(),
        ),
        "agentfs trust",
    )
    .with_details(details)
}
