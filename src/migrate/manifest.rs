//! Manifest kinds: which media types are indexes, images or artifacts, and what each points at
//! (child manifests or blobs). Pure: no I/O.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use super::MigrateError;
use super::api::FetchedManifest;

/// What a manifest points at.
pub enum Children {
    /// Platform manifests of an index / manifest list.
    Manifests(Vec<Descriptor>),
    /// Config and layers of an image (or blobs of an artifact).
    Blobs(Vec<Descriptor>),
}

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const IMAGE_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
const ARTIFACT_TYPE: &str = "application/vnd.oci.artifact.manifest.v1+json";

/// Keeps the served `Content-Type` when it is a manifest type; otherwise (`application/json`, none)
/// takes the manifest's own `mediaType`, so the destination stores what the source stores.
pub fn with_manifest_media_type(mut manifest: FetchedManifest) -> FetchedManifest {
    let known = INDEX_TYPES.contains(&manifest.media_type.as_str())
        || IMAGE_TYPES.contains(&manifest.media_type.as_str())
        || manifest.media_type.starts_with("application/vnd.");
    if !known {
        let declared = serde_json::from_slice::<serde_json::Value>(&manifest.bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            });
        let has_manifests = serde_json::from_slice::<serde_json::Value>(&manifest.bytes)
            .ok()
            .is_some_and(|v| v.get("manifests").is_some());
        manifest.media_type = declared.unwrap_or_else(|| {
            if has_manifests {
                INDEX_TYPES[0].to_string()
            } else {
                IMAGE_TYPES[0].to_string()
            }
        });
    }
    manifest
}

pub fn children(manifest: &FetchedManifest, reference: &str) -> Result<Children, MigrateError> {
    let unsupported = || MigrateError::UnsupportedManifest {
        reference: reference.into(),
        media_type: manifest.media_type.clone(),
    };
    let malformed = |e: serde_json::Error| MigrateError::Protocol {
        registry: reference.into(),
        message: format!("malformed manifest: {e}"),
    };
    let media_type = manifest.media_type.as_str();
    if INDEX_TYPES.contains(&media_type) {
        let index: ImageIndex = serde_json::from_slice(&manifest.bytes).map_err(malformed)?;
        Ok(Children::Manifests(index.manifests().clone()))
    } else if IMAGE_TYPES.contains(&media_type) {
        let image: ImageManifest = serde_json::from_slice(&manifest.bytes).map_err(malformed)?;
        let mut blobs = vec![image.config().clone()];
        blobs.extend(image.layers().iter().cloned());
        Ok(Children::Blobs(blobs))
    } else if media_type == ARTIFACT_TYPE {
        #[derive(serde::Deserialize)]
        struct Artifact {
            #[serde(default)]
            blobs: Vec<Descriptor>,
        }
        let artifact: Artifact = serde_json::from_slice(&manifest.bytes).map_err(malformed)?;
        Ok(Children::Blobs(artifact.blobs))
    } else {
        Err(unsupported())
    }
}

/// Digests of the manifests an index points at; empty for anything else (or anything unreadable).
pub fn child_manifest_digests(manifest: &FetchedManifest) -> Vec<String> {
    match children(manifest, &manifest.digest) {
        Ok(Children::Manifests(descriptors)) => {
            descriptors.iter().map(|d| d.digest().to_string()).collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST_A: &str =
        "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const DIGEST_B: &str =
        "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn fetched(media_type: &str, json: &str) -> FetchedManifest {
        FetchedManifest {
            bytes: bytes::Bytes::from(json.to_string()),
            media_type: media_type.into(),
            digest: "sha256:x".into(),
        }
    }

    #[test]
    fn image_children_are_config_then_layers() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"{DIGEST_A}"}},
            "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":3,"digest":"{DIGEST_B}"}}]}}"#
        );
        let Ok(Children::Blobs(blobs)) = children(&fetched(IMAGE_TYPES[1], &json), "r") else {
            panic!("not an image")
        };
        let digests: Vec<String> = blobs.iter().map(|d| d.digest().to_string()).collect();
        assert_eq!(digests, [DIGEST_A, DIGEST_B]);
    }

    #[test]
    fn index_children_are_every_platform() {
        let json = format!(
            r#"{{"schemaVersion":2,"manifests":[
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"{DIGEST_A}","platform":{{"architecture":"amd64","os":"linux"}}}},
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"{DIGEST_B}","platform":{{"architecture":"arm64","os":"linux"}}}}]}}"#
        );
        let manifest = with_manifest_media_type(fetched("application/json", &json));
        assert_eq!(manifest.media_type, INDEX_TYPES[0]);
        let Ok(Children::Manifests(children)) = children(&manifest, "r") else {
            panic!("not an index")
        };
        assert_eq!(children.len(), 2);
        assert_eq!(child_manifest_digests(&manifest), [DIGEST_A, DIGEST_B]);
        assert!(child_manifest_digests(&fetched(IMAGE_TYPES[0], "{}")).is_empty());
    }

    #[test]
    fn served_vendor_type_is_kept_and_unknown_types_are_refused() {
        let manifest = with_manifest_media_type(fetched(
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            "{}",
        ));
        assert_eq!(
            manifest.media_type,
            "application/vnd.docker.distribution.manifest.v1+prettyjws"
        );
        assert!(matches!(
            children(&manifest, "r"),
            Err(MigrateError::UnsupportedManifest { .. })
        ));
    }
}
