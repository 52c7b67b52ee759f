//! [`Endpoint`]: the API server's base URL, checked once, and every
//! request's absolute form under it. Each adapter sends what
//! [`Endpoint::prepare`] returns, so the rules — which URLs are accepted,
//! how a base path prefixes request paths, which headers win — are the same
//! on every runtime. It owns no credentials: the adapter adds those after.
//!
//! ```
//! use windlass_proto::endpoint::Endpoint;
//!
//! let endpoint = Endpoint::parse("https://proxy.example/k8s/clusters/c1/").unwrap();
//! let request = http::Request::get("/api/v1/pods?limit=5").body(bytes::Bytes::new()).unwrap();
//! let outgoing = endpoint.prepare(&request, &http::HeaderMap::new()).unwrap();
//! assert_eq!(
//!     outgoing.uri(),
//!     "https://proxy.example/k8s/clusters/c1/api/v1/pods?limit=5"
//! );
//! ```

use bytes::Bytes;
use http::{HeaderMap, Request, Uri};

/// A base URL an adapter can send to: `http` or `https`, with a host, no
/// query or fragment; an optional path prefixes every request path (Rancher
/// and other proxies serve clusters under one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    base: Uri,
}

/// A base URL that cannot be used, or a request path that cannot be joined to it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("base URL {url:?}: {what}")]
pub struct EndpointError {
    /// The URL as given.
    pub url: String,
    /// What is wrong with it.
    pub what: &'static str,
}

impl Endpoint {
    /// Checks `url`.
    pub fn parse(url: &str) -> Result<Self, EndpointError> {
        let error = |what| EndpointError {
            url: url.to_owned(),
            what,
        };
        let base: Uri = url.parse().map_err(|_| error("not a URL"))?;
        if !matches!(base.scheme_str(), Some("http" | "https")) || base.authority().is_none() {
            return Err(error("needs http:// or https:// and a host"));
        }
        if base.query().is_some() {
            return Err(error("has a query; a base URL takes a path at most"));
        }
        Ok(Self { base })
    }

    /// The base URL.
    pub fn uri(&self) -> &Uri {
        &self.base
    }

    /// Whether the connection is TLS.
    pub fn is_https(&self) -> bool {
        self.base.scheme_str() == Some("https")
    }

    /// The host, as TLS verifies it when no `tls-server-name` is set
    /// (an IPv6 address keeps its brackets; see
    /// [`TlsDescription::server_name`](crate::config::TlsDescription::server_name)).
    pub fn host(&self) -> &str {
        self.base.host().unwrap_or_default()
    }

    /// The absolute URI of a path-and-query URI under this base.
    pub fn join(&self, path_and_query: &Uri) -> Result<Uri, EndpointError> {
        let prefix = self.base.path().trim_end_matches('/');
        let path_and_query = path_and_query.path_and_query().map_or("/", |p| p.as_str());
        Uri::builder()
            .scheme(self.base.scheme_str().unwrap_or("https"))
            .authority(self.base.authority().map_or("", |a| a.as_str()))
            .path_and_query(format!("{prefix}{path_and_query}"))
            .build()
            .map_err(|_| EndpointError {
                url: self.base.to_string(),
                what: "cannot join the request path",
            })
    }

    /// `request` (a path-and-query request from windlass-proto's builders)
    /// as it goes on the wire: the absolute URI, `defaults` (the client's
    /// headers: user agent, anything configured) under the request's own
    /// headers, which win. Credentials are not added here.
    pub fn prepare(
        &self,
        request: &Request<Bytes>,
        defaults: &HeaderMap,
    ) -> Result<Request<Bytes>, EndpointError> {
        let mut outgoing = Request::new(request.body().clone());
        *outgoing.method_mut() = request.method().clone();
        *outgoing.uri_mut() = self.join(request.uri())?;
        *outgoing.version_mut() = request.version();
        let headers = outgoing.headers_mut();
        for (name, value) in defaults {
            headers.insert(name, value.clone());
        }
        for name in request.headers().keys() {
            headers.remove(name);
        }
        for (name, value) in request.headers() {
            headers.append(name, value.clone());
        }
        Ok(outgoing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{ACCEPT, USER_AGENT};

    #[test]
    fn endpoint_refuses_urls_an_adapter_cannot_send_to() {
        for (url, what) in [
            ("not a url", "not a URL"),
            ("ftp://host", "needs http:// or https:// and a host"),
            ("/api", "needs http:// or https:// and a host"),
            (
                "https://host/?a=b",
                "has a query; a base URL takes a path at most",
            ),
        ] {
            assert_eq!(Endpoint::parse(url).unwrap_err().what, what, "{url}");
        }
        assert!(Endpoint::parse("http://127.0.0.1:8001").is_ok());
    }

    #[test]
    fn endpoint_join_prefixes_the_base_path_once() {
        for base in ["https://h:6443", "https://h:6443/"] {
            let endpoint = Endpoint::parse(base).unwrap();
            let joined = endpoint.join(&"/api/v1/pods?watch=1".parse().unwrap());
            assert_eq!(joined.unwrap(), "https://h:6443/api/v1/pods?watch=1");
        }
        let endpoint = Endpoint::parse("https://h/k8s/c1/").unwrap();
        let joined = endpoint.join(&"/apis".parse().unwrap()).unwrap();
        assert_eq!(joined, "https://h/k8s/c1/apis");
        assert_eq!(
            Endpoint::parse("https://[::1]:6443").unwrap().host(),
            "[::1]"
        );
    }

    #[test]
    fn endpoint_prepare_lets_request_headers_win_over_defaults() {
        let endpoint = Endpoint::parse("https://h").unwrap();
        let mut defaults = HeaderMap::new();
        defaults.insert(USER_AGENT, "windlass/test".parse().unwrap());
        defaults.insert(ACCEPT, "*/*".parse().unwrap());
        let request = Request::post("/api/v1/namespaces/default/configmaps")
            .header(ACCEPT, "application/json")
            .header("x-two", "1")
            .header("x-two", "2")
            .body(Bytes::from_static(b"{}"))
            .unwrap();
        let outgoing = endpoint.prepare(&request, &defaults).unwrap();
        assert_eq!(outgoing.method(), http::Method::POST);
        assert_eq!(outgoing.headers()[USER_AGENT], "windlass/test");
        assert_eq!(outgoing.headers()[ACCEPT], "application/json");
        assert_eq!(outgoing.headers().get_all("x-two").iter().count(), 2);
        assert_eq!(outgoing.body().as_ref(), b"{}");
    }
}
