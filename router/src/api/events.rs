//! `/api/events`: the instances as server-sent events, for the dashboard
//! and anything else that wants to follow them.
//!
//! Each event's data is the API envelope around an [`instances::snapshot`]
//! (`{"status":"success","data":{…,"instances":[…]}}`): one at connect,
//! one whenever the route table changes, and one about every second while
//! counters change (a snapshot equal to the last one sent is not sent).
//! A comment line every [`HEARTBEAT`] finds clients that went away. The
//! window is the query's, as on the dashboard (at most
//! [`PAGE_LIMIT`] instances per event).
//!
//! A stream ends when the router begins to stop, so an open dashboard does
//! not hold the router's drain.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::Response;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::window::{Window, PAGE_LIMIT};
use super::{instances, About, ResBody, RouteError};
use crate::table::Table;

/// How often counters are looked at.
const COUNTERS_EVERY: Duration = Duration::from_secs(1);

/// Longest silence before a comment line is sent.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Events waiting for a slow client; the producer waits beyond that.
const BACKLOG: usize = 2;

/// Asks a client that lost the stream to come back after a second.
const RETRY: &[u8] = b"retry: 1000\n\n";

/// Starts a stream of events for the window the query asks for.
pub fn stream(query: Option<&str>, about: &About<'_>) -> Result<Response<ResBody>, RouteError> {
    let window = Window::from_query(query, Window::PAGE)?.at_most(PAGE_LIMIT);
    let (tx, rx) = mpsc::channel(BACKLOG);
    let feed = Feed {
        tx,
        routes: about.routes.clone(),
        stopping: about.stopping.clone(),
        port: about.port,
        window,
    };
    tokio::spawn(feed.run());
    let mut resp = Response::new(ResBody::Feed(rx));
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

/// One client's stream, made on its own task.
struct Feed {
    tx: mpsc::Sender<Bytes>,
    routes: watch::Receiver<Arc<Table>>,
    stopping: watch::Receiver<bool>,
    port: u16,
    window: Window,
}

impl Feed {
    async fn run(mut self) {
        if !self.send(Bytes::from_static(RETRY)).await {
            return;
        }
        let mut tick = tokio::time::interval(COUNTERS_EVERY);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last = String::new();
        let mut sent_at = Instant::now();
        loop {
            let table = Arc::clone(&self.routes.borrow_and_update());
            let data = event_data(&table, self.port, &self.window);
            drop(table);
            let event = if data != last {
                let event = format!("data: {data}\n\n");
                last = data;
                Some(Bytes::from(event))
            } else if sent_at.elapsed() >= HEARTBEAT {
                Some(Bytes::from_static(b":\n\n"))
            } else {
                None
            };
            if let Some(event) = event {
                if !self.send(event).await {
                    return;
                }
                sent_at = Instant::now();
            }
            tokio::select! {
                _ = self.stopping.wait_for(|stop| *stop) => return,
                () = self.tx.closed() => return,
                changed = self.routes.changed() => if changed.is_err() { return },
                _ = tick.tick() => {}
            }
        }
    }

    /// Sends one event; `false` when the client is gone or the router stops.
    async fn send(&mut self, event: Bytes) -> bool {
        tokio::select! {
            sent = self.tx.send(event) => sent.is_ok(),
            _ = self.stopping.wait_for(|stop| *stop) => false,
        }
    }
}

/// One event's data: the envelope around the snapshot, on one line.
fn event_data(table: &Table, port: u16, window: &Window) -> String {
    let snapshot = instances::snapshot(table, port, window);
    json!({ "status": "success", "data": snapshot }).to_string()
}
