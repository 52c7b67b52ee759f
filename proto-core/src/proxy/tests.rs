use super::*;
use proptest::prelude::*;

fn proxy(url: &str) -> ProxyUrl {
    ProxyUrl::parse(url).unwrap()
}

fn uri(url: &str) -> Uri {
    url.parse().unwrap()
}

/// Feeds `answer` the way an adapter does: at most `wants()` bytes at a time.
fn drive(tunnel: &mut Tunnel, mut answer: &[u8]) -> Result<(), ProxyError> {
    while !tunnel.is_established() {
        if answer.is_empty() {
            return tunnel.handle_eof();
        }
        let n = tunnel.wants().min(answer.len());
        assert!(n > 0, "wants() is positive until established");
        tunnel.handle_input(&answer[..n])?;
        answer = &answer[n..];
    }
    assert!(answer.is_empty(), "wants() never reads past the answer");
    Ok(())
}

fn http_tunnel() -> Tunnel {
    Tunnel::http_connect(&proxy("http://proxy:3128"), "10.0.0.1", 6443).unwrap()
}

#[test]
fn proxy_route_follows_go_transport() {
    let http = proxy("http://p:3128");
    let socks = proxy("socks5://p:1080");
    let https = uri("https://api:6443");
    let plain = uri("http://api:8080");
    assert_eq!(Route::new(None, &https).unwrap(), Route::Direct);
    assert_eq!(
        Route::new(Some(&http), &https).unwrap(),
        Route::Tunnel(http.clone())
    );
    assert_eq!(
        Route::new(Some(&http), &plain).unwrap(),
        Route::Forward(http.clone())
    );
    assert_eq!(
        Route::new(Some(&socks), &plain).unwrap(),
        Route::Tunnel(socks.clone())
    );
    // An https:// proxy routes as an http:// one, inside TLS to the proxy.
    let secure = proxy("https://p:8443");
    assert_eq!(
        Route::new(Some(&secure), &https).unwrap(),
        Route::Tunnel(secure.clone())
    );
    assert_eq!(
        Route::new(Some(&secure), &plain).unwrap(),
        Route::Forward(secure.clone())
    );
    assert!(Route::Direct.tunnel(&https).unwrap().is_none());
    assert!(
        Route::Forward(http.clone())
            .tunnel(&plain)
            .unwrap()
            .is_none()
    );
}

#[test]
fn proxy_tls_name_is_the_https_proxy_host_only() {
    let https = uri("https://api:6443");
    let tls = |url: &str| {
        Route::new(Some(&proxy(url)), &https)
            .unwrap()
            .proxy_tls_name()
    };
    assert_eq!(
        tls("https://proxy.corp:8443").unwrap(),
        Some(ServerName::try_from("proxy.corp").unwrap())
    );
    assert_eq!(
        tls("https://[fd00::5]").unwrap(),
        Some(ServerName::try_from("fd00::5").unwrap())
    );
    assert_eq!(tls("http://proxy.corp").unwrap(), None);
    assert_eq!(tls("socks5://proxy.corp").unwrap(), None);
    assert_eq!(Route::Direct.proxy_tls_name().unwrap(), None);
    assert_eq!(
        tls("https://bad_name!").unwrap_err(),
        ProxyError::InvalidProxyName {
            host: "bad_name!".into()
        }
    );
}

// client-go retries only connection resets and EOFs (`IsProbableEOF`); Go
// reports a refused CONNECT, a 407 or a SOCKS failure as a `proxyconnect`
// error, which is neither.
#[test]
fn proxy_errors_are_never_retried() {
    use crate::retry::{Decision, RequestKind, Retry};
    let errors = [
        ProxyError::Refused {
            status: 407,
            reason: "Proxy Authentication Required".into(),
            challenge: Some("Basic".into()),
        },
        ProxyError::Truncated { received: 3 },
        ProxyError::Socks5AuthFailed { status: 1 },
        ProxyError::Socks5Refused {
            reply: 5,
            meaning: "connection refused",
        },
    ];
    for error in &errors {
        for kind in [RequestKind::Get, RequestKind::List, RequestKind::Watch] {
            let mut retry = Retry::new(kind);
            assert_eq!(
                retry.decide(Failure::from(error)),
                Decision::GiveUp,
                "{error}"
            );
        }
    }
}

