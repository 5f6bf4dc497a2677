//! Which optional kinds (Kyverno's policies, CloudNativePG's) the API server serves, kept current
//! while the operator runs: one metadata-only watch of CustomResourceDefinitions notices a relevant
//! CRD being created or deleted, then discovery is asked again (three GETs) until it agrees. Publishes
//! the served set; never writes to the cluster and decides nothing about a custom resource.
//!
//! Why a CRD watch rather than periodic discovery: at rest it costs one watch renewal every few
//! minutes (no GET at all), and it notices an install within a second or two; a periodic re-discovery
//! would cost three GETs per period forever and still notice late.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::watch;
use tracing::{info, warn};

use super::children::{cnpg_child_kinds, kind_key};
use super::kyverno::KyvernoServed;
use crate::reconcile::watch_backoff::watch_backoff;
use crate::render::kyverno::{
    cluster_policy_resource, image_validating_policy_resource, validating_policy_resource,
};

/// After a relevant CRD changed, discovery is asked again after these delays (seconds, each after
/// the previous attempt; about a minute in all) until it agrees with the CRDs seen: an established CRD
/// may take a few seconds to be discoverable.
const RETRY_DELAYS: [u64; 8] = [0, 1, 2, 3, 5, 8, 13, 28];

/// Kinds the operator uses when they are served and waits for otherwise.
pub fn optional_kinds() -> Vec<ApiResource> {
    let mut kinds = vec![
        cluster_policy_resource(),
        validating_policy_resource(),
        image_validating_policy_resource(),
    ];
    kinds.extend(cnpg_child_kinds());
    kinds
}

/// Name of the CRD that serves `resource` (`<plural>.<group>`).
fn crd_name(resource: &ApiResource) -> String {
    format!("{}.{}", resource.plural, resource.group)
}

/// The optional kinds served right now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Served {
    kinds: BTreeSet<String>,
}

impl Served {
    /// A set of served kinds (tests and start-up).
    pub fn of(resources: &[ApiResource]) -> Self {
        Self {
            kinds: resources.iter().map(kind_key).collect(),
        }
    }

    /// Whether `resource` is served.
    pub fn has(&self, resource: &ApiResource) -> bool {
        self.kinds.contains(&kind_key(resource))
    }

    /// The optional kinds served, in [`optional_kinds`] order.
    pub fn resources(&self) -> Vec<ApiResource> {
        optional_kinds()
            .into_iter()
            .filter(|r| self.has(r))
            .collect()
    }

    /// Kyverno's share of the set.
    pub fn kyverno(&self) -> KyvernoServed {
        KyvernoServed {
            cluster_policy: self.has(&cluster_policy_resource()),
            cel_policies: self.has(&validating_policy_resource())
                && self.has(&image_validating_policy_resource()),
        }
    }

    fn crd_names(&self) -> BTreeSet<String> {
        self.resources().iter().map(crd_name).collect()
    }
}

/// Ask discovery which optional kinds are served: one GET per group version; a group that is not
/// there answers 404 (not served).
pub async fn discover(client: &Client) -> Result<Served, kube::Error> {
    let mut served = Vec::new();
    let mut versions: Vec<String> = optional_kinds()
        .into_iter()
        .map(|r| r.api_version)
        .collect();
    versions.dedup();
    for api_version in versions {
        let plurals = match client.list_api_group_resources(&api_version).await {
            Ok(list) => list.resources.into_iter().map(|r| r.name).collect(),
            Err(kube::Error::Api(status)) if status.code == 404 => Vec::new(),
            Err(other) => return Err(other),
        };
        served.extend(
            optional_kinds()
                .into_iter()
                .filter(|r| r.api_version == api_version && plurals.contains(&r.plural)),
        );
    }
    Ok(Served::of(&served))
}

/// Discover once now (so the first reconciles know), then keep the answer current in the background.
/// The receiver always holds the latest served set.
pub async fn served_kinds(client: &Client) -> watch::Receiver<Served> {
    let initial = match discover(client).await {
        Ok(served) => served,
        Err(error) => {
            warn!(%error, "discovery of optional kinds failed at start; asking again when CRDs change");
            Served::default()
        }
    };
    info!(served = ?initial.resources().iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(), "optional kinds served");
    let (sender, receiver) = watch::channel(initial);
    tokio::spawn(follow_crds(client.clone(), sender));
    receiver
}

