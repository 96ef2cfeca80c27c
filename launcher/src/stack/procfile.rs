//! A `Procfile`: one `name: command` line per service (blank lines and `#`
//! comments skipped). Each service is ready when it listens, restarts on
//! failure, and runs in the Procfile's directory.

use anyhow::{bail, Result};

use agentfs_contract::naming;

use crate::stack::spec::{Ready, Restart, ServiceSpec};

/// The services of a Procfile's `text`, in order; an error names the line.
pub fn parse(text: &str) -> Result<Vec<ServiceSpec>> {
    let mut services: Vec<ServiceSpec> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, command)) = line.split_once(':') else {
            bail!("line {number}: {line:?} is not `name: command`");
        };
        let (name, command) = (name.trim(), command.trim());
        if !naming::is_label(name) {
            bail!(
                "line {number}: service name {name:?} is not a DNS label (lowercase letters, \
                 digits and '-'): it becomes the app's host name"
            );
        }
        if command.is_empty() {
            bail!("line {number}: service {name} has no command");
        }
        if let Some(first) = services.iter().find(|s| s.name == name) {
            bail!(
                "line {number}: service {name} is defined twice (first on line {})",
                first.line
            );
        }
        services.push(ServiceSpec {
            name: name.to_owned(),
            run: command.to_owned(),
            setup: None,
            dir: None,
            env: Vec::new(),
            after: Vec::new(),
            ready: Ready::Listener,
            restart: Restart::OnFailure,
            line: number,
        });
    }
    Ok(services)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_services() {
        let services =
            parse("# dev\nweb: node web.js 3000\n\napi:  python3 api.py 8000 # port\n").unwrap();
        assert_eq!(services.len(), 2);
        assert_eq!(services[0].name, "web");
        assert_eq!(services[0].run, "node web.js 3000");
        assert_eq!(services[1].line, 4);
        assert_eq!(services[1].run, "python3 api.py 8000 # port");
    }

    #[test]
    fn mistakes_name_their_line() {
        for (text, says) in [
            ("web node\n", "line 1: \"web node\" is not `name: command`"),
            (
                "\nWeb_1: x\n",
                "line 2: service name \"Web_1\" is not a DNS label",
            ),
            ("web:\n", "line 1: service web has no command"),
            ("a: x\na: y\n", "line 2: service a is defined twice"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with(says), "{err}");
        }
    }
}