#[test]
fn proxy_socks5h_is_socks5_with_remote_names() {
    let p = proxy("SOCKS5H://u:pw@bastion");
    assert_eq!(p.scheme(), ProxyScheme::Socks5);
    assert_eq!(p.port(), 1080);
    let target = uri("https://kube.internal:6443");
    let mut tunnel = Route::new(Some(&p), &target)
        .unwrap()
        .tunnel(&target)
        .unwrap()
        .unwrap();
    assert_eq!(tunnel.poll_transmit().unwrap(), [5, 2, 0, 2]);
    tunnel.handle_input(&[5, 0]).unwrap();
    let connect = tunnel.poll_transmit().unwrap();
    assert_eq!(
        &connect[..5],
        [5, 1, 0, 3, 13],
        "the name goes to the proxy"
    );
}

#[test]
fn proxy_connect_request_bytes_with_basic_auth() {
    let route = Route::new(
        Some(&proxy("http://alice:s%40cret@p:3128")),
        &uri("https://api.example:6443"),
    )
    .unwrap();
    let mut tunnel = route
        .tunnel(&uri("https://api.example:6443"))
        .unwrap()
        .unwrap();
    let request = tunnel.poll_transmit().unwrap();
    // base64("alice:s@cret"): the userinfo is %-decoded, as Go's url.Userinfo.
    assert_eq!(
        String::from_utf8(request).unwrap(),
        "CONNECT api.example:6443 HTTP/1.1\r\nHost: api.example:6443\r\nProxy-Authorization: Basic YWxpY2U6c0BjcmV0\r\n\r\n"
    );
    assert!(tunnel.poll_transmit().is_none(), "written once");
}

#[test]
fn proxy_connect_request_ipv6_and_default_port() {
    let route = Route::Tunnel(proxy("http://p"));
    let mut tunnel = route.tunnel(&uri("https://[fd00::1]/")).unwrap().unwrap();
    let request = String::from_utf8(tunnel.poll_transmit().unwrap()).unwrap();
    assert!(
        request.starts_with("CONNECT [fd00::1]:443 HTTP/1.1\r\nHost: [fd00::1]:443\r\n\r\n"),
        "{request}"
    );
    assert!(!request.contains("Proxy-Authorization"));
}

#[test]
fn proxy_connect_refuses_a_host_that_would_split_the_request_line() {
    let error = Tunnel::http_connect(&proxy("http://p"), "a b\r\nX: y", 443).unwrap_err();
    assert!(matches!(error, ProxyError::InvalidTarget { .. }), "{error}");
}

#[test]
fn proxy_connect_established_on_2xx() {
    for answer in [
        &b"HTTP/1.1 200 Connection established\r\n\r\n"[..],
        b"HTTP/1.0 200 OK\r\nProxy-Agent: squid\r\nVia: 1.1 p\r\n\r\n",
        b"HTTP/1.1 200\r\n\r\n",
        b"HTTP/1.1 204 No Content\n\n",
        b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\n\r\n",
    ] {
        let mut tunnel = http_tunnel();
        drive(&mut tunnel, answer).unwrap_or_else(|e| panic!("{answer:?}: {e}"));
        assert!(tunnel.is_established());
        assert_eq!(tunnel.wants(), 0);
    }
}

