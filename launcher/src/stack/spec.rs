//! One service of a stack: what the stack file says of it ([`ServiceSpec`]),
//! and the same made concrete for one instance ([`Service`]), with
//! `{instance}` and `{service}` expanded.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// When a service counts as ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ready {
    /// Its first listener is live (the default).
    Listener,
    /// The instance has a live listener on this port (in any of its apps).
    Port(u16),
    /// `GET path` on the instance's listener for `port` answers 2xx or 3xx.
    Http { port: u16, path: String },
}

impl Ready {
    /// Reads `ready = "port P"` or `ready = "http://localhost:P/path"`.
    pub fn parse(text: &str) -> Result<Ready> {
        let text = text.trim();
        if let Some(port) = text.strip_prefix("port ") {
            return Ok(Ready::Port(parse_port(port.trim())?));
        }
        let Some(rest) = text.strip_prefix("http://") else {
            bail!(
                "ready {text:?} is neither \"port P\" nor \"http://localhost:P/path\" \
                 (leave it out to wait for the service's first listener)"
            );
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let Some((host, port)) = authority.rsplit_once(':') else {
            bail!("ready {text:?} needs a port: http://localhost:PORT{path}");
        };
        if !matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
            bail!(
                "ready {text:?} must name localhost: the probe reaches the instance's own \
                 listener, never another host"
            );
        }
        let path = if path.is_empty() { "/" } else { path };
        Ok(Ready::Http {
            port: parse_port(port)?,
            path: path.to_owned(),
        })
    }

    /// What is waited for, in a few words.
    pub fn describe(&self) -> String {
        match self {
            Ready::Listener => "its first listener".to_owned(),
            Ready::Port(port) => format!("a listener on port {port}"),
            Ready::Http { port, path } => format!("GET http://localhost:{port}{path}"),
        }
    }
}

fn parse_port(text: &str) -> Result<u16> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => bail!("{text:?} is not a port (1-65535)"),
    }
}

/// When a service that exited is started again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    No,
    /// After a non-zero exit or a signal (the default).
    OnFailure,
    /// After any exit.
    Always,
}

impl Restart {
    pub fn parse(text: &str) -> Result<Restart> {
        Ok(match text {
            "no" => Restart::No,
            "on-failure" => Restart::OnFailure,
            "always" => Restart::Always,
            other => bail!("restart {other:?} is not one of \"on-failure\", \"always\", \"no\""),
        })
    }

    /// Whether an exit with `code` (128+N for signal N, as wrap exits) is
    /// followed by a restart.
    pub fn restarts_after(self, code: i32) -> bool {
        match self {
            Restart::No => false,
            Restart::OnFailure => code != 0,
            Restart::Always => true,
        }
    }
}

/// A service as the stack file says, before an instance is chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    /// A DNS label: the app name its instance runs as.
    pub name: String,
    pub run: String,
    pub setup: Option<String>,
    /// Relative to the stack file's directory (or absolute).
    pub dir: Option<String>,
    pub env: Vec<(String, String)>,
    pub after: Vec<String>,
    pub ready: Ready,
    pub restart: Restart,
    /// Where the service is defined, for messages.
    pub line: usize,
}

/// A service made concrete for one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub run: String,
    pub setup: Option<String>,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub after: Vec<String>,
    pub ready: Ready,
    pub restart: Restart,
}

impl ServiceSpec {
    /// This service in `instance`, its directory resolved against the stack
    /// file's directory `stack_dir`.
    pub fn for_instance(&self, instance: &str, stack_dir: &Path) -> Service {
        let expand = |text: &str| {
            text.replace("{instance}", instance)
                .replace("{service}", &self.name)
        };
        let dir = match &self.dir {
            Some(dir) => stack_dir.join(expand(dir)),
            None => stack_dir.to_owned(),
        };
        Service {
            name: self.name.clone(),
            run: expand(&self.run),
            setup: self.setup.as_deref().map(expand),
            dir,
            env: self
                .env
                .iter()
                .map(|(key, value)| (key.clone(), expand(value)))
                .collect(),
            after: self.after.clone(),
            ready: self.ready.clone(),
            restart: self.restart,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_forms() {
        assert_eq!(Ready::parse("port 5432").unwrap(), Ready::Port(5432));
        assert_eq!(
            Ready::parse("http://localhost:8000/health").unwrap(),
            Ready::Http {
                port: 8000,
                path: "/health".into()
            }
        );
        assert_eq!(
            Ready::parse("http://127.0.0.1:3000").unwrap(),
            Ready::Http {
                port: 3000,
                path: "/".into()
            }
        );
        for bad in [
            "port x",
            "port 0",
            "http://example.com:80/",
            "http://localhost/x",
            "tcp 80",
        ] {
            assert!(Ready::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn restart_policies() {
        assert!(!Restart::OnFailure.restarts_after(0));
        assert!(Restart::OnFailure.restarts_after(1));
        assert!(Restart::OnFailure.restarts_after(137));
        assert!(Restart::Always.restarts_after(0));
        assert!(!Restart::No.restarts_after(1));
        assert!(Restart::parse("sometimes").is_err());
    }

    #[test]
    fn placeholders_expand_in_run_setup_dir_and_env() {
        let spec = ServiceSpec {
            name: "db".into(),
            run: "postgres -D .agentfs/{instance}/pg".into(),
            setup: Some("initdb -D .agentfs/{instance}/{service}".into()),
            dir: Some("data/{instance}".into()),
            env: vec![("URL".into(), "pg://{service}.{instance}".into())],
            after: vec![],
            ready: Ready::Listener,
            restart: Restart::OnFailure,
            line: 1,
        };
        let service = spec.for_instance("feat-x", Path::new("/w"));
        assert_eq!(service.run, "postgres -D .agentfs/feat-x/pg");
        assert_eq!(service.setup.unwrap(), "initdb -D .agentfs/feat-x/db");
        assert_eq!(service.dir, Path::new("/w/data/feat-x"));
        assert_eq!(service.env, [("URL".into(), "pg://db.feat-x".into())]);
    }
}
