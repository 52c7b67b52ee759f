//! Reaching the API server through a proxy: which way to go ([`Route`]),
//! the bytes of the tunnel handshake and the parse of the proxy's answer
//! ([`Tunnel`]), and the headers of a request forwarded through an HTTP
//! proxy ([`Route::proxy_authorization`]). Which proxy applies — the
//! kubeconfig's `proxy-url`, else `HTTPS_PROXY`/`HTTP_PROXY` minus
//! `NO_PROXY` — is [`crate::config::select_proxy`]'s decision.
//!
//! The routes, as Go's `net/http` transport (which client-go uses) takes them:
//!
//! | proxy     | target    | route                                                                     |
//! |-----------|-----------|---------------------------------------------------------------------------|
//! | none      | any       | [`Route::Direct`]                                                         |
//! | http://   | https://  | [`Route::Tunnel`]: `CONNECT host:port`, then TLS inside                   |
//! | http://   | http://   | [`Route::Forward`]: absolute-form requests to the proxy                   |
//! | https://  | https://  | [`Route::Tunnel`] inside TLS to the proxy, then the server's TLS inside   |
//! | https://  | http://   | [`Route::Forward`] inside TLS to the proxy                                |
//! | socks5:// | any       | [`Route::Tunnel`]: a SOCKS5 `CONNECT` (RFC 1928, 1929)                    |
//!
//! An https:// proxy is first reached over TLS ([`Route::proxy_tls_name`]):
//! Go's transport verifies the proxy with the same `tls.Config` as the API
//! server, so the adapter uses the same rustls `ClientConfig` — the
//! kubeconfig's CA (else the platform's roots), the client certificate if
//! the proxy asks for one — with ALPN `http/1.1`, verified against the
//! proxy's host (Go would use `tls-server-name` there too, when set; a
//! proxy's certificate names the proxy, so windlass does not).
//!
//! SOCKS5 as Go's `net/http` speaks it (its bundled `x/net/internal/socks`):
//! `socks5://` and `socks5h://` alike send a host name to the proxy to
//! resolve (address type 3) and an IP address as one (types 1 and 4);
//! username/password (RFC 1929) is offered beside "no authentication" when
//! the URL has a userinfo.
//!
//! A [`Tunnel`] is a sans-IO handshake: the adapter writes what
//! [`Tunnel::poll_transmit`] gives, reads at most [`Tunnel::wants`] bytes and
//! feeds them to [`Tunnel::handle_input`], until [`Tunnel::is_established`]:
//!
//! ```
//! use windlass_proto::config::ProxyUrl;
//! use windlass_proto::proxy::{Route, Tunnel};
//!
//! let proxy = ProxyUrl::parse("http://alice:secret@proxy.corp:3128").unwrap();
//! let target: http::Uri = "https://10.0.0.1:6443".parse().unwrap();
//! let route = Route::new(Some(&proxy), &target).unwrap();
//! let mut tunnel = route.tunnel(&target).unwrap().expect("a tunnel");
//! let request = tunnel.poll_transmit().unwrap();
//! assert!(request.starts_with(b"CONNECT 10.0.0.1:6443 HTTP/1.1\r\n"));
//! // … write `request` to the proxy, then read what it answers:
//! let mut answer: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";
//! while !tunnel.is_established() {
//!     let n = tunnel.wants().min(answer.len()); // never reads past the head
//!     tunnel.handle_input(&answer[..n]).unwrap();
//!     answer = &answer[n..];
//! }
//! // … the connection is now the target's: start TLS on it.
//! ```
//!
//! Reading at most [`Tunnel::wants`] bytes never takes a byte beyond the
//! proxy's answer, so the connection can be handed to TLS as it is. Input
//! past the answer is refused ([`ProxyError::UnexpectedData`]): the client
//! speaks first in TLS and HTTP, so a proxy that sends more is broken.
//!
//! Every [`ProxyError`] counts as a failed connect for the retry policy
//! ([`Failure::Connect`], never retried): a 407 or a SOCKS refusal is an
//! answer, not a transient fault (client-go retries only resets and EOFs,
//! and Go reports every proxy handshake failure as a `proxyconnect` error).
//!
//! What this module does not do: open sockets, time out (the adapter's
//! connect timeout covers the handshake), run TLS.

