//! Choosing the proxy for a request, as kubectl does: the cluster's
//! `proxy-url` when set (http, https or socks5), otherwise `HTTPS_PROXY` /
//! `HTTP_PROXY` from the environment, minus the hosts `NO_PROXY` excludes.
//!
//! Pure: the environment comes in as a [`ProxyEnv`] of values, the request
//! as a URL. The matching follows Go's `golang.org/x/net/http/httpproxy`,
//! which client-go uses through `http.ProxyFromEnvironment`:
//! - upper-case variables win over lower-case ones; `HTTP_PROXY` is ignored
//!   when `REQUEST_METHOD` is set (a CGI process);
//! - `localhost` and loopback addresses never go through a proxy;
//! - `NO_PROXY` is a comma list of `*` (everything), IP addresses, CIDRs,
//!   and domain names with an optional port; `example.com` matches itself
//!   and its subdomains, `.example.com` and `*.example.com` only subdomains;
//!   an entry with a port matches only that port; domain entries never match
//!   a URL whose host is an IP address.
//!
//! IDNA (non-ASCII host names) is not converted; such names compare as
//! written.

use std::fmt;
use std::net::IpAddr;

use super::secret::Secret;

/// The scheme of a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyScheme {
    /// An HTTP proxy (CONNECT for https targets).
    Http,
    /// An HTTP proxy reached over TLS.
    Https,
    /// A SOCKS5 proxy: `socks5://` or `socks5h://`, the same to windlass
    /// (as to Go's transport): the proxy resolves host names either way.
    Socks5,
}

/// A proxy URL. Its `Debug` hides the userinfo (it may hold a password).
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    scheme: ProxyScheme,
    host: String,
    port: u16,
    credentials: Option<(String, Secret<String>)>,
}

impl ProxyUrl {
    /// Parses `scheme://[user[:password]@]host[:port]`; the scheme must be
    /// http, https, socks5 or socks5h (read as socks5). The message never shows the userinfo.
    pub fn parse(url: &str) -> Result<ProxyUrl, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| "proxy URL has no scheme (http://, https:// or socks5://)".to_owned())?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => ProxyScheme::Http,
            "https" => ProxyScheme::Https,
            "socks5" | "socks5h" => ProxyScheme::Socks5,
            other => {
                return Err(format!(
                    "proxy URL scheme {other:?} is not supported; use http, https or socks5 (or socks5h)"
                ));
            }
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        // Percent-decoded, as Go's `url.Userinfo` gives them.
        let credentials = match userinfo.map(|u| u.split_once(':').unwrap_or((u, ""))) {
            None => None,
            Some((user, password)) => {
                let user =
                    percent_decode(user).ok_or("proxy URL user name has a malformed %-escape")?;
                let password = percent_decode(password)
                    .ok_or("proxy URL password has a malformed %-escape")?;
                Some((user, Secret::new(password)))
            }
        };
        let default_port = match scheme {
            ProxyScheme::Http => 80,
            ProxyScheme::Https => 443,
            ProxyScheme::Socks5 => 1080,
        };
        let (host, port) = split_host_port(hostport, default_port)
            .ok_or_else(|| format!("proxy URL host {hostport:?} is malformed"))?;
        if host.is_empty() {
            return Err("proxy URL has no host".into());
        }
        Ok(ProxyUrl {
            scheme,
            host,
            port,
            credentials,
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> ProxyScheme {
        self.scheme
    }

    /// The host (an IPv6 address without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (the scheme's default when the URL gives none: 80, 443, 1080).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The whole URL, userinfo included (hence secret), for a transport
    /// that takes the proxy as a string.
    pub fn url(&self) -> Secret<String> {
        let scheme = match self.scheme {
            ProxyScheme::Http => "http",
            ProxyScheme::Https => "https",
            ProxyScheme::Socks5 => "socks5",
        };
        let auth = match &self.credentials {
            Some((user, password)) if password.expose().is_empty() => {
                format!("{}@", percent_encode(user))
            }
            Some((user, password)) => format!(
                "{}:{}@",
                percent_encode(user),
                percent_encode(password.expose())
            ),
            None => String::new(),
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        Secret::new(format!("{scheme}://{auth}{host}:{}", self.port))
    }

    /// The user and password from the URL's userinfo, %-decoded.
    pub fn credentials(&self) -> Option<(&str, &Secret<String>)> {
        self.credentials.as_ref().map(|(u, p)| (u.as_str(), p))
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            ProxyScheme::Http => "http",
            ProxyScheme::Https => "https",
            ProxyScheme::Socks5 => "socks5",
        };
        let auth = if self.credentials.is_some() {
            "<redacted>@"
        } else {
            ""
        };
        if self.host.contains(':') {
            write!(
                f,
                "ProxyUrl({scheme}://{auth}[{}]:{})",
                self.host, self.port
            )
        } else {
            write!(f, "ProxyUrl({scheme}://{auth}{}:{})", self.host, self.port)
        }
    }
}

/// The proxy variables of an environment.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    /// `HTTPS_PROXY` (or `https_proxy`).
    pub https_proxy: Option<String>,
    /// `HTTP_PROXY` (or `http_proxy`).
    pub http_proxy: Option<String>,
    /// `NO_PROXY` (or `no_proxy`).
    pub no_proxy: Option<String>,
    /// `REQUEST_METHOD`: when set, `HTTP_PROXY` is ignored (httpoxy).
    pub request_method: Option<String>,
}

impl fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The proxy URLs may carry passwords.
        let shown = |v: &Option<String>| v.as_ref().map(|_| "<set>");
        f.debug_struct("ProxyEnv")
            .field("https_proxy", &shown(&self.https_proxy))
            .field("http_proxy", &shown(&self.http_proxy))
            .field("no_proxy", &self.no_proxy)
            .field("request_method", &self.request_method)
            .finish()
    }
}

