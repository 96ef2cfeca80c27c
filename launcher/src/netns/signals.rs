//! The signals wrap's reaper passes to every process of the app's tree:
//! `netns-run` and init catch them so that none ends them (that would take
//! the program down with SIGKILL, through the parent-death signal and the
//! PID namespace), and do nothing more, since the program has them already.

use anyhow::Result;
use tokio::signal::unix::{signal, Signal, SignalKind};

pub struct Caught([Signal; 4]);

impl Caught {
    pub fn new() -> Result<Caught> {
        Ok(Caught([
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
            signal(SignalKind::quit())?,
        ]))
    }

    /// The next one, to be let go.
    pub async fn next(&mut self) {
        let [interrupt, terminate, hangup, quit] = &mut self.0;
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
            _ = hangup.recv() => {}
            _ = quit.recv() => {}
        }
    }
}
