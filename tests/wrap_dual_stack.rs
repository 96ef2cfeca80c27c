//! A server bound to both 0.0.0.0:P and [::]:P shares one Unix socket, yet
//! every address it is told is a valid one of the family of the descriptor
//! it asked on: never an IPv6 address cut into an IPv4 buffer.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;

use common::fixtures::Fixture;
use common::{get_json, TestHome};

const PORT: &str = "8081";
const REQUESTS: usize = 10;

/// Runs real aiohttp with `args` after the port, sends requests over the
/// socket, checks that every client address aiohttp saw is a loopback
/// address of the family of the socket the request came in on, and returns
/// those families.
fn families_seen(home: &TestHome, instance: &str, args: &[&str], ready: &str) -> BTreeSet<String> {
    let mut command = vec![PORT];
    command.extend(args);
    let app = home.wrap("aio", instance, &Fixture::PythonAiohttp.command(&command));
    app.wait_stdout(ready);
    let car = home.wait_sidecar("aio", instance, Some(8081));
    let mut families = BTreeSet::new();
    for _ in 0..REQUESTS {
        let answer = get_json(&car.socket, "/");
        let remote = answer["remote"].as_str().unwrap_or_default();
        let ip: IpAddr = remote
            .parse()
            .unwrap_or_else(|_| panic!("request.remote is not an address: {answer}"));
        assert!(ip.is_loopback(), "request.remote is {remote}: {answer}");
        let family = answer["family"].as_str().unwrap();
        let expected = if ip.is_ipv4() { "inet" } else { "inet6" };
        assert_eq!(family, expected, "a client of another family: {answer}");
        assert_eq!(answer["peername"][0], remote, "{answer}");
        families.insert(family.to_owned());
    }
    families
}

#[test]
fn the_ipv4_listener_of_a_pair_bound_ipv6_first_sees_an_ipv4_client() {
    let home = TestHome::new();
    let args = ["::", "0.0.0.0", "--serve-only", "inet"];
    let families = families_seen(&home, "a", &args, "serving on inet only");
    assert_eq!(families, BTreeSet::from(["inet".to_owned()]));
}

#[test]
fn the_ipv6_listener_of_a_pair_bound_ipv4_first_sees_an_ipv6_client() {
    let home = TestHome::new();
    let args = ["0.0.0.0", "::", "--serve-only", "inet6"];
    let families = families_seen(&home, "a", &args, "serving on inet6 only");
    assert_eq!(families, BTreeSet::from(["inet6".to_owned()]));
}

#[test]
fn aiohttp_run_app_on_both_families_sees_valid_clients() {
    let home = TestHome::new();
    let families = families_seen(&home, "a", &[], "Running on");
    assert!(!families.is_empty());
}
