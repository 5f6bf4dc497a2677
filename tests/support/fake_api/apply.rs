//! Server-side apply and `metadata.managedFields` bookkeeping (FieldsV1 field sets per manager).
//! It must not do HTTP; it computes the object to store and hands it to `State::replace/create`.
//!
//! Model (a simplification of structured-merge-diff): a field set is the set of leaf paths
//! (`f:<key>` per map level; list items with a string `name` are `k:{"name":..}` elements,
//! other lists are atomic leaves). An apply owns exactly the leaves of its configuration;
//! leaves it owned before and no longer sends are removed unless another manager owns them;
//! changing a value another manager owns is a 409 conflict unless `force`.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::resources::ApiResourceSpec;
use super::status::{ApiError, ApiResult};
use super::store::{Scope, State, meta, meta_mut, now_rfc3339};

pub type FieldPath = Vec<String>;
pub type FieldSet = BTreeSet<FieldPath>;

/// One `managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    subresource: Option<String>,
    fields: FieldSet,
}

fn list_is_keyed(items: &[Value]) -> bool {
    !items.is_empty()
        && items
            .iter()
            .all(|i| i.get("name").is_some_and(Value::is_string))
}

fn item_key(item: &Value) -> String {
    format!(
        "k:{}",
        json!({ "name": item.get("name").cloned().unwrap_or(Value::Null) })
    )
}

fn collect_into(v: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                prefix.push(format!("f:{k}"));
                collect_into(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) if list_is_keyed(items) => {
            for item in items {
                prefix.push(item_key(item));
                out.insert(prefix.clone());
                collect_into(item, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            out.insert(prefix.clone());
        }
    }
}

/// The field set of an object: everything but apiVersion/kind and server-owned metadata
/// (only labels, annotations, finalizers and ownerReferences of metadata are tracked).
pub fn collect_fields(obj: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(m) = obj.as_object() else { return out };
    for (k, v) in m {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                for tracked in ["labels", "annotations", "finalizers", "ownerReferences"] {
                    if let Some(child) = v.get(tracked) {
                        let mut prefix = vec!["f:metadata".to_string(), format!("f:{tracked}")];
                        collect_into(child, &mut prefix, &mut out);
                    }
                }
            }
            _ => {
                let mut prefix = vec![format!("f:{k}")];
                collect_into(v, &mut prefix, &mut out);
            }
        }
    }
    out
}

pub fn get_at<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for el in path {
        cur = step(cur, el)?;
    }
    Some(cur)
}

fn step<'a>(cur: &'a Value, el: &str) -> Option<&'a Value> {
    if let Some(k) = el.strip_prefix("f:") {
        cur.as_object()?.get(k)
    } else {
        let key = el.strip_prefix("k:")?;
        cur.as_array()?
            .iter()
            .find(|i| item_key(i) == format!("k:{key}"))
    }
}

fn get_at_mut<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = v;
    for el in path {
        cur = if let Some(k) = el.strip_prefix("f:") {
            cur.as_object_mut()?.get_mut(k)?
        } else {
            cur.as_array_mut()?
                .iter_mut()
                .find(|i| item_key(i) == *el)?
        };
    }
    Some(cur)
}

fn remove_at(v: &mut Value, path: &[String]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let Some(parent) = get_at_mut(v, parent) else {
        return;
    };
    if let Some(k) = last.strip_prefix("f:") {
        if let Some(m) = parent.as_object_mut() {
            m.remove(k);
        }
    } else if let Some(items) = parent.as_array_mut() {
        items.retain(|i| item_key(i) != *last);
    }
}

/// Deep merge used by apply: maps merge per key (`null` deletes), name-keyed lists merge
/// per item, everything else is replaced.
pub fn merge_into(target: &mut Value, src: &Value) {
    match (target, src) {
        (Value::Object(t), Value::Object(s)) => {
            for (k, sv) in s {
                if sv.is_null() {
                    t.remove(k);
                } else if let Some(tv) = t.get_mut(k) {
                    merge_into(tv, sv);
                } else {
                    t.insert(k.clone(), sv.clone());
                }
            }
        }
        (Value::Array(t), Value::Array(s))
            if list_is_keyed(s) && (t.is_empty() || list_is_keyed(t)) =>
        {
            for item in s {
                match t.iter_mut().find(|ti| item_key(ti) == item_key(item)) {
                    Some(ti) => merge_into(ti, item),
                    None => t.push(item.clone()),
                }
            }
        }
        (t, s) => *t = s.clone(),
    }
}

