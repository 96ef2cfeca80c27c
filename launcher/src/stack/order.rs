//! The order services start and stop in: `after` as a graph, checked
//! (unknown names, cycles) before anything starts.

use std::collections::BTreeSet;

use anyhow::{bail, Result};

use crate::stack::spec::ServiceSpec;

/// Checks that every `after` names a service and that there is no cycle.
/// `where_` says where a service is defined (`agentfs.toml line 4`).
pub fn check(services: &[ServiceSpec], where_: impl Fn(&ServiceSpec) -> String) -> Result<()> {
    for service in services {
        for needed in &service.after {
            if find(services, needed).is_none() {
                bail!(
                    "{}: service {} is started after {needed:?}, which is not a service \
                     here (there are: {})",
                    where_(service),
                    service.name,
                    names(services)
                );
            }
        }
    }
    for service in services {
        if let Some(cycle) = cycle_from(services, service, &mut Vec::new()) {
            bail!(
                "{}: `after` makes a cycle: {} (no service of a cycle could ever start)",
                where_(service),
                cycle.join(" -> ")
            );
        }
    }
    Ok(())
}

/// A cycle through `service`'s `after` chain, if one comes back to a
/// service already on `path`.
fn cycle_from(
    services: &[ServiceSpec],
    service: &ServiceSpec,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|p| *p == service.name) {
        let mut cycle = path[at..].to_vec();
        cycle.push(service.name.clone());
        return Some(cycle);
    }
    path.push(service.name.clone());
    for needed in &service.after {
        if let Some(next) = find(services, needed) {
            if let Some(cycle) = cycle_from(services, next, path) {
                return Some(cycle);
            }
        }
    }
    path.pop();
    None
}

/// The services `wanted` names (all when empty) and every service they
/// need, in an order where each comes after what it needs (file order
/// otherwise). Assumes [`check`] passed.
pub fn start_order(services: &[ServiceSpec], wanted: &[String]) -> Result<Vec<String>> {
    for name in wanted {
        if find(services, name).is_none() {
            bail!(
                "there is no service {name:?} in this stack (there are: {})",
                names(services)
            );
        }
    }
    let mut needed = BTreeSet::new();
    let mut todo: Vec<&str> = if wanted.is_empty() {
        services.iter().map(|s| s.name.as_str()).collect()
    } else {
        wanted.iter().map(String::as_str).collect()
    };
    while let Some(name) = todo.pop() {
        if needed.insert(name.to_owned()) {
            if let Some(service) = find(services, name) {
                todo.extend(service.after.iter().map(String::as_str));
            }
        }
    }
    let mut ordered: Vec<String> = Vec::new();
    while ordered.len() < needed.len() {
        let next = services.iter().find(|s| {
            needed.contains(&s.name)
                && !ordered.contains(&s.name)
                && s.after.iter().all(|a| ordered.contains(a))
        });
        match next {
            Some(service) => ordered.push(service.name.clone()),
            None => bail!("`after` makes a cycle among {needed:?}"),
        }
    }
    Ok(ordered)
}

fn find<'a>(services: &'a [ServiceSpec], name: &str) -> Option<&'a ServiceSpec> {
    services.iter().find(|s| s.name == name)
}

fn names(services: &[ServiceSpec]) -> String {
    services
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::spec::{Ready, Restart};

    fn spec(name: &str, after: &[&str]) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            run: "true".into(),
            setup: None,
            dir: None,
            env: vec![],
            after: after.iter().map(|a| a.to_string()).collect(),
            ready: Ready::Listener,
            restart: Restart::OnFailure,
            line: 1,
        }
    }

    #[test]
    fn starts_what_is_needed_first() {
        let stack = [
            spec("web", &["api"]),
            spec("api", &["db", "cache"]),
            spec("db", &[]),
            spec("cache", &[]),
            spec("docs", &[]),
        ];
        check(&stack, |s| s.name.clone()).unwrap();
        assert_eq!(
            start_order(&stack, &[]).unwrap(),
            ["db", "cache", "api", "web", "docs"]
        );
        assert_eq!(
            start_order(&stack, &["api".into()]).unwrap(),
            ["db", "cache", "api"]
        );
        let err = start_order(&stack, &["nope".into()]).unwrap_err();
        assert!(
            err.to_string().contains("web, api, db, cache, docs"),
            "{err}"
        );
    }

    #[test]
    fn cycles_and_unknown_names_are_refused() {
        let cyclic = [spec("a", &["b"]), spec("b", &["c"]), spec("c", &["a"])];
        let err = check(&cyclic, |s| format!("line of {}", s.name)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line of a: `after` makes a cycle: a -> b -> c -> a (no service of a cycle \
             could ever start)"
        );
        let itself = [spec("a", &["a"])];
        assert!(check(&itself, |s| s.name.clone()).is_err());
        let unknown = [spec("a", &["zz"])];
        let err = check(&unknown, |s| s.name.clone()).unwrap_err();
        assert!(err.to_string().contains("\"zz\", which is not a service"));
    }
}