/// The CRD watch: on every relevant change (and after each re-list), discovery is asked again until
/// it agrees with the CRDs that exist. CRD events keep being read while it waits to ask again, so the
/// CRDs it must agree with are always the current ones (several CRDs of a group come and go together).
async fn follow_crds(client: Client, sender: watch::Sender<Served>) {
    let relevant: BTreeSet<String> = optional_kinds().iter().map(crd_name).collect();
    // Metadata only: names are all this needs, and a CRD's schema can be hundreds of KiB.
    let crds: Api<PartialObjectMeta<CustomResourceDefinition>> = Api::all(client.clone());
    let mut present: BTreeSet<String> = BTreeSet::new();
    let mut listing: BTreeSet<String> = BTreeSet::new();
    let mut events = watcher(crds, watcher::Config::default())
        .backoff(watch_backoff())
        .boxed();
    // The next attempt to ask discovery (index into RETRY_DELAYS) and when, while it disagrees.
    let mut retry: Option<(usize, tokio::time::Instant)> = None;
    loop {
        let asked_at = retry.map(|(_, at)| at);
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else { return };
                let changed = match event {
                    Ok(watcher::Event::Apply(crd)) => {
                        let name = crd.name_any();
                        relevant.contains(&name) && present.insert(name)
                    }
                    Ok(watcher::Event::Delete(crd)) => present.remove(&crd.name_any()),
                    Ok(watcher::Event::Init) => {
                        listing.clear();
                        false
                    }
                    Ok(watcher::Event::InitApply(crd)) => {
                        let name = crd.name_any();
                        if relevant.contains(&name) {
                            listing.insert(name);
                        }
                        false
                    }
                    Ok(watcher::Event::InitDone) => {
                        let changed = listing != present;
                        present = std::mem::take(&mut listing);
                        changed || present != sender.borrow().crd_names()
                    }
                    Err(error) => {
                        warn!(%error, "watching CustomResourceDefinitions failed; retrying with backoff");
                        false
                    }
                };
                if changed {
                    retry = Some((0, tokio::time::Instant::now()));
                }
            }
            () = sleep_until(asked_at), if asked_at.is_some() => {
                let attempt = retry.map_or(0, |(attempt, _)| attempt);
                retry = match ask(&client, &sender, &present).await {
                    true => None,
                    false => RETRY_DELAYS.get(attempt + 1).map(|delay| {
                        (attempt + 1, tokio::time::Instant::now() + Duration::from_secs(*delay))
                    }),
                };
            }
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// Ask discovery once and publish a new answer; whether it agrees with the CRDs `present`.
async fn ask(client: &Client, sender: &watch::Sender<Served>, present: &BTreeSet<String>) -> bool {
    match discover(client).await {
        Ok(served) => {
            let agrees = served.crd_names() == *present;
            sender.send_if_modified(|current| {
                let modified = *current != served;
                if modified {
                    info!(served = ?served.resources().iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(), "optional kinds served changed");
                    *current = served;
                }
                modified
            });
            agrees
        }
        Err(error) => {
            warn!(%error, "discovery of optional kinds failed; retrying");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_kinds_answer_per_kind_and_for_kyverno() {
        let none = Served::default();
        assert_eq!(none.kyverno(), KyvernoServed::default());
        assert!(none.resources().is_empty());
        let some = Served::of(&[
            validating_policy_resource(),
            image_validating_policy_resource(),
            crate::render::cnpg_cluster_resource(),
        ]);
        assert_eq!(
            some.kyverno(),
            KyvernoServed {
                cluster_policy: false,
                cel_policies: true
            }
        );
        assert!(some.has(&crate::render::cnpg_cluster_resource()));
        assert!(!some.has(&crate::render::cnpg_database_resource()));
        assert_eq!(
            some.crd_names(),
            BTreeSet::from([
                "validatingpolicies.policies.kyverno.io".to_string(),
                "imagevalidatingpolicies.policies.kyverno.io".to_string(),
                "clusters.postgresql.cnpg.io".to_string(),
            ])
        );
    }

    #[test]
    fn only_one_half_of_the_cel_kinds_is_not_cel() {
        let half = Served::of(&[validating_policy_resource()]);
        assert!(!half.kyverno().cel_policies);
    }
}
