//! The distribution API calls the copy needs (catalog, tags, manifests, blobs, uploads, mounts,
//! referrers), built on `Registry::send`. No copy decisions here.

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};

use super::MigrateError;
use super::client::{Registry, sha256_digest};

/// Every manifest media type accepted when fetching, so registries never convert.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.oci.artifact.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws, \
application/vnd.docker.distribution.manifest.v1+json";

/// Largest manifest accepted (distribution's own limit is 4 MiB).
const MAX_MANIFEST_BYTES: usize = 8 << 20;

/// A manifest exactly as served.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// Raw bytes (pushed unchanged).
    pub bytes: Bytes,
    /// The `Content-Type` it was served with.
    pub media_type: String,
    /// `sha256:` of the bytes.
    pub digest: String,
}

/// Result of a cross-repository mount attempt.
pub enum MountOutcome {
    /// The blob is now in the repository.
    Mounted,
    /// The registry opened an ordinary upload session instead.
    UploadAt(Url),
}

impl Registry {
    /// Checks reachability and credentials (`GET /v2/`).
    pub async fn ping(&self) -> Result<(), MigrateError> {
        self.get_ok(self.url("/v2/")?, "", HeaderMap::new())
            .await
            .map(|_| ())
    }

    /// Every repository in the catalog (paged with `n` and `Link`).
    pub async fn catalog(&self) -> Result<Vec<String>, MigrateError> {
        self.list_paged(
            self.url("/v2/_catalog?n=1000")?,
            "registry:catalog:*",
            "repositories",
        )
        .await
    }

    /// Every tag of `repo` (paged).
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>, MigrateError> {
        let url = self.url(&format!("/v2/{repo}/tags/list?n=1000"))?;
        self.list_paged(url, &pull_scope(repo), "tags").await
    }

