//! The tag policies of a RegistryProject's Harbor project, after the project exists: read its
//! immutability rules and its retention policy (by the project's metadata `retention_id`), plan
//! (`harbor::policies`, pure) and send only the writes that differ.

use crate::crd::RegistryProjectSpec;
use crate::harbor::policies::{PolicyObserved, PolicyWrite, plan_policies};
use crate::harbor::{HarborClient, HarborError, Project};

/// Brings the project's immutability rules and tag retention to `spec`; what was changed, for the log.
pub(super) async fn sync_policies(
    client: &HarborClient,
    spec: &RegistryProjectSpec,
    name: &str,
    project_id: i64,
    found: Option<&Project>,
) -> Result<Vec<String>, HarborError> {
    let retention_id = found
        .and_then(|p| p.metadata.as_ref())
        .and_then(|m| m.retention_id.as_deref())
        .and_then(|id| id.parse::<i64>().ok())
        .filter(|id| *id > 0);
    let mut observed = PolicyObserved::default();
    if found.is_some() {
        observed.immutable = client.immutable_rules(name).await?;
    }
    if let Some(id) = retention_id {
        observed.retention = client.retention(id).await?.map(|policy| (id, policy));
    }
    let writes = plan_policies(spec, project_id, &observed);
    for write in &writes {
        match write {
            PolicyWrite::DeleteImmutable { id } => {
                match client.delete_immutable_rule(name, *id).await {
                    Ok(()) | Err(HarborError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            PolicyWrite::EnableImmutable { id, rule } => {
                client.update_immutable_rule(name, *id, rule).await?;
            }
            PolicyWrite::CreateImmutable(rule) => client.create_immutable_rule(name, rule).await?,
            PolicyWrite::CreateRetention(policy) => {
                client.create_retention(policy).await?;
            }
            PolicyWrite::UpdateRetention { id, policy } => {
                client.update_retention(*id, policy).await?;
            }
            PolicyWrite::DeleteRetention { id } => match client.delete_retention(*id).await {
                Ok(()) | Err(HarborError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            },
        }
    }
    Ok(writes.iter().map(|w| w.describe().to_string()).collect())
}