impl ProxyEnv {
    /// Reads the variables through `lookup` (for the process: `|k|
    /// std::env::var(k).ok()`): the upper-case name first, then the
    /// lower-case one; an empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let any = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|n| lookup(n).filter(|v| !v.is_empty()))
        };
        ProxyEnv {
            https_proxy: any(["HTTPS_PROXY", "https_proxy"]),
            http_proxy: any(["HTTP_PROXY", "http_proxy"]),
            no_proxy: any(["NO_PROXY", "no_proxy"]),
            request_method: lookup("REQUEST_METHOD").filter(|v| !v.is_empty()),
        }
    }
}

/// The proxy for a request to `target`: the cluster's `proxy-url` if set,
/// else the environment's (see the module doc). `Ok(None)` means connect
/// directly. An environment proxy that cannot be parsed is an error, as in Go.
pub fn select_proxy(
    cluster_proxy: Option<&ProxyUrl>,
    env: &ProxyEnv,
    target: &http::Uri,
) -> Result<Option<ProxyUrl>, String> {
    if let Some(proxy) = cluster_proxy {
        return Ok(Some(proxy.clone()));
    }
    let https = match target.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Ok(None),
    };
    let raw = if https {
        env.https_proxy.as_deref()
    } else if env.request_method.is_none() {
        env.http_proxy.as_deref()
    } else {
        None
    };
    let Some(raw) = raw else { return Ok(None) };
    let host = target.host().unwrap_or("");
    let port = target.port_u16().unwrap_or(if https { 443 } else { 80 });
    if !use_proxy(host, port, env.no_proxy.as_deref().unwrap_or("")) {
        return Ok(None);
    }
    // Go: a value without a known scheme is read as http://value.
    let known = ["http://", "https://", "socks5://", "socks5h://"];
    let parsed = if known
        .iter()
        .any(|s| raw.to_ascii_lowercase().starts_with(s))
    {
        ProxyUrl::parse(raw)
    } else {
        ProxyUrl::parse(&format!("http://{raw}"))
    };
    parsed.map(Some).map_err(|e| {
        format!(
            "invalid proxy address in {}: {e}",
            if https { "HTTPS_PROXY" } else { "HTTP_PROXY" }
        )
    })
}

/// Whether a request to `host:port` goes through the proxy, given NO_PROXY.
pub fn use_proxy(host: &str, port: u16, no_proxy: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if host == "localhost" {
        return false;
    }
    let ip: Option<IpAddr> = host.parse().ok();
    if ip.is_some_and(|ip| ip.is_loopback()) {
        return false;
    }
    for entry in no_proxy.split(',') {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            continue;
        }
        if entry == "*" {
            return false;
        }
        if let Some((net, bits)) = parse_cidr(&entry) {
            if ip.is_some_and(|ip| cidr_contains(net, bits, ip)) {
                return false;
            }
            continue;
        }
        let (entry_host, entry_port) = match split_entry_port(&entry) {
            // No host part: a malformed entry, ignored as Go ignores it.
            Some(("", _)) => continue,
            Some((h, p)) => (h, Some(p)),
            None => (entry.as_str(), None),
        };
        let port_matches = entry_port.is_none_or(|p| p == port.to_string());
        if let Ok(entry_ip) = entry_host.parse::<IpAddr>() {
            if ip == Some(entry_ip) && port_matches {
                return false;
            }
            continue;
        }
        if ip.is_some() {
            continue;
        }
        let suffix = entry_host.strip_prefix('*').unwrap_or(entry_host);
        let (suffix, exact_too) = match suffix.strip_prefix('.') {
            Some(_) => (suffix.to_owned(), false),
            None => (format!(".{suffix}"), true),
        };
        let matches = host.ends_with(&suffix) || (exact_too && host == suffix[1..]);
        if matches && port_matches {
            return false;
        }
    }
    true
}

/// `host:port` or `[v6]:port` in a NO_PROXY entry (Go's `net.SplitHostPort`).
fn split_entry_port(entry: &str) -> Option<(&str, &str)> {
    if let Some(rest) = entry.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        return Some((h, p));
    }
    let (h, p) = entry.rsplit_once(':')?;
    if h.contains(':') {
        return None; // a bare IPv6 address
    }
    Some((h, p))
}

fn parse_cidr(entry: &str) -> Option<(IpAddr, u8)> {
    let (net, bits) = entry.split_once('/')?;
    let net: IpAddr = net.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if net.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((net, bits))
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    let mask = |width: u32| -> u128 {
        if bits == 0 {
            0
        } else {
            u128::MAX << (width - u32::from(bits))
        }
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let m = mask(32) as u32;
            u32::from(n) & m == u32::from(i) & m
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let m = mask(128);
            u128::from(n) & m == u128::from(i) & m
        }
        (IpAddr::V4(n), IpAddr::V6(i)) => i
            .to_ipv4_mapped()
            .is_some_and(|i| cidr_contains(IpAddr::V4(n), bits, IpAddr::V4(i))),
        (IpAddr::V6(_), IpAddr::V4(_)) => false,
    }
}

/// `host[:port]` or `[v6][:port]`, with the default port when absent.
fn split_host_port(hostport: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host.to_owned(), port.parse().ok()?)),
        Some(_) => None,
        None => Some((hostport.to_owned(), default_port)),
    }
}

/// `%XX` escapes decoded; `None` for a malformed escape or bytes that are
/// not UTF-8 once decoded.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Userinfo text with everything but RFC 3986 unreserved characters escaped.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
