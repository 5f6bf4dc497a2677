//! Validation of Harbor's database on an existing CloudNativePG cluster and of its backups (mirrors
//! the CRD's CEL rules). Pure.

use super::{Errors, is_dns_label, is_dns_subdomain};
use crate::crd::{BackupMethod, CnpgDatabase, DatabaseBackup};

/// Role names CloudNativePG's `DatabaseRole` refuses (its CEL rules) or PostgreSQL reserves.
fn is_reserved_role(name: &str) -> bool {
    name == "postgres"
        || name == "streaming_replica"
        || name.starts_with("pg_")
        || name.starts_with("cnpg_")
}

/// A PostgreSQL identifier that needs no quoting: `[a-z_][a-z0-9_]*`, at most 63 bytes.
fn is_plain_identifier(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether `schedule` is a cron line of `fields` space-separated fields, or a descriptor
/// (`@daily`, …; `@every <duration>` only in CNPG's six-field format).
pub(super) fn is_cron(schedule: &str, fields: usize) -> bool {
    const DESCRIPTORS: [&str; 7] = [
        "@yearly",
        "@annually",
        "@monthly",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
    ];
    if DESCRIPTORS.contains(&schedule) {
        return true;
    }
    if fields == 6
        && schedule
            .strip_prefix("@every ")
            .is_some_and(|d| d.starts_with(|c: char| c.is_ascii_digit()))
    {
        return true;
    }
    !schedule.is_empty()
        && schedule.len() <= 128
        && schedule.split(' ').count() == fields
        && schedule.split(' ').all(|f| !f.is_empty())
}

pub(super) fn cnpg(errors: &mut Errors, cnpg: &CnpgDatabase) {
    let cluster = &cnpg.cluster_ref;
    errors.check(
        is_dns_label(&cluster.name) && cluster.name.len() <= 50,
        "spec.harbor.database.cnpg.clusterRef.name",
        "a CNPG Cluster name (lowercase letters, digits and '-', at most 50 characters)",
    );
    errors.check(
        is_dns_label(&cluster.namespace),
        "spec.harbor.database.cnpg.clusterRef.namespace",
        "a namespace name",
    );
    errors.check(
        is_plain_identifier(&cnpg.name) && !is_reserved_role(&cnpg.name),
        "spec.harbor.database.cnpg.name",
        "lowercase letters, digits and '_', not starting with a digit; postgres, streaming_replica, pg_* and cnpg_* are reserved",
    );
}

pub(super) fn backup(errors: &mut Errors, backup: &DatabaseBackup) {
    errors.check(
        is_cron(&backup.schedule, 6),
        "spec.harbor.database.backup.schedule",
        "six fields with seconds first (CloudNativePG's format, not a five-field CronJob schedule), e.g. '0 0 3 * * *'",
    );
    match backup.method {
        BackupMethod::VolumeSnapshot => match &backup.volume_snapshot {
            None => errors.add(
                "spec.harbor.database.backup.volumeSnapshot",
                "required when method is VolumeSnapshot (CNPG needs the VolumeSnapshotClass)",
            ),
            Some(snapshot) => errors.check(
                is_dns_subdomain(&snapshot.class_name),
                "spec.harbor.database.backup.volumeSnapshot.className",
                "a VolumeSnapshotClass name",
            ),
        },
        BackupMethod::ObjectStore => match &backup.object_store {
            None => errors.add(
                "spec.harbor.database.backup.objectStore",
                "required when method is ObjectStore (the Barman Cloud ObjectStore to write to)",
            ),
            Some(store) => errors.check(
                is_dns_subdomain(&store.name),
                "spec.harbor.database.backup.objectStore.name",
                "an ObjectStore name",
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::is_cron;

    #[test]
    fn cron_fields() {
        assert!(is_cron("0 0 3 * * *", 6));
        assert!(!is_cron("0 3 * * *", 6));
        assert!(is_cron("0 3 * * 0", 5));
        assert!(!is_cron("0 0 3 * * *", 5));
        assert!(is_cron("@daily", 5));
        assert!(is_cron("@every 1h", 6));
        assert!(!is_cron("@every 1h", 5));
        assert!(!is_cron("0  3 * * *", 5));
        assert!(!is_cron("", 5));
    }
}
