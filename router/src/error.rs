//! The router's error: what went wrong, on which side, and the status code it becomes.
//!
//! Every failure while handling a request is a [`RouteError`]. Its [`Side`]
//! says whose fault it is (the client's, an instance's, or ours), which is what
//! decides the status code and what an operator should look at.

use hyper::StatusCode;

/// Boxed error for bodies that can fail for more than one reason.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Whose fault an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client sent something we will not serve.
    Downstream,
    /// An instance could not be reached or failed mid-answer.
    Upstream,
    /// A fault or a limit of the router itself.
    Internal,
}

/// A request the router could not serve. The `code()` strings are the stable
/// error codes of the JSON API (documented in the crate root).
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error(
        "the client's request body is malformed (an error of the client, not of the instance): {0}"
    )]
    BadBody(String),
    #[error("{0} is not served here: the router is not a forward proxy")]
    MethodNotAllowed(String),
    #[error("{0} is not a .localhost name this router serves")]
    Misdirected(String),
    #[error("no app or instance is registered under {0}")]
    NoRoute(String),
    /// The name is known, but what it names is not routed: each entry as
    /// `APP/INSTANCE: why`.
    #[error("{name} is not routed: {}", .why.join("; "))]
    NotRouted { name: String, why: Vec<String> },
    #[error("no such API endpoint: {0}")]
    NotFound(String),
    #[error("request already passed through this router: forwarding loop")]
    Loop,
    #[error("no instance of {0} could take the request")]
    NoUpstream(String),
    #[error("{0} is not listening yet: its bridge could not reach the app")]
    NotListening(String),
    #[error("instance failed while answering: {0}")]
    Upstream(String),
    #[error("{0} sent no answer within {1:?}")]
    UpstreamTimeout(String, std::time::Duration),
    #[error("the router serves {0} connections at most; try again when one closes")]
    Overloaded(usize),
}

impl RouteError {
    /// Whose fault this is.
    pub fn side(&self) -> Side {
        match self {
            RouteError::BadRequest(_)
            | RouteError::BadBody(_)
            | RouteError::MethodNotAllowed(_)
            | RouteError::Misdirected(_)
            | RouteError::NoRoute(_)
            | RouteError::NotRouted { .. }
            | RouteError::NotFound(_)
            | RouteError::Loop => Side::Downstream,
            RouteError::NoUpstream(_)
            | RouteError::NotListening(_)
            | RouteError::Upstream(_)
            | RouteError::UpstreamTimeout(..) => Side::Upstream,
            RouteError::Overloaded(_) => Side::Internal,
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            RouteError::BadRequest(_) | RouteError::BadBody(_) => StatusCode::BAD_REQUEST,
            RouteError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            RouteError::Misdirected(_) => StatusCode::MISDIRECTED_REQUEST,
            RouteError::NoRoute(_) | RouteError::NotRouted { .. } | RouteError::NotFound(_) => {
                StatusCode::NOT_FOUND
            }
            RouteError::Loop => StatusCode::LOOP_DETECTED,
            RouteError::NoUpstream(_) | RouteError::NotListening(_) | RouteError::Upstream(_) => {
                StatusCode::BAD_GATEWAY
            }
            RouteError::UpstreamTimeout(..) => StatusCode::GATEWAY_TIMEOUT,
            RouteError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable machine-readable code used in the JSON error envelope.
    pub fn code(&self) -> &'static str {
        match self {
            RouteError::BadRequest(_) => "BAD_REQUEST",
            RouteError::BadBody(_) => "BAD_REQUEST_BODY",
            RouteError::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            RouteError::Misdirected(_) => "MISDIRECTED",
            RouteError::NoRoute(_) | RouteError::NotRouted { .. } => "NO_ROUTE",
            RouteError::NotFound(_) => "NOT_FOUND",
            RouteError::Loop => "LOOP_DETECTED",
            RouteError::NoUpstream(_) => "NO_UPSTREAM",
            RouteError::NotListening(_) => "NOT_LISTENING",
            RouteError::Upstream(_) => "UPSTREAM_FAILED",
            RouteError::UpstreamTimeout(..) => "UPSTREAM_TIMEOUT",
            RouteError::Overloaded(_) => "TOO_MANY_CONNECTIONS",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_map_to_status_families() {
        let all = [
            RouteError::BadRequest("x".into()),
            RouteError::Misdirected("evil.com".into()),
            RouteError::NoRoute("x.localhost".into()),
            RouteError::NotRouted {
                name: "caddy.localhost".into(),
                why: vec!["caddy/c1: port 8090 is shared with another process".into()],
            },
            RouteError::NotFound("/api/x".into()),
            RouteError::Loop,
            RouteError::NoUpstream("web".into()),
            RouteError::NotListening("web".into()),
            RouteError::Upstream("reset".into()),
            RouteError::BadBody("bad chunk".into()),
            RouteError::MethodNotAllowed("CONNECT".into()),
            RouteError::Overloaded(4),
        ];
        for err in all {
            let family = err.status().as_u16() / 100;
            match err.side() {
                Side::Downstream => assert!(family == 4 || err.status() == 508, "{err}"),
                Side::Upstream => assert_eq!(err.status(), StatusCode::BAD_GATEWAY),
                Side::Internal => assert_eq!(family, 5),
            }
            assert!(err
                .code()
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_'));
        }
        assert_eq!(RouteError::Misdirected("a".into()).status().as_u16(), 421);
        assert_eq!(RouteError::Loop.status().as_u16(), 508);
        let timeout = RouteError::UpstreamTimeout("web".into(), std::time::Duration::from_secs(1));
        assert_eq!(timeout.side(), Side::Upstream);
        assert_eq!(timeout.status().as_u16(), 504);
    }
}
