//! Where a registry is: URL parsing and the plain-HTTP rule (`http://` only with `--insecure`).
//! No I/O here.

use reqwest::Url;

use super::Credentials;

/// Where a registry is and how to log in.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Base URL, e.g. `https://harbor.example.com` or `http://127.0.0.1:5000`.
    pub url: String,
    /// Credentials; `None` for anonymous.
    pub credentials: Option<Credentials>,
    /// Allow plain HTTP.
    pub insecure: bool,
}

/// Why an endpoint is unusable.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Not a URL.
    #[error("invalid registry URL {0}: {1}")]
    BadUrl(String, String),
    /// `http://` without `--insecure`.
    #[error("{0} uses plain HTTP; pass --insecure to allow it (e.g. for a local k3d registry)")]
    PlainHttp(String),
    /// The HTTP client could not be built.
    #[error("cannot build HTTP client: {0}")]
    Client(String),
}

impl Endpoint {
    /// An endpoint without credentials (they may be set later).
    pub fn anonymous(url: impl Into<String>, insecure: bool) -> Self {
        Self {
            url: url.into(),
            credentials: None,
            insecure,
        }
    }

    /// The base URL (`https://` assumed when no scheme is given), checked against `insecure`.
    pub fn base_url(&self) -> Result<Url, EndpointError> {
        let raw = if self.url.contains("://") {
            self.url.clone()
        } else {
            format!("https://{}", self.url)
        };
        let url = Url::parse(raw.trim_end_matches('/'))
            .map_err(|e| EndpointError::BadUrl(self.url.clone(), e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if self.insecure => {}
            "http" => return Err(EndpointError::PlainHttp(self.url.clone())),
            other => {
                return Err(EndpointError::BadUrl(
                    self.url.clone(),
                    format!("unsupported scheme {other}"),
                ));
            }
        }
        if url.host_str().is_none() || !url.username().is_empty() || url.password().is_some() {
            return Err(EndpointError::BadUrl(
                self.url.clone(),
                "expected scheme://host[:port] without credentials".into(),
            ));
        }
        Ok(url)
    }

    /// `host[:port]`, the key for docker-config lookups.
    pub fn host(&self) -> Result<String, EndpointError> {
        let url = self.base_url()?;
        let host = url.host_str().unwrap_or_default();
        Ok(url
            .port()
            .map_or_else(|| host.to_string(), |p| format!("{host}:{p}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_needs_insecure() {
        assert!(matches!(
            Endpoint::anonymous("http://127.0.0.1:5000", false).base_url(),
            Err(EndpointError::PlainHttp(_))
        ));
        assert!(
            Endpoint::anonymous("http://127.0.0.1:5000", true)
                .base_url()
                .is_ok()
        );
        assert_eq!(
            Endpoint::anonymous("harbor.local", false)
                .base_url()
                .map(|u| u.scheme().to_string())
                .ok()
                .as_deref(),
            Some("https")
        );
        assert!(
            Endpoint::anonymous("https://u:p@harbor.local", false)
                .base_url()
                .is_err()
        );
    }

    #[test]
    fn host_includes_port() {
        assert_eq!(
            Endpoint::anonymous("http://127.0.0.1:5000/", true)
                .host()
                .ok()
                .as_deref(),
            Some("127.0.0.1:5000")
        );
    }
}
