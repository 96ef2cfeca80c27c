//! Inside a wrapped process `localhost` and every `*.localhost` name
//! resolve to loopback without DNS, as libc resolves `localhost`; outside
//! wrap, and for every other name, the resolver answers as it always did.

mod common;

use serde_json::Value;

use common::clients::{c_client, node, python, run_plain, run_wrapped};
use common::TestHome;

/// What each client resolves `name` to, under wrap or not.
fn resolve(home: Option<&TestHome>, name: &str) -> [Value; 3] {
    let clients = [
        python("client.py", &["resolve", name]),
        node("client.js", &["lookup", name]),
        c_client(&["resolve", name]),
    ];
    clients.map(|cmd| match home {
        Some(home) => run_wrapped(home, "web", "x", &cmd).report,
        None => run_plain(&cmd).report,
    })
}

#[test]
fn localhost_names_resolve_inside_wrap_as_localhost_does() {
    let home = TestHome::new();
    let localhost = resolve(None, "localhost");
    assert!(
        localhost[0]["addresses"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "this machine resolves localhost: {localhost:?}"
    );
    for name in ["api.localhost", "feat-x.web.localhost", "API.LOCALHOST."] {
        assert_eq!(resolve(Some(&home), name), localhost, "{name}");
    }
}

#[test]
fn other_names_and_processes_outside_wrap_resolve_as_before() {
    let home = TestHome::new();
    for name in ["localhost.invalid", "notlocalhost", "api.localhost.invalid"] {
        assert_eq!(resolve(Some(&home), name), resolve(None, name), "{name}");
    }
    // Outside wrap nothing changes: what `api.localhost` gives there is the
    // system's own answer (a failure where nss-myhostname is absent).
    let outside = resolve(None, "api.localhost");
    let localhost = resolve(None, "localhost");
    let system_resolves_it = outside == localhost;
    let fails = outside[0].get("error").is_some() && outside[1].get("error").is_some();
    assert!(system_resolves_it || fails, "{outside:?}");
}
