//! Reading the Host a request is for, and deciding what it names.
//!
//! Names are case-insensitive; a port and a trailing dot are ignored:
//!
//! | Host                            | Target                                   |
//! |---------------------------------|------------------------------------------|
//! | `agentfs.localhost`, `localhost`, a loopback IP or the router's own address | the router itself |
//! | `APP.localhost`                 | balanced over the app's primary listeners |
//! | `INSTANCE.APP.localhost`        | that instance's primary listener          |
//! | `PORT.INSTANCE.APP.localhost`   | that instance's listener for `PORT`       |
//! | anything else under `.localhost`| unknown: 404                              |
//! | anything outside `.localhost`   | foreign: 421, never proxied              |

use std::net::IpAddr;

use agentfs_contract::naming::DOMAIN;

/// The reserved name of the router's own pages and API.
pub const RESERVED: &str = "agentfs";

/// What a Host names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The router's status page and API.
    Router,
    App {
        app: String,
    },
    Instance {
        app: String,
        instance: String,
    },
    Port {
        app: String,
        instance: String,
        port: u16,
    },
    /// Under `.localhost` but not a shape we route; carries the normalised name.
    Unknown(String),
    /// Not ours to serve.
    Foreign(String),
}

/// Classifies a Host header value (or the authority of an absolute URI).
/// `own` lists addresses the router listens on besides loopback.
pub fn classify(authority: &str, own: &[IpAddr]) -> Target {
    let name = normalise(authority);
    if let Ok(ip) = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return if ip.is_loopback() || own.contains(&ip) {
            Target::Router
        } else {
            Target::Foreign(name)
        };
    }
    if name == DOMAIN {
        return Target::Router;
    }
    let Some(prefix) = name.strip_suffix(DOMAIN).and_then(|p| p.strip_suffix('.')) else {
        return Target::Foreign(name);
    };
    let labels: Vec<&str> = prefix.split('.').collect();
    if labels.iter().any(|l| l.is_empty()) {
        return Target::Unknown(name);
    }
    match labels.as_slice() {
        [RESERVED] => Target::Router,
        [app] => Target::App {
            app: (*app).to_owned(),
        },
        [instance, app] => Target::Instance {
            app: (*app).to_owned(),
            instance: (*instance).to_owned(),
        },
        [port, instance, app] => match port.parse::<u16>() {
            Ok(port) => Target::Port {
                app: (*app).to_owned(),
                instance: (*instance).to_owned(),
                port,
            },
            Err(_) => Target::Unknown(name),
        },
        _ => Target::Unknown(name),
    }
}

/// Lowercases, drops the port and a trailing dot. IPv6 literals keep their brackets.
pub fn normalise(authority: &str) -> String {
    let authority = authority.trim();
    let host = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => authority,
        }
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(a: &str) -> Target {
        Target::App { app: a.into() }
    }

    #[test]
    fn names_are_case_insensitive_and_ignore_port_and_dot() {
        assert_eq!(classify("Web.LocalHost:7380", &[]), app("web"));
        assert_eq!(classify("web.localhost.", &[]), app("web"));
        assert_eq!(classify("web.localhost.:80", &[]), app("web"));
        assert_eq!(
            classify("a1.web.localhost", &[]),
            Target::Instance {
                app: "web".into(),
                instance: "a1".into()
            }
        );
        assert_eq!(
            classify("5173.a1.web.localhost:1", &[]),
            Target::Port {
                app: "web".into(),
                instance: "a1".into(),
                port: 5173
            }
        );
    }

    #[test]
    fn the_router_answers_for_itself() {
        for host in [
            "agentfs.localhost",
            "localhost:7380",
            "127.0.0.1:7380",
            "[::1]:7380",
            "[::1]",
        ] {
            assert_eq!(classify(host, &[]), Target::Router, "{host}");
        }
        let own: IpAddr = "192.168.1.5".parse().unwrap();
        assert_eq!(classify("192.168.1.5:7380", &[own]), Target::Router);
        assert!(matches!(
            classify("192.168.1.6", &[own]),
            Target::Foreign(_)
        ));
    }

    #[test]
    fn outside_localhost_is_foreign() {
        for host in [
            "example.com",
            "web.localhost.evil.com",
            "evillocalhost",
            "10.0.0.1",
            "",
        ] {
            assert!(matches!(classify(host, &[]), Target::Foreign(_)), "{host}");
        }
    }

    #[test]
    fn odd_shapes_under_localhost_are_unknown() {
        for host in ["a.b.c.d.localhost", "x.a1.web.localhost", "..localhost"] {
            assert!(matches!(classify(host, &[]), Target::Unknown(_)), "{host}");
        }
    }
}