use base64::Engine;
use http::{HeaderValue, Uri};
use rustls::pki_types::ServerName;

use crate::config::{ProxyScheme, ProxyUrl};
use crate::retry::Failure;

/// The largest response head a proxy may answer a `CONNECT` with.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// The longest reason phrase an error keeps (longer ones are cut).
const MAX_REASON: usize = 256;

/// How a connection to the API server is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Connect to the target itself.
    Direct,
    /// Connect to the proxy, open a tunnel to the target with
    /// [`Route::tunnel`], then speak TLS (or HTTP) inside it.
    Tunnel(ProxyUrl),
    /// Connect to the proxy and send every request to it in absolute-form
    /// (`GET http://host:port/path HTTP/1.1`), with
    /// [`Route::proxy_authorization`] when the proxy URL has a userinfo.
    Forward(ProxyUrl),
}

impl Route {
    /// The route to `target` through `proxy` (from
    /// [`select_proxy`](crate::config::select_proxy); `None` is direct).
    pub fn new(proxy: Option<&ProxyUrl>, target: &Uri) -> Result<Route, ProxyError> {
        let Some(proxy) = proxy else {
            return Ok(Route::Direct);
        };
        match (proxy.scheme(), target.scheme_str()) {
            (ProxyScheme::Socks5, _) => Ok(Route::Tunnel(proxy.clone())),
            (ProxyScheme::Http | ProxyScheme::Https, Some("http")) => {
                Ok(Route::Forward(proxy.clone()))
            }
            (ProxyScheme::Http | ProxyScheme::Https, _) => Ok(Route::Tunnel(proxy.clone())),
        }
    }

    /// The name to verify the proxy's certificate against when the
    /// connection to the proxy itself is TLS (an https:// proxy): its host.
    /// `Ok(None)` for any other route.
    pub fn proxy_tls_name(&self) -> Result<Option<ServerName<'static>>, ProxyError> {
        let Some(proxy) = self.proxy().filter(|p| p.scheme() == ProxyScheme::Https) else {
            return Ok(None);
        };
        ServerName::try_from(proxy.host().to_owned())
            .map(Some)
            .map_err(|_| ProxyError::InvalidProxyName {
                host: proxy.host().to_owned(),
            })
    }

    /// The proxy to connect to (`None` when direct).
    pub fn proxy(&self) -> Option<&ProxyUrl> {
        match self {
            Route::Direct => None,
            Route::Tunnel(proxy) | Route::Forward(proxy) => Some(proxy),
        }
    }

    /// The handshake that opens the tunnel to `target` (`None` unless
    /// [`Route::Tunnel`]).
    pub fn tunnel(&self, target: &Uri) -> Result<Option<Tunnel>, ProxyError> {
        let Route::Tunnel(proxy) = self else {
            return Ok(None);
        };
        let (host, port) = target_host_port(target)?;
        let tunnel = match proxy.scheme() {
            ProxyScheme::Socks5 => Tunnel::socks5(proxy, host, port)?,
            _ => Tunnel::http_connect(proxy, host, port)?,
        };
        Ok(Some(tunnel))
    }

    /// `Proxy-Authorization: Basic …` for the proxy's userinfo, marked
    /// sensitive: sent on every forwarded request ([`Route::Forward`]).
    pub fn proxy_authorization(&self) -> Option<HeaderValue> {
        self.proxy().and_then(basic_authorization)
    }
}

/// The target's host (IPv6 without brackets) and port (the scheme's default
/// when absent).
fn target_host_port(target: &Uri) -> Result<(&str, u16), ProxyError> {
    let host =
        target
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| ProxyError::InvalidTarget {
                target: target.to_string(),
                what: "no host",
            })?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = match (target.port_u16(), target.scheme_str()) {
        (Some(port), _) => port,
        (None, Some("http")) => 80,
        (None, _) => 443,
    };
    Ok((host, port))
}

