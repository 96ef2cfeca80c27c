//! From inside an instance, `APP.localhost` through the router reaches the
//! instance's own APP: the shim wires a connect to the router's port to the
//! router's door for instances, saying whose it is (a header a browser
//! could send is never what decides). An instance without that app is
//! balanced over the others, as a browser is.

mod common;

use std::collections::BTreeMap;

use common::clients::serve;
use common::TestHome;

/// The bodies of 20 GETs of `url` from a client of instance `id`.
fn twenty_gets(home: &TestHome, id: &str, url: &str) -> BTreeMap<String, usize> {
    let script = format!(
        "import urllib.request as u\nfor _ in range(20): print(u.urlopen({url:?}, timeout=20).read().decode())"
    );
    let out = home
        .agentfs(&["exec", "--instance", id, "--", "python3", "-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut seen = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        *seen.entry(line.to_owned()).or_default() += 1;
    }
    seen
}

#[test]
fn app_localhost_from_inside_an_instance_reaches_its_own_app() {
    let home = TestHome::new();
    let router = home.start_router();
    let _sa = serve(&home, "api", "sa", &[7350]);
    let _sb = serve(&home, "api", "sb", &[7350]);
    let _sc = serve(&home, "web", "sc", &[7351]);
    let url = format!("http://api.localhost:{}/", router.port);
    for id in ["sa", "sb"] {
        let seen = twenty_gets(&home, id, &url);
        let own = format!("hello from api/{id} on 7350");
        assert_eq!(seen.get(&own), Some(&20), "{id}: {seen:?}");
    }
    // sc has no api: balanced over the instances that do.
    let seen = twenty_gets(&home, "sc", &url);
    assert_eq!(seen.values().sum::<usize>(), 20, "{seen:?}");
    assert!(seen.len() == 2, "both instances answer sc: {seen:?}");
}
