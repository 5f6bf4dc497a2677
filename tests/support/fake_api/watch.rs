//! Watch streams: replay from a resourceVersion (410 Expired as an ERROR event when it is
//! older than the retained history), `sendInitialEvents` with the initial-events-end
//! BOOKMARK, periodic bookmarks, server-side `timeoutSeconds`, selectors, and
//! `drop_watches()`. It must not mutate the store.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::resources::ApiResourceSpec;
use super::select::Selector;
use super::server::Shared;
use super::status::{ApiError, ApiResult};
use super::store::StoredEvent;

pub struct WatchRequest {
    pub res: ApiResourceSpec,
    pub namespace: Option<String>,
    pub selector: Selector,
    pub resource_version: Option<String>,
    pub send_initial_events: bool,
    pub allow_bookmarks: bool,
    pub timeout: Option<Duration>,
}

impl WatchRequest {
    fn wants(&self, event: &StoredEvent) -> bool {
        event.resource_id == self.res.id()
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| *ns == event.namespace)
            && self.selector.matches(&event.object)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({ "resourceVersion": rv.to_string() });
        if initial_end {
            metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        line(
            "BOOKMARK",
            &json!({"kind": self.res.kind, "apiVersion": self.res.api_version(), "metadata": metadata}),
        )
    }
}

fn line(event_type: &str, object: &Value) -> Bytes {
    let mut text = json!({ "type": event_type, "object": object }).to_string();
    text.push('\n');
    Bytes::from(text)
}

/// Starts a watch and returns the channel of newline-delimited JSON events that makes up
/// the response body. The stream ends on timeout, `drop_watches()`, server shutdown, or
/// when the client goes away.
pub fn start(shared: &Arc<Shared>, req: WatchRequest) -> ApiResult<mpsc::Receiver<Bytes>> {
    let mut first: Vec<Bytes> = Vec::new();
    let mut expired = false;
    let (mut events, start_rv) = {
        let state = shared.lock_state();
        let requested: Option<u64> = match req.resource_version.as_deref() {
            None | Some("") => None,
            Some(rv) => Some(
                rv.parse()
                    .map_err(|_| ApiError::BadRequest(format!("invalid resourceVersion {rv:?}")))?,
            ),
        };
        match requested {
            Some(rv) if rv > 0 && !req.send_initial_events => {
                if rv < state.compacted_rv {
                    let gone = ApiError::Gone(format!(
                        "too old resource version: {rv} ({})",
                        state.compacted_rv + 1
                    ));
                    first.push(line("ERROR", &gone.to_status()));
                    expired = true;
                } else {
                    for event in state.history.iter().filter(|e| e.rv > rv && req.wants(e)) {
                        first.push(line(event.event_type, &event.object));
                    }
                }
            }
            _ => {
                // rv unset or "0": synthetic ADDED for the current state, like the watch cache.
                let ns = req.namespace.as_deref();
                for obj in state
                    .list(&req.res, ns)
                    .into_iter()
                    .filter(|o| req.selector.matches(o))
                {
                    first.push(line("ADDED", obj));
                }
                if req.send_initial_events {
                    first.push(req.bookmark(state.rv, true));
                }
            }
        }
        // Subscribing under the state lock means no event is missed or duplicated.
        (state.events_tx.subscribe(), state.rv)
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut drop_signal = shared.drop_watches.subscribe();
    let bookmark_every = shared.bookmark_interval;
    tokio::spawn(async move {
        for chunk in first {
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
        if expired {
            return;
        }
        let deadline = tokio::time::sleep(req.timeout.unwrap_or(Duration::from_secs(3600)));
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(bookmark_every);
        ticker.tick().await;
        let mut last_rv = start_rv;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = drop_signal.changed() => return,
                _ = tx.closed() => return,
                _ = ticker.tick(), if req.allow_bookmarks => {
                    if tx.send(req.bookmark(last_rv, false)).await.is_err() {
                        return;
                    }
                }
                received = events.recv() => match received {
                    Ok(event) => {
                        last_rv = last_rv.max(event.rv);
                        if req.wants(&event) && tx.send(line(event.event_type, &event.object)).await.is_err() {
                            return;
                        }
                    }
                    // A watcher that fell behind is closed, as the apiserver does; clients re-watch.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    Ok(rx)
}