/// `Basic base64(user:password)`, sensitive, for a proxy URL with a userinfo.
fn basic_authorization(proxy: &ProxyUrl) -> Option<HeaderValue> {
    let (user, password) = proxy.credentials()?;
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.expose()));
    let mut value = HeaderValue::from_str(&format!("Basic {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Why a tunnel through a proxy could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// A proxy scheme the adapter cannot speak. [`Route::new`] no longer
    /// returns it (every scheme [`ProxyUrl`] parses has a route).
    #[error("{scheme}:// proxies are not supported; use an http://, https:// or socks5:// proxy")]
    UnsupportedScheme {
        /// The scheme.
        scheme: &'static str,
    },
    /// An https:// proxy whose host cannot be a TLS server name.
    #[error("the proxy host {host:?} is not a valid TLS server name")]
    InvalidProxyName {
        /// The proxy's host.
        host: String,
    },
    /// `HTTPS_PROXY` or `HTTP_PROXY` holds a value that is not a proxy URL.
    #[error("{message}")]
    Environment {
        /// What [`select_proxy`](crate::config::select_proxy) said.
        message: String,
    },
    /// A target that cannot be named in a handshake.
    #[error("proxy target {target:?}: {what}")]
    InvalidTarget {
        /// The target as given.
        target: String,
        /// What is wrong with it.
        what: &'static str,
    },
    /// The proxy answered `CONNECT` with a status other than 2xx.
    #[error("the proxy refused the tunnel: {status} {reason}{}", challenge.as_ref().map(|c| format!(" (Proxy-Authenticate: {c})")).unwrap_or_default())]
    Refused {
        /// The status code (407: the proxy wants credentials; 403: not
        /// allowed; 502: the proxy could not reach the target).
        status: u16,
        /// The reason phrase, control characters replaced, at most 256 bytes.
        reason: String,
        /// The `Proxy-Authenticate` challenge of a 407, if any.
        challenge: Option<String>,
    },
    /// The proxy's response head was not HTTP/1.x.
    #[error("the proxy's response is malformed: {what}")]
    Malformed {
        /// What was wrong.
        what: &'static str,
    },
    /// The proxy's response head did not end within the limit.
    #[error("the proxy's response head exceeds the {limit}-byte limit")]
    HeadTooLarge {
        /// [`MAX_RESPONSE_HEAD`].
        limit: usize,
    },
    /// The connection ended before the proxy's answer did.
    #[error("the proxy closed the connection after {received} bytes of its answer")]
    Truncated {
        /// How many bytes of the answer had arrived.
        received: usize,
    },
    /// The proxy sent bytes after its answer, before the client spoke.
    #[error("the proxy sent {extra} bytes past the end of its answer")]
    UnexpectedData {
        /// How many.
        extra: usize,
    },
    /// The SOCKS5 proxy accepted none of the offered authentication methods.
    #[error(
        "the SOCKS5 proxy accepts none of the offered authentication methods (no auth{})",
        if *offered_password { ", username/password" } else { "" }
    )]
    Socks5NoAcceptableMethod {
        /// Whether username/password was offered.
        offered_password: bool,
    },
    /// The SOCKS5 proxy rejected the username and password.
    #[error("the SOCKS5 proxy rejected the username and password (status {status})")]
    Socks5AuthFailed {
        /// The RFC 1929 status byte.
        status: u8,
    },
    /// The SOCKS5 proxy refused the connection to the target.
    #[error("the SOCKS5 proxy refused the connection: {meaning} (reply {reply})")]
    Socks5Refused {
        /// The RFC 1928 reply code.
        reply: u8,
        /// Its meaning.
        meaning: &'static str,
    },
    /// SOCKS5 limits names and credentials to 255 bytes.
    #[error("SOCKS5: the {what} is longer than 255 bytes")]
    Socks5TooLong {
        /// `user name`, `password` or `target host`.
        what: &'static str,
    },
}

