//! What `agentfs doctor` found: one [`Check`] per line, as text or in the
//! router's JSON envelope.
//!
//! Text: `✔` passed, `!` works with a caveat, `✘` an essential part does
//! not work (doctor then exits 1), `-` not tried; each problem followed by
//! its fix. JSON: `{"status":"success","data":{"version":…,"checks":[…]}}`,
//! or when something essential failed
//! `{"status":"error","error":{"code":"CHECK_FAILED","message":…,"checks":[…]}}`;
//! each check is `{"check","status","message","fix"?,"details"?}` with
//! `status` one of `ok`, `warn`, `fail`, `skipped`.

use serde::Serialize;
use serde_json::{json, Value};

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, with a caveat worth fixing.
    Warn,
    /// Something essential does not work.
    Fail,
    /// Not tried (nothing to try, or what it needs failed above).
    Skipped,
}

impl Status {
    fn mark(self) -> &'static str {
        match self {
            Status::Ok => "✔",
            Status::Warn => "!",
            Status::Fail => "✘",
            Status::Skipped => "-",
        }
    }
}

/// One thing checked.
#[derive(Debug, Serialize)]
pub struct Check {
    /// A stable id, such as `router.version`.
    pub check: String,
    pub status: Status,
    /// What was checked and what was found.
    pub message: String,
    /// What to do about it (commands, or lines to add to a file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// What was measured, for scripts.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

impl Check {
    fn new(check: &str, status: Status, message: String, fix: Option<String>) -> Check {
        Check {
            check: check.to_owned(),
            status,
            message,
            fix,
            details: Value::Null,
        }
    }

    pub fn ok(check: &str, message: impl Into<String>) -> Check {
        Check::new(check, Status::Ok, message.into(), None)
    }

    pub fn warn(check: &str, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(check, Status::Warn, message.into(), Some(fix.into()))
    }

    pub fn fail(check: &str, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(check, Status::Fail, message.into(), Some(fix.into()))
    }

    pub fn skipped(check: &str, message: impl Into<String>) -> Check {
        Check::new(check, Status::Skipped, message.into(), None)
    }

    pub fn with_details(mut self, details: Value) -> Check {
        self.details = details;
        self
    }

    /// The check's line, and its fix indented below it.
    pub fn text(&self) -> String {
        let mut out = format!("{} {}\n", self.status.mark(), self.message);
        if let Some(fix) = &self.fix {
            let mut lines = fix.lines();
            if let Some(first) = lines.next() {
                out.push_str(&format!("    fix: {first}\n"));
            }
            for line in lines {
                out.push_str(&format!("         {line}\n"));
            }
        }
        out
    }
}

/// Whether an essential check failed.
pub fn failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}

/// The closing line of the text report.
pub fn summary(checks: &[Check]) -> String {
    let count = |status| checks.iter().filter(|c| c.status == status).count();
    let (fails, warns) = (count(Status::Fail), count(Status::Warn));
    match (fails, warns) {
        (0, 0) => "agentfs works here.".into(),
        (0, w) => format!("agentfs works here; {w} warning(s) above."),
        (f, _) => format!("{f} essential check(s) failed: agentfs will not work here until fixed."),
    }
}

/// The whole report in the router's JSON envelope.
pub fn envelope(checks: &[Check]) -> Value {
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.check.as_str())
        .collect();
    if failed.is_empty() {
        return json!({
            "status": "success",
            "data": { "version": env!("CARGO_PKG_VERSION"), "checks": checks },
        });
    }
    json!({
        "status": "error",
        "error": {
            "code": "CHECK_FAILED",
            "message": format!("essential checks failed: {}", failed.join(", ")),
            "version": env!("CARGO_PKG_VERSION"),
            "checks": checks,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_puts_the_fix_under_its_line() {
        let check = Check::fail("x", "x is broken", "do this\nand that");
        assert_eq!(
            check.text(),
            "✘ x is broken\n    fix: do this\n         and that\n"
        );
        assert_eq!(Check::ok("y", "fine").text(), "✔ fine\n");
    }

    #[test]
    fn a_failure_turns_the_envelope_into_an_error() {
        let mut checks = vec![Check::ok("a", "fine"), Check::warn("b", "hmm", "fix b")];
        let ok = envelope(&checks);
        assert_eq!(ok["status"], "success");
        assert_eq!(ok["data"]["checks"][1]["status"], "warn");
        assert_eq!(ok["data"]["checks"][1]["fix"], "fix b");
        assert!(ok["data"]["checks"][0].get("fix").is_none());
        assert!(!failed(&checks));
        checks.push(Check::fail("c", "broken", "fix c").with_details(json!({"n": 1})));
        let err = envelope(&checks);
        assert_eq!(err["status"], "error");
        assert_eq!(err["error"]["code"], "CHECK_FAILED");
        assert_eq!(err["error"]["message"], "essential checks failed: c");
        assert_eq!(err["error"]["checks"][2]["details"]["n"], 1);
        assert!(failed(&checks));
    }
}
