//! Which cached children of one kind belong to which owner, kept from that kind's watch events, so
//! that finding an owner's children (prune on every pass, cleanup) looks at those few children
//! instead of comparing labels on every cached child. A hint, not the truth: the caches are, and
//! `ChildStores::labelled` checks every name it gets from here against them.

use std::collections::{BTreeMap, HashMap, HashSet};

use kube::api::DynamicObject;
use kube::runtime::watcher::Event;

use crate::render::labels::{OWNER_KIND, OWNER_NAME, OWNER_NAMESPACE};

/// An owner as its children's labels name it: kind, namespace (empty for cluster scope), name.
pub type OwnerKey = (String, String, String);

/// A child within its kind: namespace, name.
pub type ChildName = (Option<String>, String);

type Owners = HashMap<OwnerKey, HashSet<ChildName>>;

/// The owner of a label set: `None` unless it carries all three owner labels.
pub fn owner_of(labels: &BTreeMap<String, String>) -> Option<OwnerKey> {
    Some((
        labels.get(OWNER_KIND)?.clone(),
        labels.get(OWNER_NAMESPACE)?.clone(),
        labels.get(OWNER_NAME)?.clone(),
    ))
}

/// The children of each owner within one kind.
///
/// A child whose owner labels change (orphaned under `Retain`) stays listed under its former owner
/// until the next relist: the event carries only the new labels. Lookups drop it, as its labels no
/// longer match; it costs a few bytes, never a wrong answer.
#[derive(Debug, Default)]
pub struct KindIndex {
    owners: Owners,
    /// While the watch relists (after `Init`, until `InitDone`): what the new list has shown so far.
    /// The cache keeps serving its old state meanwhile, so lookups see both; at `InitDone` this
    /// replaces `owners`, which drops what went while the watch was down.
    relisting: Option<Owners>,
}

fn add(owners: &mut Owners, object: &DynamicObject) {
    let Some(owner) = object.metadata.labels.as_ref().and_then(owner_of) else {
        return;
    };
    owners.entry(owner).or_default().insert(name_of(object));
}

fn remove(owners: &mut Owners, owner: &OwnerKey, child: &ChildName) {
    if let Some(children) = owners.get_mut(owner) {
        children.remove(child);
        if children.is_empty() {
            owners.remove(owner);
        }
    }
}

fn name_of(object: &DynamicObject) -> ChildName {
    (
        object.metadata.namespace.clone(),
        object.metadata.name.clone().unwrap_or_default(),
    )
}

impl KindIndex {
    /// Take one watch event of this kind, after the cache took it.
    pub fn take(&mut self, event: &Event<DynamicObject>) {
        match event {
            Event::Apply(object) => add(&mut self.owners, object),
            Event::Delete(object) => {
                if let Some(owner) = object.metadata.labels.as_ref().and_then(owner_of) {
                    let child = name_of(object);
                    remove(&mut self.owners, &owner, &child);
                    if let Some(relisting) = &mut self.relisting {
                        remove(relisting, &owner, &child);
                    }
                }
            }
            Event::Init => self.relisting = Some(Owners::new()),
            Event::InitApply(object) => add(self.relisting.get_or_insert_default(), object),
            Event::InitDone => {
                if let Some(listed) = self.relisting.take() {
                    self.owners = listed;
                }
            }
        }
    }

    /// The children listed under `owner` (possibly some that left it since: check them).
    pub fn children_of(&self, owner: &OwnerKey) -> Vec<ChildName> {
        let mut children: HashSet<&ChildName> = HashSet::new();
        for owners in std::iter::once(&self.owners).chain(self.relisting.as_ref()) {
            children.extend(owners.get(owner).into_iter().flatten());
        }
        children.into_iter().cloned().collect()
    }

    /// How many children are listed.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.owners.values().map(HashSet::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ApiResource;

    fn child(name: &str, owner: Option<&str>) -> DynamicObject {
        let mut object = DynamicObject::new(name, &ApiResource::erase::<ConfigMap>(&()));
        object.metadata.namespace = Some("ns".into());
        if let Some(owner) = owner {
            object.metadata.labels = Some(BTreeMap::from([
                (OWNER_KIND.to_string(), "Registry".to_string()),
                (OWNER_NAMESPACE.to_string(), "ns".to_string()),
                (OWNER_NAME.to_string(), owner.to_string()),
            ]));
        }
        object
    }

    fn owner(name: &str) -> OwnerKey {
        ("Registry".into(), "ns".into(), name.into())
    }

    fn names(index: &KindIndex, of: &str) -> Vec<String> {
        let mut names: Vec<String> = index
            .children_of(&owner(of))
            .into_iter()
            .map(|(_, name)| name)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn children_are_listed_under_their_owner_until_deleted() {
        let mut index = KindIndex::default();
        index.take(&Event::Apply(child("a-1", Some("a"))));
        index.take(&Event::Apply(child("a-2", Some("a"))));
        index.take(&Event::Apply(child("b-1", Some("b"))));
        index.take(&Event::Apply(child("stray", None)));
        index.take(&Event::Apply(child("a-1", Some("a"))));
        assert_eq!(names(&index, "a"), ["a-1", "a-2"]);
        assert_eq!(names(&index, "b"), ["b-1"]);
        assert_eq!(index.len(), 3, "unlabelled objects are not listed");
        index.take(&Event::Delete(child("a-1", Some("a"))));
        assert_eq!(names(&index, "a"), ["a-2"]);
        index.take(&Event::Delete(child("b-1", Some("b"))));
        assert!(names(&index, "b").is_empty());
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn a_relist_serves_old_and_new_until_done_then_drops_what_went_while_down() {
        let mut index = KindIndex::default();
        index.take(&Event::Apply(child("a-1", Some("a"))));
        index.take(&Event::Apply(child("a-gone", Some("a"))));
        index.take(&Event::Init);
        index.take(&Event::InitApply(child("a-1", Some("a"))));
        index.take(&Event::InitApply(child("a-new", Some("a"))));
        assert_eq!(
            names(&index, "a"),
            ["a-1", "a-gone", "a-new"],
            "mid-relist the cache still holds its old state"
        );
        index.take(&Event::InitDone);
        assert_eq!(names(&index, "a"), ["a-1", "a-new"]);
        // A deletion while relisting leaves both lists.
        index.take(&Event::Init);
        index.take(&Event::InitApply(child("a-1", Some("a"))));
        index.take(&Event::Delete(child("a-1", Some("a"))));
        assert_eq!(names(&index, "a"), ["a-new"]);
        index.take(&Event::InitDone);
        assert!(names(&index, "a").is_empty());
    }
}