impl From<&ProxyError> for Failure {
    /// [`Failure::Connect`]: the retry policy never resends after a proxy
    /// refused or garbled its handshake (see the module doc).
    fn from(_: &ProxyError) -> Self {
        Failure::Connect
    }
}

/// The sans-IO handshake that opens a tunnel through a proxy: HTTP
/// `CONNECT` or SOCKS5. See the module doc for the driving loop.
#[derive(Debug)]
pub struct Tunnel {
    /// Bytes waiting to be written.
    transmit: Vec<u8>,
    /// The answer received so far (of the current step).
    received: Vec<u8>,
    /// Bytes received in earlier steps (for [`ProxyError::Truncated`]).
    earlier: usize,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Awaiting the `CONNECT` response head.
    HttpHead,
    /// Awaiting the method choice: `[5, method]`.
    Socks5Method {
        credentials: Option<Vec<u8>>,
        connect: Vec<u8>,
    },
    /// Awaiting the username/password status: `[1, status]`.
    Socks5Auth {
        connect: Vec<u8>,
    },
    /// Awaiting the connect reply: `[5, rep, 0, atyp, addr, port]`.
    Socks5Reply,
    Established,
    Failed,
}

impl Tunnel {
    /// An HTTP `CONNECT host:port` handshake, with `Proxy-Authorization:
    /// Basic` when the proxy URL has a userinfo.
    pub fn http_connect(proxy: &ProxyUrl, host: &str, port: u16) -> Result<Tunnel, ProxyError> {
        check_host(host)?;
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(value) = basic_authorization(proxy) {
            // The value is base64 and "Basic ": ASCII.
            request.push_str("Proxy-Authorization: ");
            request.push_str(value.to_str().unwrap_or_default());
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        Ok(Tunnel {
            transmit: request.into_bytes(),
            received: Vec::new(),
            earlier: 0,
            state: State::HttpHead,
        })
    }

    /// A SOCKS5 `CONNECT` to `host:port`: no authentication, or
    /// username/password (RFC 1929) when the proxy URL has a userinfo. The
    /// proxy resolves a host name (as Go's `x/net/proxy` does).
    pub fn socks5(proxy: &ProxyUrl, host: &str, port: u16) -> Result<Tunnel, ProxyError> {
        check_host(host)?;
        let mut connect = vec![5, 1, 0];
        match host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => {
                connect.push(1);
                connect.extend_from_slice(&ip.octets());
            }
            Ok(std::net::IpAddr::V6(ip)) => {
                connect.push(4);
                connect.extend_from_slice(&ip.octets());
            }
            Err(_) => {
                let len = u8::try_from(host.len()).map_err(|_| ProxyError::Socks5TooLong {
                    what: "target host",
                })?;
                connect.push(3);
                connect.push(len);
                connect.extend_from_slice(host.as_bytes());
            }
        }
        connect.extend_from_slice(&port.to_be_bytes());
        let credentials = match proxy.credentials() {
            None => None,
            Some((user, password)) => {
                let user = user.as_bytes();
                let password = password.expose().as_bytes();
                let ulen = u8::try_from(user.len())
                    .map_err(|_| ProxyError::Socks5TooLong { what: "user name" })?;
                let plen = u8::try_from(password.len())
                    .map_err(|_| ProxyError::Socks5TooLong { what: "password" })?;
                let mut auth = vec![1, ulen];
                auth.extend_from_slice(user);
                auth.push(plen);
                auth.extend_from_slice(password);
                Some(auth)
            }
        };
        let greeting = if credentials.is_some() {
            vec![5, 2, 0, 2]
        } else {
            vec![5, 1, 0]
        };
        Ok(Tunnel {
            transmit: greeting,
            received: Vec::new(),
            earlier: 0,
            state: State::Socks5Method {
                credentials,
                connect,
            },
        })
    }

    // --- getters