fn fields_to_v1(fields: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in fields {
        let item_marker = path
            .last()
            .is_some_and(|el| el.starts_with("k:"))
            .then(|| ".".to_string());
        let mut node = &mut root;
        for el in path.iter().chain(item_marker.iter()) {
            let child = node.entry(el.clone()).or_insert_with(|| json!({}));
            node = match child.as_object_mut() {
                Some(m) => m,
                None => break,
            };
        }
    }
    Value::Object(root)
}

fn fields_from_v1(v: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
    let Some(m) = v.as_object() else { return };
    if !prefix.is_empty() && (m.is_empty() || m.contains_key(".")) {
        out.insert(prefix.clone());
    }
    for (k, child) in m {
        if k != "." {
            prefix.push(k.clone());
            fields_from_v1(child, prefix, out);
            prefix.pop();
        }
    }
}

fn parse_entries(obj: &Value) -> Vec<Entry> {
    let Some(list) = meta(obj)
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let s = |e: &Value, k: &str| {
        e.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    list.iter()
        .map(|e| {
            let mut fields = FieldSet::new();
            fields_from_v1(
                e.get("fieldsV1").unwrap_or(&Value::Null),
                &mut Vec::new(),
                &mut fields,
            );
            Entry {
                manager: s(e, "manager"),
                operation: s(e, "operation"),
                api_version: s(e, "apiVersion"),
                time: s(e, "time"),
                subresource: e
                    .get("subresource")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                fields,
            }
        })
        .collect()
}

fn entries_to_json(entries: &[Entry]) -> Value {
    Value::Array(
        entries
            .iter()
            .filter(|e| !e.fields.is_empty())
            .map(|e| {
                let mut out = json!({
                    "manager": e.manager,
                    "operation": e.operation,
                    "apiVersion": e.api_version,
                    "time": e.time,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": fields_to_v1(&e.fields),
                });
                if let Some(sub) = &e.subresource {
                    out["subresource"] = json!(sub);
                }
                out
            })
            .collect(),
    )
}

fn subresource_of(scope: Scope) -> Option<String> {
    (scope == Scope::Status).then(|| "status".to_string())
}

/// Records a non-apply write (create/update/patch) by `manager` in `new.metadata.managedFields`:
/// the manager takes every leaf whose value changed; other managers lose those leaves and
/// any leaf that no longer exists. Leaves `new` unchanged when nothing changed.
pub fn record_update(old: Option<&Value>, new: &mut Value, manager: &str, scope: Scope) {
    let mut entries = old.map(parse_entries).unwrap_or_default();
    let new_fields = collect_fields(new);
    let changed: FieldSet = new_fields
        .iter()
        .filter(|p| old.is_none_or(|o| get_at(o, p) != get_at(new, p)))
        .cloned()
        .collect();
    let subresource = subresource_of(scope);
    let api_version = new
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let is_me =
        |e: &Entry| e.manager == manager && e.operation == "Update" && e.subresource == subresource;
    for e in entries.iter_mut() {
        let mine = is_me(e);
        e.fields
            .retain(|p| new_fields.contains(p) && (mine || !changed.contains(p)));
    }
    if !changed.is_empty() {
        let now = now_rfc3339();
        match entries.iter_mut().find(|e| is_me(e)) {
            Some(e) => {
                e.fields.extend(changed);
                e.time = now;
            }
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version,
                time: now,
                subresource,
                fields: changed,
            }),
        }
    }
    entries.retain(|e| !e.fields.is_empty());
    let m = meta_mut(new);
    if entries.is_empty() {
        m.remove("managedFields");
    } else {
        m.insert("managedFields".into(), entries_to_json(&entries));
    }
}

fn display_path(path: &[String]) -> String {
    path.iter()
        .map(|el| match el.strip_prefix("f:") {
            Some(k) => format!(".{k}"),
            None => format!("[{}]", el.trim_start_matches("k:")),
        })
        .collect()
}

/// Restricts an apply configuration to what `scope` may change.
fn scoped_config(res: &ApiResourceSpec, mut applied: Value, scope: Scope) -> Value {
    if let Some(m) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
        m.retain(|k, _| {
            matches!(
                k.as_str(),
                "name" | "namespace" | "labels" | "annotations" | "finalizers" | "ownerReferences"
            )
        });
    }
    match scope {
        Scope::Status => json!({
            "apiVersion": applied.get("apiVersion").cloned().unwrap_or(Value::Null),
            "kind": applied.get("kind").cloned().unwrap_or(Value::Null),
            "status": applied.get("status").cloned().unwrap_or(json!({})),
        }),
        Scope::Main if res.status_subresource => {
            if let Some(m) = applied.as_object_mut() {
                m.remove("status");
            }
            applied
        }
        _ => applied,
    }
}

