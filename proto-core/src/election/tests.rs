use super::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn elector(identity: &str, now: Instant) -> LeaderElector {
    let config = Config::new(identity, "ns", "lock");
    LeaderElector::new(
        config,
        Rng::new(1),
        now,
        SystemTime::UNIX_EPOCH + secs(1_700_000_000),
    )
    .unwrap()
}

fn lease(holder: &str, rv: &str, renew_secs: i64) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some("lock".into()),
            namespace: Some("ns".into()),
            resource_version: Some(rv.into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(Timestamp::new(renew_secs, 0).unwrap())),
            acquire_time: Some(MicroTime(Timestamp::new(renew_secs, 0).unwrap())),
            lease_transitions: Some(3),
            ..LeaseSpec::default()
        }),
    }
}

/// Runs due timeouts and returns the single action that comes out.
fn next_action(e: &mut LeaderElector, now: Instant) -> Action {
    e.handle_timeout(now);
    let action = e.poll_action().expect("an action");
    assert_eq!(e.poll_action(), None, "one request at a time");
    action
}

fn events(e: &mut LeaderElector) -> Vec<Event> {
    std::iter::from_fn(|| e.poll_event()).collect()
}

fn spec(lease: &Lease) -> &LeaseSpec {
    lease.spec.as_ref().unwrap()
}

/// Acquires through 404 → Create and returns the created Lease as stored.
fn lead(e: &mut LeaderElector, now: Instant) -> Lease {
    let Action::Get { id } = next_action(e, now) else {
        panic!("expected a get")
    };
    e.handle_result(id, Err(LeaseError::NotFound), now);
    let Action::Create { id, lease } = e.poll_action().unwrap() else {
        panic!("expected a create")
    };
    let mut stored = *lease;
    stored.metadata.resource_version = Some("1".into());
    e.handle_result(id, Ok(stored.clone()), now);
    assert!(e.is_leader());
    stored
}

