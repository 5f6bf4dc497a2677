//! Whether a Harbor version change is safe to apply: Harbor migrates its database schema forward only
//! (no downgrade without restoring a backup) and upgrades only from the two previous minor releases
//! (goharbor/harbor RELEASES.md, "Upgrade path and support policy"). Pure: versions in, verdict out.

use super::parse_version;

/// Minor releases a Harbor release can be upgraded from, counting back from its own minor.
pub const UPGRADE_SPAN: u32 = 2;

/// Why a version change is refused; the message names the field and the way forward.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradeRefusal(pub String);

/// Check moving Harbor from `running` (what core runs, `status.harborVersion`) to `wanted`
/// (`spec.harbor.version` or the default). Patch changes within a minor release are always fine.
pub fn harbor_upgrade(
    running: &str,
    wanted: &str,
    allow_downgrade: bool,
) -> Result<(), UpgradeRefusal> {
    let (Some(from), Some(to)) = (parse_version(running), parse_version(wanted)) else {
        // An unparsable version is refused by validation before this runs.
        return Ok(());
    };
    if to < from {
        if allow_downgrade {
            return Ok(());
        }
        return Err(UpgradeRefusal(format!(
            "spec.harbor.version: {wanted} is older than the running {running}; Harbor migrates its database forward only, so a downgrade needs the database restored from a backup taken before the upgrade: set spec.harbor.allowDowngrade: true once it is, or set the version back to {running}"
        )));
    }
    if from.0 != to.0 || to.1 <= from.1 + UPGRADE_SPAN {
        return Ok(());
    }
    let path = upgrade_path(from, to);
    Err(UpgradeRefusal(format!(
        "spec.harbor.version: Harbor {wanted} upgrades only from the {UPGRADE_SPAN} previous minor releases, not from the running {running}; upgrade step by step: {path}"
    )))
}

/// The releases to go through, each within reach of the one before: `2.12.x → 2.14.x → 2.15.2`.
fn upgrade_path(from: (u32, u32, u32), to: (u32, u32, u32)) -> String {
    let mut steps = vec![format!("{}.{}.{}", from.0, from.1, from.2)];
    let mut minor = from.1;
    while minor + UPGRADE_SPAN < to.1 {
        minor += UPGRADE_SPAN;
        steps.push(format!("{}.{minor}.x (its latest patch)", from.0));
    }
    steps.push(format!("{}.{}.{}", to.0, to.1, to.2));
    steps.join(" → ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_and_two_minors_forward_are_allowed() {
        for (running, wanted) in [
            ("2.15.1", "2.15.2"),
            ("2.13.0", "2.15.2"),
            ("2.14.4", "2.15.2"),
            ("2.15.2", "2.15.2"),
            ("v2.13.0", "2.15.0"),
        ] {
            assert_eq!(harbor_upgrade(running, wanted, false), Ok(()), "{running}");
        }
    }

    #[test]
    fn a_jump_past_two_minors_is_refused_with_the_path() {
        let refusal = harbor_upgrade("2.12.0", "2.15.2", false).unwrap_err();
        assert!(
            refusal
                .0
                .contains("2.12.0 → 2.14.x (its latest patch) → 2.15.2"),
            "{}",
            refusal.0
        );
        assert!(refusal.0.starts_with("spec.harbor.version:"));
        let far = harbor_upgrade("2.9.1", "2.15.2", false).unwrap_err();
        assert!(
            far.0
                .contains("2.9.1 → 2.11.x (its latest patch) → 2.13.x (its latest patch) → 2.15.2"),
            "{}",
            far.0
        );
    }

    #[test]
    fn a_downgrade_is_refused_unless_allowed() {
        let refusal = harbor_upgrade("2.15.2", "2.14.0", false).unwrap_err();
        assert!(
            refusal.0.contains("spec.harbor.allowDowngrade"),
            "{}",
            refusal.0
        );
        assert_eq!(harbor_upgrade("2.15.2", "2.15.1", true), Ok(()));
        assert!(
            harbor_upgrade("2.15.2", "2.15.1", false).is_err(),
            "a patch downgrade too"
        );
    }
}
