//! How commands reach a stack's supervisor: its control socket
//! (`control.sock`, 0600, in the stack's private directory). One request per
//! connection: a JSON line in, a JSON line out, `{"ok":true,"data":…}` or
//! `{"ok":false,"error":"…"}`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest request or reply line: a few service names, or a status.
pub const MAX_LINE: usize = 1024 * 1024;

/// What a command asks the supervisor.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start these services (all when empty) and what they need, unless
    /// they run; the stack file is read again first.
    Start { services: Vec<String> },
    /// Stop one service and start it again at once.
    Restart { service: String },
    /// Stop every service in reverse dependency order, then exit.
    Down { timeout_secs: u64 },
    /// Where the service's log stood at `unix_ms` (for `logs --since`).
    LogMark { service: String, unix_ms: u64 },
}

/// Sends `request` and returns the reply's data, waiting at most `timeout`
/// for it.
pub fn call(socket: &Path, request: &Request, timeout: Duration) -> Result<Value> {
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach the stack's supervisor at {}",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut reply = String::new();
    BufReader::new(std::io::Read::take(stream, MAX_LINE as u64))
        .read_line(&mut reply)
        .context("the stack's supervisor did not answer")?;
    let reply: Value = serde_json::from_str(&reply)
        .map_err(|e| anyhow!("the stack's supervisor answered badly ({e}): {reply:?}"))?;
    if reply["ok"] == Value::Bool(true) {
        return Ok(reply["data"].clone());
    }
    match reply["error"].as_str() {
        Some(error) => bail!("{error}"),
        None => bail!("the stack's supervisor answered badly: {reply}"),
    }
}

/// The reply line for a handled request.
pub fn reply(result: Result<Value>) -> Vec<u8> {
    let value = match result {
        Ok(data) => serde_json::json!({ "ok": true, "data": data }),
        Err(err) => serde_json::json!({ "ok": false, "error": format!("{err:#}") }),
    };
    let mut line = serde_json::to_vec(&value).unwrap_or_default();
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_as_written() {
        let start = Request::Start {
            services: vec!["web".into()],
        };
        let text = serde_json::to_string(&start).unwrap();
        assert_eq!(text, r#"{"op":"start","services":["web"]}"#);
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), start);
        assert!(serde_json::from_str::<Request>(r#"{"op":"explode"}"#).is_err());
    }

    #[test]
    fn a_call_gets_the_data_or_the_error() {
        let tmp = tempfile::tempdir().unwrap();
        let socket = tmp.path().join("c.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let server = std::thread::spawn(move || {
            for answer in [
                Ok(serde_json::json!({"x": 1})),
                Err(anyhow!("no such service")),
            ] {
                let (mut conn, _) = listener.accept().unwrap();
                let mut line = String::new();
                BufReader::new(&conn).read_line(&mut line).unwrap();
                assert!(line.contains("\"op\":\"restart\""));
                conn.write_all(&reply(answer)).unwrap();
            }
        });
        let restart = Request::Restart {
            service: "web".into(),
        };
        let timeout = Duration::from_secs(10);
        assert_eq!(call(&socket, &restart, timeout).unwrap()["x"], 1);
        let err = call(&socket, &restart, timeout).unwrap_err();
        assert_eq!(err.to_string(), "no such service");
        server.join().unwrap();
    }
}