/// Server-side apply of `applied` by `manager`. Creates the object when absent (main
/// resource only). An apply that changes neither the object nor the field ownership is a
/// no-op: the stored object (same resourceVersion) is returned and no event fires.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    state: &mut State,
    res: &ApiResourceSpec,
    ns: &str,
    name: &str,
    applied: Value,
    manager: &str,
    force: bool,
    scope: Scope,
) -> ApiResult<Value> {
    if applied.get("apiVersion").and_then(Value::as_str) != Some(res.api_version().as_str())
        || applied.get("kind").and_then(Value::as_str) != Some(res.kind.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "apply configuration must have apiVersion {} and kind {}",
            res.api_version(),
            res.kind
        )));
    }
    if applied
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_some_and(|n| n != name)
    {
        return Err(ApiError::BadRequest(
            "metadata.name does not match the URL".into(),
        ));
    }
    let applied = scoped_config(res, applied, scope);
    let current = state.get(res, ns, name).cloned();
    if current.is_none() && scope == Scope::Status {
        return Err(State::not_found(res, name));
    }
    let mut base = current.clone().unwrap_or_else(|| {
        json!({"apiVersion": res.api_version(), "kind": res.kind, "metadata": {"name": name, "namespace": ns}})
    });
    let new_fields = collect_fields(&applied);
    let old_entries = parse_entries(&base);
    let mut entries = old_entries.clone();
    let subresource = subresource_of(scope);
    let is_me =
        |e: &Entry| e.manager == manager && e.operation == "Apply" && e.subresource == subresource;

    let mut conflicts: Vec<(String, FieldPath)> = Vec::new();
    for p in new_fields
        .iter()
        .filter(|p| get_at(&base, p) != get_at(&applied, p))
    {
        for e in entries.iter().filter(|e| !is_me(e) && e.fields.contains(p)) {
            conflicts.push((e.manager.clone(), p.clone()));
        }
    }
    if !conflicts.is_empty() {
        if !force {
            let detail: Vec<String> = conflicts
                .iter()
                .map(|(m, p)| format!("conflict with \"{m}\": {}", display_path(p)))
                .collect();
            return Err(ApiError::Conflict {
                kind: res.plural.clone(),
                name: name.to_string(),
                message: format!(
                    "Apply failed with {} conflict(s): {}",
                    conflicts.len(),
                    detail.join(", ")
                ),
            });
        }
        let taken: FieldSet = conflicts.into_iter().map(|(_, p)| p).collect();
        for e in entries.iter_mut().filter(|e| !is_me(e)) {
            e.fields.retain(|p| !taken.contains(p));
        }
    }

    let previous = entries
        .iter()
        .find(|e| is_me(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let owned_by_others = |p: &FieldPath| entries.iter().any(|e| !is_me(e) && e.fields.contains(p));
    let mut removed: Vec<&FieldPath> = previous
        .difference(&new_fields)
        .filter(|p| !owned_by_others(p))
        .collect();
    removed.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in &removed {
        remove_at(&mut base, p);
        for depth in (2..p.len()).rev() {
            let parent = &p[..depth];
            let empty =
                get_at(&base, parent).is_some_and(|v| v.as_object().is_some_and(Map::is_empty));
            if empty && get_at(&applied, parent).is_none() {
                remove_at(&mut base, parent);
            }
        }
    }
    merge_into(&mut base, &applied);

    let position = entries.iter().position(is_me);
    let mine = Entry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version: res.api_version(),
        time: position
            .map(|i| entries[i].time.clone())
            .unwrap_or_default(),
        subresource,
        fields: new_fields,
    };
    let index = match position {
        Some(i) => {
            entries[i] = mine;
            i
        }
        None => {
            entries.push(mine);
            entries.len() - 1
        }
    };
    let strip = |v: &Value| {
        let mut v = v.clone();
        meta_mut(&mut v).remove("managedFields");
        v
    };
    let content_changed = current.as_ref().is_none_or(|c| strip(c) != strip(&base));
    let mut compared = entries.clone();
    compared.retain(|e| !e.fields.is_empty());
    if content_changed || compared != old_entries || entries[index].time.is_empty() {
        entries[index].time = now_rfc3339();
    }
    let managed = entries_to_json(&entries);
    match current {
        None => state.create_with_managed_fields(res, ns, base, managed),
        Some(_) => state.replace(res, ns, name, base, manager, scope, Some(managed)),
    }
}
