//! Doctor's name-resolution check: does this machine's resolver (libc's
//! `getaddrinfo`, which Node's `fetch`, Python and most command-line tools
//! use) answer a `*.localhost` name with loopback? Browsers and curl resolve
//! such names themselves; other clients need the system to. If it does
//! not, the fix lists `/etc/hosts` lines for the live names (hosts files
//! have no wildcards) and, on Linux, the NSS module that resolves them all.

use std::net::{IpAddr, ToSocketAddrs};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;

use super::report::Check;

/// The name asked for: any `*.localhost` name will do.
pub const PROBE_NAME: &str = "x.localhost";
/// The router's own name, always worth a hosts line.
const ROUTER_NAME: &str = "agentfs.localhost";
/// How long the resolver may take (a DNS server may be asked, and slow).
const TIMEOUT: Duration = Duration::from_secs(5);

/// What the resolver said.
#[derive(Debug)]
pub enum Answer {
    Addresses(Vec<IpAddr>),
    Failed(String),
    TimedOut,
}

/// Asks the resolver for [`PROBE_NAME`]; `live` are the host names of the
/// live instances, for the hosts lines.
pub fn check(live: &[String]) -> Check {
    verdict(&resolve(PROBE_NAME), live, cfg!(target_os = "macos"))
}

/// `getaddrinfo(name)` through std, given up after [`TIMEOUT`].
pub fn resolve(name: &str) -> Answer {
    let (send, receive) = mpsc::channel();
    let name = name.to_owned();
    // A resolver stuck on DNS keeps this thread; doctor goes on without it.
    std::thread::spawn(move || {
        let answer = match (name.as_str(), 80).to_socket_addrs() {
            Ok(addrs) => Answer::Addresses(addrs.map(|a| a.ip()).collect()),
            Err(err) => Answer::Failed(err.to_string()),
        };
        let _ = send.send(answer);
    });
    receive.recv_timeout(TIMEOUT).unwrap_or(Answer::TimedOut)
}

pub fn verdict(answer: &Answer, live: &[String], macos: bool) -> Check {
    let problem = match answer {
        Answer::Addresses(ips) if !ips.is_empty() && ips.iter().all(IpAddr::is_loopback) => {
            let shown: Vec<String> = ips.iter().map(ToString::to_string).collect();
            return Check::ok(
                "resolver",
                format!(
                    "name resolution: this machine resolves {PROBE_NAME} to {} (loopback)",
                    shown.join(", ")
                ),
            );
        }
        Answer::Addresses(ips) => {
            let shown: Vec<String> = ips.iter().map(ToString::to_string).collect();
            format!(
                "resolves {PROBE_NAME} to {}, not to loopback: requests to *.localhost names \
                 would leave this machine",
                shown.join(", ")
            )
        }
        Answer::Failed(err) => format!("does not resolve {PROBE_NAME} ({err})"),
        Answer::TimedOut => format!("did not answer for {PROBE_NAME} within {TIMEOUT:?}"),
    };
    Check::warn(
        "resolver",
        format!(
            "name resolution: this machine's resolver (getaddrinfo) {problem}; browsers and \
             curl still reach http://APP.localhost:PORT, but Node's fetch, Python and most \
             other clients cannot"
        ),
        fix(live, macos),
    )
    .with_details(json!({ "name": PROBE_NAME, "hosts_lines": hosts_lines(live) }))
}

/// `/etc/hosts` lines for the router's name and every live name.
pub fn hosts_lines(live: &[String]) -> Vec<String> {
    let mut names: Vec<&str> = live.iter().map(String::as_str).collect();
    names.push(ROUTER_NAME);
    names.sort_unstable();
    names.dedup();
    names
        .iter()
        .flat_map(|name| [format!("127.0.0.1 {name}"), format!("::1 {name}")])
        .collect()
}

fn fix(live: &[String], macos: bool) -> String {
    let lines = hosts_lines(live).join("\n");
    if macos {
        return format!(
            "`agentfs hosts sync` (or `agentfs router --sync-hosts`) keeps these lines in \
             /etc/hosts (hosts files have no wildcards, and macOS has no setting that \
             resolves all of *.localhost):\n{lines}"
        );
    }
    format!(
        "`agentfs hosts sync` (or `agentfs router --sync-hosts`) keeps these lines in \
         /etc/hosts (hosts files have no wildcards: one line per name):\n\
         {lines}\nor resolve every *.localhost name: install libnss-myhostname and add \
         `myhostname` to the `hosts:` line of /etc/nsswitch.conf (systemd-resolved also does this)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_answers_pass_and_others_get_hosts_lines() {
        let live = vec!["a.web.localhost".to_owned(), "web.localhost".to_owned()];
        let loopback =
            Answer::Addresses(vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()]);
        let ok = verdict(&loopback, &live, false);
        assert_eq!(ok.status, super::super::report::Status::Ok);
        assert!(ok.message.contains("127.0.0.1, ::1"), "{}", ok.message);

        let failed = verdict(
            &Answer::Failed("Name or service not known".into()),
            &live,
            false,
        );
        let fix = failed.fix.unwrap();
        for line in [
            "127.0.0.1 a.web.localhost",
            "::1 web.localhost",
            "127.0.0.1 agentfs.localhost",
        ] {
            assert!(fix.lines().any(|l| l == line), "{fix}");
        }
        assert!(fix.contains("myhostname"));
        let mac = verdict(&Answer::TimedOut, &[], true).fix.unwrap();
        assert!(
            mac.contains("/etc/hosts") && !mac.contains("nsswitch"),
            "{mac}"
        );

        let outside = Answer::Addresses(vec!["93.184.216.34".parse().unwrap()]);
        assert!(verdict(&outside, &live, false)
            .message
            .contains("not to loopback"));
        assert_eq!(
            verdict(&Answer::Addresses(vec![]), &live, false).status,
            super::super::report::Status::Warn
        );
    }
}
