//! The one place a sidecar becomes the host names and URLs it is reached at
//! through the router, the most specific first: for an instance's first
//! listener, `INSTANCE.APP.localhost` (the one to open: every request goes to
//! that instance) and then `APP.localhost` (shared by the app's instances);
//! for any other listener, `PORT.INSTANCE.APP.localhost`.

use crate::naming::{app_hostname, instance_hostname, port_hostname};
use crate::sidecar::Sidecar;

/// The host names a router serves one listener at, the most specific first:
/// a primary listener is its instance's name, then the app's shared one; any
/// other listener is reached by its port's name only.
pub fn hostnames(car: &Sidecar) -> Vec<String> {
    if car.primary {
        vec![
            instance_hostname(&car.app, &car.instance),
            app_hostname(&car.app),
        ]
    } else {
        vec![port_hostname(&car.app, &car.instance, car.port)]
    }
}

/// `http://{host}:{router_port}`
pub fn url(host: &str, router_port: u16) -> String {
    format!("http://{host}:{router_port}")
}

/// [`hostnames`] as URLs through a router on `router_port`.
pub fn urls(car: &Sidecar, router_port: u16) -> Vec<String> {
    hostnames(car)
        .iter()
        .map(|host| url(host, router_port))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_and_urls_put_the_instance_first() {
        let mut car = crate::sidecar::tests::sample("/r/web_a1.sock".into());
        assert_eq!(
            urls(&car, 7380),
            ["http://a1.web.localhost:7380", "http://web.localhost:7380"]
        );
        car.primary = false;
        car.port = 3001;
        assert_eq!(urls(&car, 80), ["http://3001.a1.web.localhost:80"]);
    }
}
