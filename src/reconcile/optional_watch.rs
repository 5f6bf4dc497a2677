//! Label-selected watches of the optional kinds (Kyverno's policies, CloudNativePG's), started when a
//! kind becomes served and stopped (its cache forgotten) when it goes, while the controllers run.
//! Events of a kind go to the controller that owns such children; after a kind's first list, and after
//! it goes, both controllers are told to look at every object again. Decides nothing else.

use std::collections::BTreeMap;

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tracing::info;

use super::children::{ChildStores, kind_key};
use super::discovery::{Served, optional_kinds};
use super::managed_selector;
use crate::reconcile::watch_backoff::watch_backoff;

/// Where the events of optional kinds go.
pub struct Triggers {
    /// Children of Registries (CloudNativePG kinds).
    pub registry: mpsc::UnboundedSender<DynamicObject>,
    /// Children of ImagePolicies (Kyverno kinds).
    pub policy: mpsc::UnboundedSender<DynamicObject>,
    /// "Look at everything again" (one per controller): a kind was listed for the first time, or
    /// went away.
    pub everything: Vec<mpsc::UnboundedSender<()>>,
}

/// Start the watches of the kinds served now (at once, so their caches exist before the controllers
/// start and need no "look again"), then keep one watch per served optional kind until `served`
/// closes: the returned future does that.
pub fn run(
    client: Client,
    stores: ChildStores,
    page_size: u32,
    mut served: watch::Receiver<Served>,
    triggers: Triggers,
) -> impl Future<Output = ()> + Send + 'static {
    let mut running: BTreeMap<String, AbortHandle> = BTreeMap::new();
    let initial = served.borrow_and_update().clone();
    for resource in initial.resources() {
        let handle = start(
            &client,
            &stores,
            page_size,
            resource.clone(),
            &triggers,
            false,
        );
        running.insert(kind_key(&resource), handle);
    }
    async move {
        loop {
            if served.changed().await.is_err() {
                return;
            }
            let now = served.borrow_and_update().clone();
            for resource in optional_kinds() {
                let key = kind_key(&resource);
                match (now.has(&resource), running.contains_key(&key)) {
                    (true, false) => {
                        info!(kind = %resource.kind, "kind served: watching it");
                        let handle = start(&client, &stores, page_size, resource, &triggers, true);
                        running.insert(key, handle);
                    }
                    (false, true) => {
                        info!(kind = %resource.kind, "kind no longer served: its watch stops");
                        if let Some(handle) = running.remove(&key) {
                            handle.abort();
                        }
                        stores.remove(&resource);
                        for everything in &triggers.everything {
                            let _ = everything.send(());
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Start the watch of one kind: its cache in `stores`, its events to the owning controller; with
/// `announce`, both controllers look at everything again once its first list is in the cache.
fn start(
    client: &Client,
    stores: &ChildStores,
    page_size: u32,
    resource: ApiResource,
    triggers: &Triggers,
    announce: bool,
) -> AbortHandle {
    let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
    let config = watcher::Config::default()
        .labels(&managed_selector())
        .page_size(page_size);
    let to = if resource.group == crate::render::cnpg_cluster_resource().group {
        triggers.registry.clone()
    } else {
        triggers.policy.clone()
    };
    let everything = triggers.everything.clone();
    let mut listed = !announce;
    let events = stores
        .cache(&resource, watcher(api, config))
        .backoff(watch_backoff())
        .inspect(move |event| {
            if !listed && matches!(event, Ok(watcher::Event::InitDone)) {
                listed = true;
                for everything in &everything {
                    let _ = everything.send(());
                }
            }
        })
        .touched_objects();
    tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            if let Ok(object) = event
                && to.send(object).is_err()
            {
                return;
            }
        }
    })
    .abort_handle()
}