    async fn list_paged(
        &self,
        first: Url,
        scope: &str,
        key: &str,
    ) -> Result<Vec<String>, MigrateError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > 100_000 {
                return Err(self.protocol(format!("{key} listing does not end")));
            }
            let response = self.get_ok(url.clone(), scope, HeaderMap::new()).await?;
            next = next_link(response.headers())
                .map(|link| self.url(&link))
                .transpose()?
                .filter(|n| *n != url);
            let body = response.bytes().await.map_err(|e| self.http_error(e))?;
            let value: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| self.protocol(format!("bad {key} listing: {e}")))?;
            let page = value
                .get(key)
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default();
            items.extend(
                page.into_iter()
                    .filter_map(|v| v.as_str().map(str::to_string)),
            );
        }
        Ok(items)
    }

    /// A manifest by tag or digest, exactly as served. When `reference` is a digest the bytes are checked.
    pub async fn manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<FetchedManifest, MigrateError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let response = self.get_ok(url, &pull_scope(repo), headers).await?;
        if response
            .content_length()
            .is_some_and(|n| n > MAX_MANIFEST_BYTES as u64)
        {
            return Err(self.protocol(format!(
                "{repo}@{reference}: manifest larger than {MAX_MANIFEST_BYTES} bytes"
            )));
        }
        let media_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
            .unwrap_or_default();
        let bytes = response.bytes().await.map_err(|e| self.http_error(e))?;
        let digest = sha256_digest(&bytes);
        if reference.starts_with("sha256:") && digest != reference {
            return Err(MigrateError::DigestMismatch {
                what: format!("{}/{repo} manifest", self.name()),
                expected: reference.into(),
                actual: digest,
            });
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// The digest `reference` resolves to, or `None` when absent.
    pub async fn manifest_digest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<String>, MigrateError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let response = self
            .send(Method::HEAD, url.clone(), &pull_scope(repo), headers, None)
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let header_digest = response
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                match header_digest {
                    Some(digest) => Ok(Some(digest)),
                    None => self.manifest(repo, reference).await.map(|m| Some(m.digest)),
                }
            }
            _ => Err(self.status_error(&Method::HEAD, url.path(), response).await),
        }
    }

    /// Whether `repo` holds blob `digest`.
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool, MigrateError> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"))?;
        let response = self
            .send(
                Method::HEAD,
                url.clone(),
                &pull_scope(repo),
                HeaderMap::new(),
                None,
            )
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(self.status_error(&Method::HEAD, url.path(), response).await),
        }
    }

    /// Starts streaming blob `digest` of `repo` (redirects to storage are followed).
    pub async fn blob_stream(&self, repo: &str, digest: &str) -> Result<Response, MigrateError> {
        self.get_ok(
            self.url(&format!("/v2/{repo}/blobs/{digest}"))?,
            &pull_scope(repo),
            HeaderMap::new(),
        )
        .await
    }

    /// Opens an upload session in `repo`.
    pub async fn start_upload(&self, repo: &str) -> Result<Url, MigrateError> {
        let url = self.url(&format!("/v2/{repo}/blobs/uploads/"))?;
        let response = self
            .send(
                Method::POST,
                url.clone(),
                &push_scope(repo),
                content_length_zero(),
                Some(Bytes::new()),
            )
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.status_error(&Method::POST, url.path(), response).await);
        }
        self.location(&response)
    }

    /// Links blob `digest` from `from_repo` into `repo` (same registry).
    pub async fn mount(
        &self,
        repo: &str,
        digest: &str,
        from_repo: &str,
    ) -> Result<MountOutcome, MigrateError> {
        let mut url = self.url(&format!("/v2/{repo}/blobs/uploads/"))?;
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from_repo);
        let scope = format!("{} {}", push_scope(repo), pull_scope(from_repo));
        let response = self
            .send(
                Method::POST,
                url.clone(),
                &scope,
                content_length_zero(),
                Some(Bytes::new()),
            )
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => Ok(MountOutcome::UploadAt(self.location(&response)?)),
            _ => Err(self.status_error(&Method::POST, url.path(), response).await),
        }
    }

    /// The upload URL in a `Location` header.
    pub fn location(&self, response: &Response) -> Result<Url, MigrateError> {
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.protocol("upload answer without Location".into()))?;
        self.url(location)
    }

    /// Pushes manifest bytes unchanged under `reference` (tag or digest); returns the registry's digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        manifest: &FetchedManifest,
    ) -> Result<(), MigrateError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let mut headers = HeaderMap::new();
        let content_type = HeaderValue::from_str(&manifest.media_type)
            .map_err(|_| self.protocol(format!("bad media type {}", manifest.media_type)))?;
        headers.insert(header::CONTENT_TYPE, content_type);
        let response = self
            .send(
                Method::PUT,
                url.clone(),
                &push_scope(repo),
                headers,
                Some(manifest.bytes.clone()),
            )
            .await?;
        if !response.status().is_success() {
            return Err(self.status_error(&Method::PUT, url.path(), response).await);
        }
        let returned = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok());
        match returned {
            Some(digest) if digest != manifest.digest => Err(MigrateError::DigestMismatch {
                what: format!("{}/{repo}:{reference} pushed manifest", self.name()),
                expected: manifest.digest.clone(),
                actual: digest.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Descriptors of manifests referring to `digest` (OCI 1.1), or `None` when the API is not served.
    pub async fn referrers(
        &self,
        repo: &str,
        digest: &str,
    ) -> Result<Option<Vec<oci_spec::image::Descriptor>>, MigrateError> {
        let url = self.url(&format!("/v2/{repo}/referrers/{digest}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.oci.image.index.v1+json"),
        );
        let response = self
            .send(Method::GET, url.clone(), &pull_scope(repo), headers, None)
            .await?;
        if !response.status().is_success() {
            return Ok(None);
        }
        let body = response.bytes().await.map_err(|e| self.http_error(e))?;
        match serde_json::from_slice::<oci_spec::image::ImageIndex>(&body) {
            Ok(index) => Ok(Some(index.manifests().clone())),
            Err(_) => Ok(None),
        }
    }
}

fn content_length_zero() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    headers
}

/// Token scope for reading `repo`.
pub fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// Token scope for writing `repo`.
pub fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

/// The target of `Link: <...>; rel="next"`.
fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|part| {
            let (target, params) = part.split_once(';')?;
            params.contains("rel=\"next\"").then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_next() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::LINK,
            HeaderValue::from_static("</v2/_catalog?last=b&n=2>; rel=\"next\""),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(next_link(&HeaderMap::new()), None);
    }
}
