//! What differs between the Harbor releases we accept (2.9.0 and newer): the internal cache's image
//! and the registry providers core offers. One table, each row sourced from Harbor's own release
//! tags, so the render never pulls an image a release does not publish. Pure.
//!
//! Sources (checked at every tag v2.9.0 … v2.15.2 of github.com/goharbor/harbor):
//! - cache image: `make/photon/` holds `redis/` (image `goharbor/redis-photon`) up to and including
//!   v2.15.1 and v2.14.4; from v2.15.2 it holds `valkey/` instead (`make/photon/Makefile`:
//!   `DOCKERIMAGENAME_VALKEY=$(IMAGENAMESPACE)/$(VALKEY)-photon`, image `goharbor/valkey-photon`)
//!   and `redis-photon` is no longer built. harbor-helm switched `redis.internal.image` the same
//!   way after v1.19.1 (commit 7233a81, "switch internal image to valkey-photon").
//! - providers: `make/photon/prepare/templates/core/env.jinja` (Harbor's installer) and harbor-helm's
//!   `templates/core/core-cm.yaml` set `PERMITTED_REGISTRY_TYPES_FOR_PROXY_CACHE` and, from 2.14
//!   (chart v1.18.0), `REPLICATION_ADAPTER_WHITELIST`; core reads the latter with an empty default
//!   (`src/lib/config/metadata/metadatalist.go`), which leaves replication and proxy-cache endpoints
//!   without any provider. The rows below copy env.jinja at each tag (2.12/2.13 add `ali-acr`;
//!   2.14 drops `quay`).

/// The internal cache server's image repository (under `docker.io/goharbor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheImage {
    /// `redis-photon` (`make/photon/redis`), every release before 2.15.2 (and the 2.14.x line).
    RedisPhoton,
    /// `valkey-photon` (`make/photon/valkey`), from 2.15.2.
    ValkeyPhoton,
}

impl CacheImage {
    /// Repository name under `docker.io/goharbor`.
    pub fn repository(self) -> &'static str {
        match self {
            Self::RedisPhoton => "redis-photon",
            Self::ValkeyPhoton => "valkey-photon",
        }
    }
}

/// Proxy-cache providers of 2.9 – 2.11 (env.jinja at v2.9.0 … v2.11.2).
const PROXY_CACHE_2_9: &str = "docker-hub,harbor,azure-acr,aws-ecr,google-gcr,quay,docker-registry,github-ghcr,jfrog-artifactory";
/// Proxy-cache providers of 2.12 – 2.13 (env.jinja at v2.12.0 … v2.13.5: `ali-acr` added).
const PROXY_CACHE_2_12: &str = "docker-hub,harbor,azure-acr,ali-acr,aws-ecr,google-gcr,quay,docker-registry,github-ghcr,jfrog-artifactory";
/// Proxy-cache providers from 2.14 (env.jinja at v2.14.0 … v2.15.2, chart v1.18.0 … v1.19.1).
const PROXY_CACHE_2_14: &str = "docker-hub,harbor,azure-acr,ali-acr,aws-ecr,google-gcr,docker-registry,github-ghcr,jfrog-artifactory";
/// Replication providers from 2.14 (env.jinja at v2.14.0 … v2.15.2, chart v1.18.0 … v1.19.1).
const REPLICATION_ADAPTERS_2_14: &str = "ali-acr,aws-ecr,azure-acr,docker-hub,docker-registry,github-ghcr,google-gcr,harbor,huawei-SWR,jfrog-artifactory,tencent-tcr,volcengine-cr";

/// What a Harbor release needs that another does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Release {
    pub cache_image: CacheImage,
    /// `PERMITTED_REGISTRY_TYPES_FOR_PROXY_CACHE` of core.
    pub proxy_cache_providers: &'static str,
    /// `REPLICATION_ADAPTER_WHITELIST` of core; `None` before 2.14, which has no such setting.
    pub replication_adapters: Option<&'static str>,
}

/// `(major, minor, patch)` of `2.15.2` or `v2.15.2`; validation refuses anything else, so an
/// unparsable version (render of an invalid spec) counts as the newest.
fn parse(version: &str) -> (u32, u32, u32) {
    crate::validate::parse_version(version).unwrap_or((u32::MAX, 0, 0))
}

/// The table row of `version` (any 2.9.0+ release; later releases than the newest row follow it).
pub fn release(version: &str) -> Release {
    let v = parse(version);
    // The 2.14 line kept redis-photon (v2.14.0 … v2.14.4); valkey-photon starts at 2.15.2.
    let cache_image = if v >= (2, 15, 2) {
        CacheImage::ValkeyPhoton
    } else {
        CacheImage::RedisPhoton
    };
    let (proxy_cache_providers, replication_adapters) = if v >= (2, 14, 0) {
        (PROXY_CACHE_2_14, Some(REPLICATION_ADAPTERS_2_14))
    } else if v >= (2, 12, 0) {
        (PROXY_CACHE_2_12, None)
    } else {
        (PROXY_CACHE_2_9, None)
    };
    Release {
        cache_image,
        proxy_cache_providers,
        replication_adapters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_follow_the_release_tags() {
        assert_eq!(release("2.15.1").cache_image, CacheImage::RedisPhoton);
        assert_eq!(release("v2.15.2").cache_image, CacheImage::ValkeyPhoton);
        assert_eq!(release("2.14.4").cache_image, CacheImage::RedisPhoton);
        assert_eq!(release("2.16.0").cache_image, CacheImage::ValkeyPhoton);
        assert_eq!(release("2.13.5").replication_adapters, None);
        assert!(release("2.14.0").replication_adapters.is_some());
        assert!(release("2.11.2").proxy_cache_providers.contains("quay"));
        assert!(!release("2.11.2").proxy_cache_providers.contains("ali-acr"));
        assert!(release("2.12.0").proxy_cache_providers.contains("ali-acr"));
        assert!(!release("2.14.0").proxy_cache_providers.contains("quay"));
    }
}
