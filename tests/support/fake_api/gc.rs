//! Deletion semantics: finalizers + deletionTimestamp, and ownerReference garbage collection
//! with background cascade (also Orphan). It must not parse HTTP.
//!
//! Simplifications (documented in `tests/support/mod.rs`): `Foreground` behaves like
//! `Background`; GC only removes dependents whose owners were deleted through this server
//! (a dangling reference to a uid that never existed is left alone, so tests can create
//! dependents before owners). A dependent written after its owner was deleted is collected right
//! after the write, as the real collector does when it observes the object.

use serde_json::{Value, json};

use super::resources::ApiResourceSpec;
use super::status::ApiResult;
use super::store::{State, meta_mut, meta_str, now_rfc3339};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Orphan,
}

impl Propagation {
    /// Reads `propagationPolicy` (or the legacy `orphanDependents`) from DeleteOptions.
    pub fn from_delete_options(body: &Value) -> Self {
        let orphan_legacy = body.get("orphanDependents").and_then(Value::as_bool) == Some(true);
        match body.get("propagationPolicy").and_then(Value::as_str) {
            Some("Orphan") => Propagation::Orphan,
            _ if orphan_legacy => Propagation::Orphan,
            _ => Propagation::Background,
        }
    }
}

fn has_finalizers(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

impl State {
    /// Deletes an object: with finalizers it only gets a deletionTimestamp (MODIFIED);
    /// otherwise it is removed (DELETED) and garbage collection runs.
    /// Returns the object's last state.
    pub fn delete(
        &mut self,
        res: &ApiResourceSpec,
        ns: &str,
        name: &str,
        propagation: Propagation,
    ) -> ApiResult<Value> {
        let Some(current) = self.get(res, ns, name).cloned() else {
            return Err(Self::not_found(res, name));
        };
        if propagation == Propagation::Orphan
            && let Some(uid) = meta_str(&current, "uid")
        {
            self.orphan_dependents_of(uid);
        }
        if has_finalizers(&current) {
            if current.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(current);
            }
            let mut marked = current.clone();
            let m = meta_mut(&mut marked);
            m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            return self.write_marked(res, ns, name, marked);
        }
        self.remove_now(res, ns, name, current);
        let removed = self.get_removed_event_object();
        self.collect_garbage();
        Ok(removed)
    }

    fn get_removed_event_object(&self) -> Value {
        self.history
            .back()
            .map(|e| e.object.clone())
            .unwrap_or(Value::Null)
    }

    /// Stores an object whose deletionTimestamp the server itself set.
    fn write_marked(
        &mut self,
        res: &ApiResourceSpec,
        ns: &str,
        name: &str,
        mut marked: Value,
    ) -> ApiResult<Value> {
        self.rv += 1;
        meta_mut(&mut marked).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.objects
            .entry(res.id())
            .or_default()
            .insert((ns.to_string(), name.to_string()), marked.clone());
        self.record(res, ns, "MODIFIED", marked.clone());
        Ok(marked)
    }

    fn orphan_dependents_of(&mut self, owner_uid: &str) {
        let dependents: Vec<(ApiResourceSpec, String, String, Value)> = self.dependents(|refs| {
            refs.iter()
                .any(|r| r.get("uid").and_then(Value::as_str) == Some(owner_uid))
        });
        for (res, ns, name, mut obj) in dependents {
            if let Some(refs) = obj
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
            }
            // Goes through the normal write path so watchers see the change.
            let _ = self.replace(
                &res,
                &ns,
                &name,
                obj,
                "garbage-collector",
                super::store::Scope::Everything,
                None,
            );
        }
    }

    /// Objects whose ownerReferences satisfy `pred`.
    fn dependents(
        &self,
        pred: impl Fn(&Vec<Value>) -> bool,
    ) -> Vec<(ApiResourceSpec, String, String, Value)> {
        let mut out = Vec::new();
        for res in &self.resources {
            for obj in self.list(res, None) {
                let refs = obj
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array);
                if let Some(refs) = refs.filter(|r| !r.is_empty())
                    && pred(refs)
                {
                    let ns = meta_str(obj, "namespace").unwrap_or_default().to_string();
                    let name = meta_str(obj, "name").unwrap_or_default().to_string();
                    out.push((res.clone(), ns, name, obj.clone()));
                }
            }
        }
        out
    }

    fn uid_exists(&self, uid: &str) -> bool {
        self.objects
            .values()
            .flat_map(|m| m.values())
            .any(|o| meta_str(o, "uid") == Some(uid))
    }

    /// Like the real garbage collector reacting to an added or updated object: a dependent written
    /// after all its owners are gone (one of them deleted through this server) is collected at once.
    /// The write itself already succeeded, as it does on a real API server.
    pub fn collect_if_orphaned(&mut self, res: &ApiResourceSpec, ns: &str, name: &str) {
        let Some(refs) = self
            .get(res, ns, name)
            .and_then(|o| o.pointer("/metadata/ownerReferences"))
            .and_then(Value::as_array)
            .filter(|refs| !refs.is_empty())
            .cloned()
        else {
            return;
        };
        let uids: Vec<&str> = refs
            .iter()
            .map(|r| r.get("uid").and_then(Value::as_str).unwrap_or_default())
            .collect();
        // The cheap test first: almost every write references live owners only.
        if uids.iter().any(|uid| self.deleted_uids.contains(*uid))
            && uids.iter().all(|uid| !self.uid_exists(uid))
        {
            let _ = self.delete(res, ns, name, Propagation::Background);
        }
    }

    /// Background cascade: deletes every object whose owners (by uid) are all gone, at least
    /// one of them deleted through this server; repeats until nothing changes (chains).
    pub fn collect_garbage(&mut self) {
        loop {
            let orphans = self.dependents(|refs| {
                refs.iter().all(|r| {
                    let uid = r.get("uid").and_then(Value::as_str).unwrap_or_default();
                    !self.uid_exists(uid)
                }) && refs.iter().any(|r| {
                    let uid = r.get("uid").and_then(Value::as_str).unwrap_or_default();
                    self.deleted_uids.contains(uid)
                })
            });
            let mut progressed = false;
            for (res, ns, name, obj) in orphans {
                if obj.pointer("/metadata/deletionTimestamp").is_some() {
                    continue;
                }
                if self
                    .delete(&res, &ns, &name, Propagation::Background)
                    .is_ok()
                {
                    progressed = true;
                }
            }
            if !progressed {
                return;
            }
        }
    }
}