#[test]
fn proxy_connect_407_keeps_status_reason_and_challenge() {
    let mut tunnel = http_tunnel();
    let error = drive(
        &mut tunnel,
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap_err();
    assert_eq!(
        error,
        ProxyError::Refused {
            status: 407,
            reason: "Proxy Authentication Required".into(),
            challenge: Some("Basic realm=\"corp\"".into()),
        }
    );
    assert_eq!(
        error.to_string(),
        "the proxy refused the tunnel: 407 Proxy Authentication Required (Proxy-Authenticate: Basic realm=\"corp\")"
    );
    assert!(!tunnel.is_established());
    assert_eq!(tunnel.wants(), 0, "a failed handshake wants nothing more");
}

#[test]
fn proxy_connect_403_and_502_are_refusals() {
    for (answer, status, reason) in [
        (&b"HTTP/1.1 403 Forbidden\r\n\r\n"[..], 403, "Forbidden"),
        (
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n\r\n",
            502,
            "Bad Gateway",
        ),
        (b"HTTP/1.1 503\r\n\r\n", 503, ""),
        (
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            101,
            "Switching Protocols",
        ),
    ] {
        let error = drive(&mut http_tunnel(), answer).unwrap_err();
        assert_eq!(
            error,
            ProxyError::Refused {
                status,
                reason: reason.into(),
                challenge: None
            },
            "{answer:?}"
        );
    }
}

#[test]
fn proxy_connect_reason_is_made_printable_and_bounded() {
    let mut answer = b"HTTP/1.1 502 Bad\x1b[31m ".to_vec();
    answer.extend(std::iter::repeat_n(b'x', 1000));
    answer.extend_from_slice(b"\r\n\r\n");
    let error = drive(&mut http_tunnel(), &answer).unwrap_err();
    let ProxyError::Refused { reason, .. } = error else {
        panic!("{error}")
    };
    assert!(!reason.contains('\x1b'));
    assert!(
        reason.len() <= MAX_REASON + '…'.len_utf8(),
        "{}",
        reason.len()
    );
}

#[test]
fn proxy_connect_malformed_heads() {
    for answer in [
        &b"SSH-2.0-OpenSSH_9.6\r\n\r\n"[..],
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 099 Low\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n: empty\r\n\r\n",
        b"\r\n\r\n",
    ] {
        let error = drive(&mut http_tunnel(), answer).unwrap_err();
        assert!(
            matches!(error, ProxyError::Malformed { .. }),
            "{answer:?}: {error}"
        );
    }
}

#[test]
fn proxy_connect_truncated_head_is_an_error() {
    let mut tunnel = http_tunnel();
    tunnel.handle_input(b"HTTP/1.1 200 Connection est").unwrap();
    assert_eq!(
        tunnel.handle_eof().unwrap_err(),
        ProxyError::Truncated { received: 27 }
    );
    let mut tunnel = http_tunnel();
    assert_eq!(
        tunnel.handle_eof().unwrap_err(),
        ProxyError::Truncated { received: 0 }
    );
}

#[test]
fn proxy_connect_head_limit_is_enforced_without_growing_past_it() {
    let mut tunnel = http_tunnel();
    tunnel.handle_input(b"HTTP/1.1 200 OK\r\n").unwrap();
    let header = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut error = None;
    for _ in 0..(2 * MAX_RESPONSE_HEAD / header.len()) {
        if let Err(e) = tunnel.handle_input(header) {
            error = Some(e);
            break;
        }
        assert!(tunnel.received.len() <= MAX_RESPONSE_HEAD);
    }
    assert_eq!(
        error,
        Some(ProxyError::HeadTooLarge {
            limit: MAX_RESPONSE_HEAD
        })
    );
}

#[test]
fn proxy_connect_bytes_past_the_head_are_refused() {
    let mut tunnel = http_tunnel();
    let error = tunnel
        .handle_input(b"HTTP/1.1 200 OK\r\n\r\n\x16\x03\x01")
        .unwrap_err();
    assert_eq!(error, ProxyError::UnexpectedData { extra: 3 });
}

#[test]
fn proxy_connect_wants_never_overshoots_the_terminator() {
    let mut tunnel = http_tunnel();
    assert_eq!(tunnel.wants(), 2);
    tunnel.handle_input(b"HTTP/1.1 200 OK\r").unwrap();
    assert_eq!(tunnel.wants(), 2);
    tunnel.handle_input(b"\n").unwrap();
    assert_eq!(tunnel.wants(), 1);
    tunnel.handle_input(b"\r").unwrap();
    assert_eq!(tunnel.wants(), 1);
    tunnel.handle_input(b"\n").unwrap();
    assert!(tunnel.is_established());
}

#[test]
fn proxy_forward_authorization_is_basic_and_sensitive() {
    let route = Route::new(Some(&proxy("http://bob:pw@p:8080")), &uri("http://api")).unwrap();
    let value = route.proxy_authorization().unwrap();
    assert_eq!(value, "Basic Ym9iOnB3");
    assert!(value.is_sensitive());
    assert!(
        Route::Forward(proxy("http://p"))
            .proxy_authorization()
            .is_none()
    );
    assert!(Route::Direct.proxy_authorization().is_none());
}

#[test]
fn proxy_url_userinfo_is_percent_decoded_and_reencoded() {
    let p = proxy("http://us%65r:p%3Aw%40rd@p:1");
    let (user, password) = p.credentials().unwrap();
    assert_eq!((user, password.expose().as_str()), ("user", "p:w@rd"));
    assert_eq!(p.url().expose(), "http://user:p%3Aw%40rd@p:1");
    assert!(ProxyUrl::parse("http://u:%zz@p").is_err());
    assert!(ProxyUrl::parse("http://u:%4@p").is_err());
}

// --- SOCKS5 (RFC 1928, 1929)

#[test]
fn proxy_socks5_no_auth_domain_target() {
    let route = Route::new(
        Some(&proxy("socks5://bastion:1080")),
        &uri("https://kube.internal:6443"),
    )
    .unwrap();
    let mut tunnel = route
        .tunnel(&uri("https://kube.internal:6443"))
        .unwrap()
        .unwrap();
    assert_eq!(tunnel.poll_transmit().unwrap(), [5, 1, 0]);
    assert_eq!(tunnel.wants(), 2);
    tunnel.handle_input(&[5, 0]).unwrap();
    let mut connect = vec![5, 1, 0, 3, 13];
    connect.extend_from_slice(b"kube.internal");
    connect.extend_from_slice(&6443u16.to_be_bytes());
    assert_eq!(tunnel.poll_transmit().unwrap(), connect);
    drive(&mut tunnel, &[5, 0, 0, 1, 10, 0, 0, 9, 0x1f, 0x90]).unwrap();
    assert!(tunnel.is_established());
}

#[test]
fn proxy_socks5_username_password_and_ip_targets() {
    let p = proxy("socks5://alice:pw@bastion");
    let mut tunnel = Tunnel::socks5(&p, "fd00::1", 443).unwrap();
    assert_eq!(tunnel.poll_transmit().unwrap(), [5, 2, 0, 2]);
    tunnel.handle_input(&[5, 2]).unwrap();
    assert_eq!(tunnel.poll_transmit().unwrap(), b"\x01\x05alice\x02pw");
    tunnel.handle_input(&[1, 0]).unwrap();
    let connect = tunnel.poll_transmit().unwrap();
    assert_eq!(&connect[..4], [5, 1, 0, 4]);
    assert_eq!(connect.len(), 4 + 16 + 2);
    // A reply with a domain bound address, fed in one piece.
    let mut reply = vec![5, 0, 0, 3, 4];
    reply.extend_from_slice(b"host\x01\xbb");
    drive(&mut tunnel, &reply).unwrap();

    let mut tunnel = Tunnel::socks5(&proxy("socks5://b"), "10.1.2.3", 80).unwrap();
    tunnel.poll_transmit();
    tunnel.handle_input(&[5, 0]).unwrap();
    assert_eq!(
        tunnel.poll_transmit().unwrap(),
        [5, 1, 0, 1, 10, 1, 2, 3, 0, 80]
    );
}

#[test]
fn proxy_socks5_failures_are_clear() {
    let mut tunnel = Tunnel::socks5(&proxy("socks5://u:p@b"), "h", 1).unwrap();
    assert_eq!(
        tunnel.handle_input(&[5, 0xff]).unwrap_err(),
        ProxyError::Socks5NoAcceptableMethod {
            offered_password: true
        }
    );
    let mut tunnel = Tunnel::socks5(&proxy("socks5://u:p@b"), "h", 1).unwrap();
    tunnel.handle_input(&[5, 2]).unwrap();
    assert_eq!(
        tunnel.handle_input(&[1, 1]).unwrap_err(),
        ProxyError::Socks5AuthFailed { status: 1 }
    );
    // Username/password chosen though not offered.
    let mut tunnel = Tunnel::socks5(&proxy("socks5://b"), "h", 1).unwrap();
    assert!(matches!(
        tunnel.handle_input(&[5, 2]).unwrap_err(),
        ProxyError::Malformed { .. }
    ));
    let mut tunnel = Tunnel::socks5(&proxy("socks5://b"), "h", 1).unwrap();
    assert!(matches!(
        tunnel.handle_input(&[4, 0]).unwrap_err(),
        ProxyError::Malformed { .. }
    ));
    let mut tunnel = Tunnel::socks5(&proxy("socks5://b"), "h", 1).unwrap();
    tunnel.handle_input(&[5, 0]).unwrap();
    let error = drive(&mut tunnel, &[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap_err();
    assert_eq!(
        error,
        ProxyError::Socks5Refused {
            reply: 5,
            meaning: "connection refused"
        }
    );
    // The proxy closes right after the failure code.
    let mut tunnel = Tunnel::socks5(&proxy("socks5://b"), "h", 1).unwrap();
    tunnel.handle_input(&[5, 0]).unwrap();
    tunnel.handle_input(&[5, 2]).unwrap();
    assert!(matches!(
        tunnel.handle_eof().unwrap_err(),
        ProxyError::Socks5Refused { reply: 2, .. }
    ));
    let mut tunnel = Tunnel::socks5(&proxy("socks5://b"), "h", 1).unwrap();
    tunnel.handle_input(&[5, 0]).unwrap();
    assert!(matches!(
        tunnel.handle_input(&[5, 0, 0, 9]).unwrap_err(),
        ProxyError::Malformed { .. }
    ));
    let long = "x".repeat(256);
    assert_eq!(
        Tunnel::socks5(&proxy("socks5://b"), &long, 1).unwrap_err(),
        ProxyError::Socks5TooLong {
            what: "target host"
        }
    );
}

proptest! {
    #[test]
    fn proxy_connect_parser_never_panics_on_arbitrary_bytes(
        data in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut tunnel = http_tunnel();
        let mut rest: &[u8] = &data;
        for cut in cuts {
            let n = if rest.is_empty() { 0 } else { cut % rest.len() };
            if tunnel.handle_input(&rest[..n]).is_err() {
                return Ok(());
            }
            rest = &rest[n..];
        }
        let _ = tunnel.handle_input(rest);
        let _ = tunnel.handle_eof();
        prop_assert!(tunnel.received.len() <= MAX_RESPONSE_HEAD);
    }

    #[test]
    fn proxy_socks5_never_panics_on_arbitrary_bytes(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        password in any::<bool>(),
    ) {
        let url = if password { "socks5://u:p@b" } else { "socks5://b" };
        let mut tunnel = Tunnel::socks5(&proxy(url), "host", 443).unwrap();
        let mut rest: &[u8] = &data;
        while !rest.is_empty() && tunnel.wants() > 0 {
            let n = tunnel.wants().min(rest.len());
            if tunnel.handle_input(&rest[..n]).is_err() {
                break;
            }
            rest = &rest[n..];
            tunnel.poll_transmit();
        }
        let _ = tunnel.handle_input(rest);
        let _ = tunnel.handle_eof();
    }

    #[test]
    fn proxy_connect_split_anywhere_gives_the_same_outcome(
        cut in 0usize..64,
        status in prop_oneof![Just(200u16), Just(407), Just(502)],
    ) {
        let answer = format!("HTTP/1.1 {status} Whatever\r\nVia: p\r\n\r\n");
        let answer = answer.as_bytes();
        let whole = {
            let mut t = http_tunnel();
            t.handle_input(answer).map(|()| t.is_established())
        };
        let cut = cut.min(answer.len());
        let split = {
            let mut t = http_tunnel();
            t.handle_input(&answer[..cut])
                .and_then(|()| t.handle_input(&answer[cut..]))
                .map(|()| t.is_established())
        };
        prop_assert_eq!(whole, split);
    }
}