#[test]
fn election_config_defaults_are_15_10_2_and_valid() {
    let config = Config::new("a", "ns", "lock");
    assert_eq!(
        (
            config.lease_duration,
            config.renew_deadline,
            config.retry_period
        ),
        (secs(15), secs(10), secs(2))
    );
    assert!(config.release_on_cancel);
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn election_config_validation_names_the_broken_rule() {
    let base = Config::new("a", "ns", "lock");
    let check = |edit: &dyn Fn(&mut Config)| {
        let mut config = base.clone();
        edit(&mut config);
        config.validate().unwrap_err()
    };
    assert_eq!(check(&|c| c.identity.clear()), ConfigError::EmptyIdentity);
    assert_eq!(check(&|c| c.name.clear()), ConfigError::EmptyName);
    assert_eq!(check(&|c| c.namespace.clear()), ConfigError::EmptyNamespace);
    assert_eq!(
        check(&|c| c.retry_period = Duration::ZERO),
        ConfigError::NotPositive {
            field: "retry period"
        }
    );
    let err = check(&|c| c.lease_duration = secs(10));
    assert!(matches!(err, ConfigError::LeaseNotAboveRenew { .. }));
    assert_eq!(
        err.to_string(),
        "leader election: the lease duration (10s) must be greater than the renew deadline (10s)"
    );
    // 10 s is not above 1.2 × 9 s = 10.8 s.
    let err = check(&|c| c.retry_period = secs(9));
    assert!(
        matches!(err, ConfigError::RenewNotAboveRetry { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("10.8s"), "{err}");
    let err = check(&|c| c.lease_duration = Duration::from_millis(10_500));
    assert!(matches!(err, ConfigError::LeaseSeconds { .. }), "{err}");
    assert!(
        LeaderElector::new(
            Config {
                identity: String::new(),
                ..base.clone()
            },
            Rng::new(0),
            Instant::now(),
            SystemTime::UNIX_EPOCH
        )
        .is_err()
    );
}

#[test]
fn lease_not_found_is_created_and_leads() {
    let t0 = Instant::now();
    let mut e = elector("a", t0);
    let created = lead(&mut e, t0);
    let s = spec(&created);
    assert_eq!(s.holder_identity.as_deref(), Some("a"));
    assert_eq!(s.lease_duration_seconds, Some(15));
    assert_eq!(s.lease_transitions, Some(0));
    assert_eq!(s.renew_time.as_ref().unwrap().0.as_second(), 1_700_000_000);
    assert_eq!(created.metadata.name.as_deref(), Some("lock"));
    assert_eq!(created.metadata.namespace.as_deref(), Some("ns"));
    assert_eq!(
        events(&mut e),
        [Event::NewLeader("a".into()), Event::StartedLeading]
    );
    assert_eq!(
        e.poll_timeout(),
        Some(t0 + secs(2)),
        "renew one retry period later"
    );
}

#[test]
fn lease_held_by_another_is_judged_by_the_local_clock_only() {
    let t0 = Instant::now();
    let mut e = elector("b", t0);
    // renewTime is from 1970: a remote timestamp never makes a lease expire
    // (nor would one in the future keep it alive).
    let Action::Get { id } = next_action(&mut e, t0) else {
        panic!()
    };
    let record = lease("a", "7", 0);
    e.handle_result(id, Ok(record.clone()), t0);
    assert!(e.poll_action().is_none(), "a valid lease is not taken");
    assert_eq!(events(&mut e), [Event::NewLeader("a".into())]);
    let wake = e.poll_timeout().unwrap();
    assert!(
        wake >= t0 + secs(2) && wake < t0 + Duration::from_millis(4400),
        "jittered retry"
    );

    // The same record, read again and again: taken over only once 15 s of
    // local time have passed since it was first seen.
    let mut now;
    loop {
        now = e.poll_timeout().unwrap();
        let Action::Get { id } = next_action(&mut e, now) else {
            panic!()
        };
        e.handle_result(id, Ok(record.clone()), now);
        if e.poll_action().is_some() {
            panic!("taken at {:?}", now - t0);
        }
        if e.poll_timeout().unwrap() >= t0 + secs(15) {
            break;
        }
    }
    let t15 = e.poll_timeout().unwrap();
    let Action::Get { id } = next_action(&mut e, t15) else {
        panic!()
    };
    e.handle_result(id, Ok(record), t15);
    assert!(t15 >= t0 + secs(15));
    let Some(Action::Update { id, lease: claimed }) = e.poll_action() else {
        panic!()
    };
    let s = spec(&claimed);
    assert_eq!(s.holder_identity.as_deref(), Some("b"));
    assert_eq!(
        s.lease_transitions,
        Some(4),
        "a new holder counts a transition"
    );
    assert_eq!(
        claimed.metadata.resource_version.as_deref(),
        Some("7"),
        "optimistic concurrency"
    );
    assert_eq!(s.acquire_time, s.renew_time);
    e.handle_result(id, Ok(*claimed), t15);
    assert!(e.is_leader());
    assert_eq!(
        events(&mut e),
        [Event::NewLeader("b".into()), Event::StartedLeading]
    );
}

#[test]
fn lease_record_change_restarts_the_local_validity_clock() {
    let t0 = Instant::now();
    let mut e = elector("b", t0);
    let Action::Get { id } = next_action(&mut e, t0) else {
        panic!()
    };
    e.handle_result(id, Ok(lease("a", "7", 100)), t0);
    let t10 = t0 + secs(10);
    let Action::Get { id } = next_action(&mut e, t10) else {
        panic!()
    };
    e.handle_result(id, Ok(lease("a", "8", 110)), t10); // renewed
    let t20 = t0 + secs(20);
    let Action::Get { id } = next_action(&mut e, t20) else {
        panic!()
    };
    e.handle_result(id, Ok(lease("a", "8", 110)), t20);
    assert!(e.poll_action().is_none(), "seen at 10 s, valid until 25 s");
    let t25 = t0 + secs(25);
    let Action::Get { id } = next_action(&mut e, t25) else {
        panic!()
    };
    e.handle_result(id, Ok(lease("a", "8", 110)), t25);
    assert!(matches!(e.poll_action(), Some(Action::Update { .. })));
}

#[test]
fn lease_released_record_is_taken_at_once() {
    let t0 = Instant::now();
    let mut e = elector("b", t0);
    let Action::Get { id } = next_action(&mut e, t0) else {
        panic!()
    };
    let mut released = lease("", "9", 100);
    released.spec.as_mut().unwrap().lease_duration_seconds = Some(1);
    e.handle_result(id, Ok(released), t0);
    assert!(matches!(e.poll_action(), Some(Action::Update { .. })));
}

#[test]
fn lease_leader_renews_by_fast_update_and_falls_back_to_get_on_conflict() {
    let t0 = Instant::now();
    let mut e = elector("a", t0);
    let created = lead(&mut e, t0);
    events(&mut e);
    let t2 = t0 + secs(2);
    let Action::Update { id, lease: renewed } = next_action(&mut e, t2) else {
        panic!("fast path: update without get")
    };
    assert_eq!(renewed.metadata.resource_version.as_deref(), Some("1"));
    let s = spec(&renewed);
    assert_eq!(
        s.acquire_time,
        spec(&created).acquire_time,
        "acquire time kept"
    );
    assert_eq!(s.lease_transitions, Some(0), "no transition on renewal");
    assert_eq!(s.renew_time.as_ref().unwrap().0.as_second(), 1_700_000_002);
    e.handle_result(id, Err(LeaseError::Conflict), t2);
    let Some(Action::Get { id }) = e.poll_action() else {
        panic!("falls back to get")
    };
    let mut current = created.clone();
    current.metadata.resource_version = Some("5".into());
    e.handle_result(id, Ok(current), t2);
    let Some(Action::Update { id, lease }) = e.poll_action() else {
        panic!()
    };
    assert_eq!(lease.metadata.resource_version.as_deref(), Some("5"));
    e.handle_result(id, Ok(*lease), t2);
    assert!(e.is_leader());
    assert_eq!(events(&mut e), [], "no new events on renewal");
}

#[test]
fn lease_leader_stops_at_renew_deadline_counted_from_the_last_successful_send() {
    let t0 = Instant::now();
    let mut e = elector("a", t0);
    lead(&mut e, t0);
    events(&mut e);
    let mut now = t0;
    // Every renewal fails at once.
    while e.is_leader() {
        now = e.poll_timeout().unwrap();
        e.handle_timeout(now);
        while e.is_leader()
            && let Some(action) = e.poll_action()
        {
            let id = match action {
                Action::Get { id } | Action::Create { id, .. } | Action::Update { id, .. } => id,
            };
            e.handle_result(id, Err(LeaseError::Failed("503".into())), now);
        }
    }
    assert_eq!(
        now,
        t0 + secs(10),
        "deadline = send time of the create + 10 s"
    );
    assert_eq!(events(&mut e), [Event::StoppedLeading]);
    assert!(!e.is_stopped(), "now releasing");
    assert!(matches!(e.poll_action(), Some(Action::Get { .. })));
}

#[test]
fn lease_renewal_in_flight_past_the_deadline_is_ignored() {
    let t0 = Instant::now();
    let mut e = elector("a", t0);
    let created = lead(&mut e, t0);
    events(&mut e);
    let t2 = t0 + secs(2);
    let Action::Update { id, lease } = next_action(&mut e, t2) else {
        panic!()
    };
    // No answer until after the deadline (t0 + 10 s): leadership ends first.
    let late = t0 + secs(11);
    e.handle_result(id, Ok(*lease), late);
    assert!(!e.is_leader());
    assert_eq!(events(&mut e), [Event::StoppedLeading]);
    drop(created);
}

#[test]
fn lease_stop_emits_stopped_leading_then_releases_with_holder_cleared() {
    let t0 = Instant::now();
    let mut e = elector("a", t0);
    let created = lead(&mut e, t0);
    events(&mut e);
    let t1 = t0 + secs(1);
    e.stop(t1);
    assert!(!e.is_leader());
    assert_eq!(events(&mut e), [Event::StoppedLeading]);
    let Action::Get { id } = next_action(&mut e, t1) else {
        panic!()
    };
    e.handle_result(id, Ok(created.clone()), t1);
    let Some(Action::Update { id, lease }) = e.poll_action() else {
        panic!()
    };
    let s = spec(&lease);
    assert_eq!(s.holder_identity.as_deref(), Some(""));
    assert_eq!(s.lease_duration_seconds, Some(1));
    assert_eq!(s.renew_time, s.acquire_time);
    assert_eq!(s.lease_transitions, Some(0));
    // A conflict retries the get after DefaultRetry's ~10 ms.
    e.handle_result(id, Err(LeaseError::Conflict), t1);
    let wake = e.poll_timeout().unwrap();
    assert!(wake >= t1 + Duration::from_millis(10) && wake < t1 + Duration::from_millis(11));
    let Action::Get { id } = next_action(&mut e, wake) else {
        panic!()
    };
    e.handle_result(id, Ok(created), wake);
    let Some(Action::Update { id, lease }) = e.poll_action() else {
        panic!()
    };
    e.handle_result(id, Ok(*lease), wake);
    assert!(e.is_stopped());
    assert_eq!(e.poll_timeout(), None);
}

#[test]
fn lease_release_skips_a_lease_someone_else_holds() {
    let t0 = Instant::now();
    let mut e = elector("a", t0);
    lead(&mut e, t0);
    e.stop(t0);
    let Action::Get { id } = next_action(&mut e, t0) else {
        panic!()
    };
    e.handle_result(id, Ok(lease("b", "9", 0)), t0);
    assert_eq!(e.poll_action(), None);
    assert!(e.is_stopped());
}

#[test]
fn lease_stop_without_release_leaves_the_lease() {
    let t0 = Instant::now();
    let mut config = Config::new("a", "ns", "lock");
    config.release_on_cancel = false;
    let mut e = LeaderElector::new(config, Rng::new(1), t0, SystemTime::UNIX_EPOCH).unwrap();
    lead(&mut e, t0);
    e.stop(t0);
    assert!(e.is_stopped());
    assert_eq!(e.poll_action(), None);
}

#[test]
fn lease_follower_stop_with_a_write_in_flight_releases() {
    let t0 = Instant::now();
    let mut e = elector("b", t0);
    let Action::Get { id } = next_action(&mut e, t0) else {
        panic!()
    };
    e.handle_result(id, Ok(lease("", "2", 0)), t0);
    let Some(Action::Update { id: write, .. }) = e.poll_action() else {
        panic!()
    };
    e.stop(t0);
    e.handle_result(write, Ok(lease("b", "3", 0)), t0); // late: ignored
    assert!(!e.is_leader());
    let Action::Get { id } = next_action(&mut e, t0) else {
        panic!()
    };
    e.handle_result(id, Ok(lease("b", "3", 0)), t0);
    let Some(Action::Update { lease, .. }) = e.poll_action() else {
        panic!()
    };
    assert_eq!(spec(&lease).holder_identity.as_deref(), Some(""));
    assert!(!events(&mut e).contains(&Event::StartedLeading));
}

#[test]
fn lease_request_without_answer_times_out_after_the_renew_deadline() {
    let t0 = Instant::now();
    let mut e = elector("b", t0);
    let Action::Get { id } = next_action(&mut e, t0) else {
        panic!()
    };
    assert_eq!(e.poll_timeout(), Some(t0 + secs(10)));
    e.handle_timeout(t0 + secs(10));
    assert_eq!(e.poll_action(), None);
    let wake = e.poll_timeout().unwrap();
    assert!(
        wake >= t0 + secs(12),
        "a failed attempt waits a retry period"
    );
    e.handle_result(id, Err(LeaseError::NotFound), wake);
    assert_eq!(
        e.poll_action(),
        None,
        "the abandoned request's answer is ignored"
    );
}

#[test]
fn lease_health_check_fails_when_renewals_stall() {
    let t0 = Instant::now();
    let mut e = elector("a", t0);
    assert!(
        e.is_healthy(t0 + secs(100), Duration::ZERO),
        "followers are healthy"
    );
    lead(&mut e, t0);
    assert!(e.is_healthy(t0 + secs(15), Duration::ZERO));
    assert!(!e.is_healthy(t0 + secs(16), Duration::ZERO));
    assert!(e.is_healthy(t0 + secs(16), secs(1)));
}

#[test]
fn lease_leader_that_sees_another_holder_stops_at_once() {
    let t0 = Instant::now();
    let mut e = elector("a", t0);
    lead(&mut e, t0);
    events(&mut e);
    let t2 = t0 + secs(2);
    let Action::Update { id, .. } = next_action(&mut e, t2) else {
        panic!()
    };
    e.handle_result(id, Err(LeaseError::Conflict), t2);
    let Some(Action::Get { id }) = e.poll_action() else {
        panic!()
    };
    e.handle_result(id, Ok(lease("b", "9", 0)), t2);
    assert!(!e.is_leader(), "well before the renew deadline");
    assert_eq!(
        events(&mut e),
        [Event::NewLeader("b".into()), Event::StoppedLeading]
    );
    // Releasing finds b's record and leaves it alone.
    let Action::Get { id } = next_action(&mut e, t2) else {
        panic!()
    };
    e.handle_result(id, Ok(lease("b", "9", 0)), t2);
    assert!(e.is_stopped());
}

/// The error a runner's client would hand back for `code` with this `Status` reason.
fn api(method: http::Method, code: u16, reason: &str) -> crate::response::ApiError {
    let body = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "reason": reason, "code": code, "message": "from the server"});
    crate::response::api_error(
        &method,
        http::StatusCode::from_u16(code).unwrap(),
        &http::HeaderMap::new(),
        body.to_string().as_bytes(),
    )
    .expect("an error status")
}

#[test]
fn election_lease_error_from_api_sorts_statuses_as_the_elector_reads_them() {
    let not_found = api(http::Method::GET, 404, "NotFound");
    assert_eq!(
        LeaseError::from_api(Some(&not_found), &not_found),
        LeaseError::NotFound
    );
    let stale = api(http::Method::PUT, 409, "Conflict");
    assert_eq!(
        LeaseError::from_api(Some(&stale), &stale),
        LeaseError::Conflict
    );
    let exists = api(http::Method::POST, 409, "AlreadyExists");
    assert_eq!(
        LeaseError::from_api(Some(&exists), &exists),
        LeaseError::Conflict,
        "a create that lost the race"
    );
    let forbidden = api(http::Method::PUT, 403, "Forbidden");
    assert_eq!(
        LeaseError::from_api(Some(&forbidden), &"403 Forbidden: leases"),
        LeaseError::Failed("403 Forbidden: leases".into())
    );
    assert_eq!(
        LeaseError::from_api(None, &"connection refused"),
        LeaseError::Failed("connection refused".into()),
        "no status: a transport failure"
    );
}

#[test]
fn election_action_id_is_the_id_its_result_goes_back_with() {
    let now = Instant::now();
    let mut e = elector("pod-a", now);
    let get = next_action(&mut e, now);
    let Action::Get { id } = get else {
        panic!("a follower reads first: {get:?}")
    };
    assert_eq!(get.id(), id);
    e.handle_result(id, Err(LeaseError::NotFound), now);
    let create = e.poll_action().expect("a create after a 404");
    let Action::Create { id: create_id, .. } = &create else {
        panic!("{create:?}")
    };
    assert_eq!(create.id(), *create_id);
    assert_ne!(create.id(), id);
}