    /// Whether the tunnel is open: the connection now reaches the target.
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established)
    }

    /// The most bytes to read next: reading no more than this never reads
    /// past the proxy's answer. 0 once established or failed.
    pub fn wants(&self) -> usize {
        let got = self.received.len();
        match &self.state {
            State::HttpHead => {
                // The fewest bytes that can complete "\n\n" or "\n\r\n".
                if self.received.ends_with(b"\n") || self.received.ends_with(b"\n\r") {
                    1
                } else {
                    2
                }
            }
            State::Socks5Method { .. } | State::Socks5Auth { .. } => 2 - got,
            State::Socks5Reply => match self.received.get(3) {
                None => 4 - got,
                Some(1) => 4 + 4 + 2 - got,
                Some(4) => 4 + 16 + 2 - got,
                Some(3) => match self.received.get(4) {
                    None => 1,
                    Some(&len) => 4 + 1 + usize::from(len) + 2 - got,
                },
                // An unknown address type fails in handle_input first.
                Some(_) => 0,
            },
            State::Established | State::Failed => 0,
        }
    }

    // --- inputs

    /// Bytes read from the proxy. An error ends the handshake; close the
    /// connection.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), ProxyError> {
        let result = self.consume(data);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    /// The proxy closed the connection (a read returned 0 bytes).
    pub fn handle_eof(&mut self) -> Result<(), ProxyError> {
        if self.is_established() {
            return Ok(());
        }
        let state = std::mem::replace(&mut self.state, State::Failed);
        // A SOCKS5 proxy may close right after a failure code.
        if let (State::Socks5Reply, [5, reply, ..]) = (state, self.received.as_slice())
            && *reply != 0
        {
            return Err(ProxyError::Socks5Refused {
                reply: *reply,
                meaning: socks5_reply_meaning(*reply),
            });
        }
        Err(ProxyError::Truncated {
            received: self.earlier + self.received.len(),
        })
    }

    // --- outputs

    /// Bytes to write to the proxy, if any (the request, or the next SOCKS5 step).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        (!self.transmit.is_empty()).then(|| std::mem::take(&mut self.transmit))
    }

    fn consume(&mut self, mut data: &[u8]) -> Result<(), ProxyError> {
        while !data.is_empty() {
            match self.state {
                State::Established => return Err(ProxyError::UnexpectedData { extra: data.len() }),
                State::Failed => {
                    return Err(ProxyError::Malformed {
                        what: "input after a failed handshake",
                    });
                }
                State::HttpHead => {
                    let used = self.take_head_bytes(data)?;
                    data = &data[used..];
                }
                _ => {
                    let n = self.wants().min(data.len());
                    self.received.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if self.wants() == 0 {
                        self.socks5_step()?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Appends the head's bytes from `data`; returns how many were taken.
    fn take_head_bytes(&mut self, data: &[u8]) -> Result<usize, ProxyError> {
        for (i, &byte) in data.iter().enumerate() {
            if self.received.len() == MAX_RESPONSE_HEAD {
                return Err(ProxyError::HeadTooLarge {
                    limit: MAX_RESPONSE_HEAD,
                });
            }
            self.received.push(byte);
            if byte == b'\n'
                && (self.received.ends_with(b"\n\n") || self.received.ends_with(b"\n\r\n"))
            {
                let head = std::mem::take(&mut self.received);
                self.earlier += head.len();
                parse_connect_response(&head)?;
                self.state = State::Established;
                return Ok(i + 1);
            }
        }
        Ok(data.len())
    }

    /// A complete SOCKS5 message is in `received`.
    fn socks5_step(&mut self) -> Result<(), ProxyError> {
        let message = std::mem::take(&mut self.received);
        self.earlier += message.len();
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Socks5Method {
                credentials,
                connect,
            } => {
                if message[0] != 5 {
                    return Err(ProxyError::Malformed {
                        what: "SOCKS version is not 5",
                    });
                }
                match (message[1], credentials) {
                    (0, _) => {
                        self.transmit = connect;
                        self.state = State::Socks5Reply;
                    }
                    (2, Some(auth)) => {
                        self.transmit = auth;
                        self.state = State::Socks5Auth { connect };
                    }
                    (0xff, credentials) => {
                        return Err(ProxyError::Socks5NoAcceptableMethod {
                            offered_password: credentials.is_some(),
                        });
                    }
                    _ => {
                        return Err(ProxyError::Malformed {
                            what: "SOCKS5 method not offered",
                        });
                    }
                }
            }
            State::Socks5Auth { connect } => {
                if message[0] != 1 {
                    return Err(ProxyError::Malformed {
                        what: "SOCKS5 username/password version is not 1",
                    });
                }
                if message[1] != 0 {
                    return Err(ProxyError::Socks5AuthFailed { status: message[1] });
                }
                self.transmit = connect;
                self.state = State::Socks5Reply;
            }
            State::Socks5Reply => {
                if message[0] != 5 {
                    return Err(ProxyError::Malformed {
                        what: "SOCKS version is not 5",
                    });
                }
                if !matches!(message[3], 1 | 3 | 4) {
                    return Err(ProxyError::Malformed {
                        what: "SOCKS5 reply address type",
                    });
                }
                if message[1] != 0 {
                    return Err(ProxyError::Socks5Refused {
                        reply: message[1],
                        meaning: socks5_reply_meaning(message[1]),
                    });
                }
                self.state = State::Established;
            }
            _ => {}
        }
        Ok(())
    }
}

/// A host that can go into a request line or a SOCKS5 request.
fn check_host(host: &str) -> Result<(), ProxyError> {
    let bad = |what| {
        Err(ProxyError::InvalidTarget {
            target: host.to_owned(),
            what,
        })
    };
    if host.is_empty() {
        return bad("no host");
    }
    if host
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || b == b'/' || b == b'@')
    {
        return bad("the host has characters a request line cannot carry");
    }
    Ok(())
}

/// Parses a complete response head to `CONNECT`: `Ok` for 2xx.
fn parse_connect_response(head: &[u8]) -> Result<(), ProxyError> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let status_line = lines.next().unwrap_or_default();
    let rest = status_line
        .strip_prefix(b"HTTP/1.")
        .ok_or(ProxyError::Malformed {
            what: "the status line does not start with HTTP/1.x",
        })?;
    let (minor, rest) = rest.split_first().ok_or(ProxyError::Malformed {
        what: "the status line ends after HTTP/1.",
    })?;
    if !minor.is_ascii_digit() || rest.first() != Some(&b' ') {
        return Err(ProxyError::Malformed {
            what: "the status line's version is not HTTP/1.x",
        });
    }
    let rest = &rest[1..];
    let code = rest.get(..3).ok_or(ProxyError::Malformed {
        what: "the status line has no three-digit status",
    })?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b != b' ') {
        return Err(ProxyError::Malformed {
            what: "the status line has no three-digit status",
        });
    }
    let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if status < 100 {
        return Err(ProxyError::Malformed {
            what: "the status is below 100",
        });
    }
    let reason = rest.get(4..).unwrap_or_default();
    let mut challenge = None;
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            continue; // obs-fold: a continuation of the previous header
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(ProxyError::Malformed {
                what: "a header line has no colon",
            });
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            return Err(ProxyError::Malformed {
                what: "a header name is not a token",
            });
        }
        if challenge.is_none() && name.eq_ignore_ascii_case(b"proxy-authenticate") {
            challenge = Some(printable(line[colon + 1..].trim_ascii()));
        }
    }
    if (200..300).contains(&status) {
        return Ok(());
    }
    Err(ProxyError::Refused {
        status,
        reason: printable(reason.trim_ascii()),
        challenge,
    })
}

/// RFC 9110 `tchar`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Text from the proxy fit for an error message: lossy UTF-8, control
/// characters replaced, at most [`MAX_REASON`] bytes.
fn printable(bytes: &[u8]) -> String {
    let mut text: String = String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if text.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

fn socks5_reply_meaning(reply: u8) -> &'static str {
    match reply {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    }
}

#[cfg(test)]
mod tests;
