//! The invariants: what a handler's notifications must add up to, what the
//! store must hold once faults stop, and how many requests a minute the
//! backoff rules allow. This module owns the checks; the world feeds them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use windlass_proto::informer::{HandlerId, Notification, Store};
use windlass_proto::object::{Object, ObjectKey};

/// One handler's view, rebuilt from nothing but its notifications.
#[derive(Debug)]
pub(super) struct Replica {
    pub(super) id: HandlerId,
    pub(super) name: &'static str,
    /// Key → resourceVersion, as the notifications say.
    objects: BTreeMap<ObjectKey, String>,
    /// Keys this handler was ever told about.
    seen: BTreeSet<ObjectKey>,
}

impl Replica {
    pub(super) fn new(id: HandlerId, name: &'static str) -> Self {
        Self {
            id,
            name,
            objects: BTreeMap::new(),
            seen: BTreeSet::new(),
        }
    }

    /// Applies one notification, checking it is consistent with the ones before.
    pub(super) fn apply(&mut self, n: &Notification<ConfigMap>) -> Result<(), String> {
        match n {
            Notification::Add { object, .. } => {
                let key = object.key();
                if let Some(rv) = self.objects.get(&key) {
                    return Err(format!(
                        "handler {}: Add for {key} (rv {}) it already holds at rv {rv}",
                        self.name,
                        rv_of(object)
                    ));
                }
                self.seen.insert(key.clone());
                self.objects.insert(key, rv_of(object));
            }
            Notification::Update { old, new } => {
                let key = new.key();
                match self.objects.get(&key) {
                    Some(rv) if *rv == rv_of(old) => {}
                    held => {
                        return Err(format!(
                            "handler {}: Update of {key} from rv {} but it holds {held:?}",
                            self.name,
                            rv_of(old)
                        ));
                    }
                }
                self.objects.insert(key, rv_of(new));
            }
            Notification::Resync(object) => {
                let key = object.key();
                if self.objects.get(&key) != Some(&rv_of(object)) {
                    return Err(format!(
                        "handler {}: Resync of {key} at rv {} but it holds {:?}",
                        self.name,
                        rv_of(object),
                        self.objects.get(&key)
                    ));
                }
            }
            Notification::Delete(d) => {
                let key = d.key();
                if self.objects.remove(&key).is_none() {
                    return Err(format!(
                        "handler {}: Delete of {key} it does not hold",
                        self.name
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The resourceVersion of an object, or `""`.
pub(super) fn rv_of(o: &ConfigMap) -> String {
    o.resource_version().unwrap_or_default().to_owned()
}

/// What the server holds in the informer's scope: key → resourceVersion.
pub(super) type State = BTreeMap<ObjectKey, String>;

/// The end-of-run invariants: the store equals the server; every key that
/// was in scope and is gone from the server is gone from the store, and each
/// handler that was told about it was told it went; each handler's replay
/// reproduces the store.
pub(super) fn converged(
    server: &State,
    ever_in_scope: &BTreeSet<ObjectKey>,
    store: &Store<ConfigMap>,
    replicas: &[Replica],
) -> Result<(), String> {
    let held: State = store.list().map(|o| (o.key(), rv_of(o))).collect();
    if let Some(diff) = first_difference(server, &held) {
        return Err(format!("store differs from the server: {diff}"));
    }
    for key in ever_in_scope.iter().filter(|k| !server.contains_key(*k)) {
        if store.get(key).is_some() {
            return Err(format!(
                "{key} was deleted on the server but is in the store"
            ));
        }
        for r in replicas {
            if r.seen.contains(key) && r.objects.contains_key(key) {
                return Err(format!(
                    "{key} was deleted on the server but handler {} was never told",
                    r.name
                ));
            }
        }
    }
    for r in replicas {
        if let Some(diff) = first_difference(&held, &r.objects) {
            return Err(format!(
                "replaying handler {}'s notifications does not give the store: {diff}",
                r.name
            ));
        }
    }
    Ok(())
}

fn first_difference(want: &State, have: &State) -> Option<String> {
    for (key, rv) in want {
        match have.get(key) {
            None => return Some(format!("{key} (rv {rv}) is missing")),
            Some(h) if h != rv => return Some(format!("{key} is at rv {h}, not {rv}")),
            Some(_) => {}
        }
    }
    let extra = have.keys().find(|k| !want.contains_key(*k))?;
    Some(format!("{extra} (rv {}) should not be there", have[extra]))
}

/// The request-rate bound, derived from the backoff rules.
///
/// Every wait the reflector takes is a delay of the backoff sequence
/// (0.8, 1.6, 3.2, 6.4, 12.8, 25.6, then 30 s, each jittered upwards), which
/// starts over only after two minutes without a delay: within one minute at
/// most 7 delays begin (0 + 0.8 + 1.6 + 3.2 + 6.4 + 12.8 + 25.6 = 50.4 s < 60 s
/// < 80.4 s), so at most 8 list-and-watch attempts (one begun before the
/// minute) start in it. One attempt sends at most `2P + 5` requests with P
/// the pages of one list: a watch-list and its retry at RV "", a list, its
/// one full-list fallback after an expired continue, the same again for the
/// one retry at RV "" after a 410 or too-large RV, and the watch. The only
/// request not behind a delay is the re-watch after a watch that delivered
/// an event or lived a second, so those are allowed on top:
///
/// `requests per minute ≤ 9 · (2P + 5) + productive watches ended that minute`.
#[derive(Debug, Default)]
pub(super) struct RateBound {
    pages: u64,
    sends: Vec<Duration>,
    productive_ends: Vec<Duration>,
}

impl RateBound {
    /// A bound for lists of at most `pages` pages.
    pub(super) fn new(pages: u64) -> Self {
        Self {
            pages,
            ..Self::default()
        }
    }

    /// A watch that delivered an event or lived a second ended at `at`.
    pub(super) fn productive_watch_ended(&mut self, at: Duration) {
        self.productive_ends.push(at);
    }

    /// A request was sent at `at`; an error when the minute up to `at` holds too many.
    pub(super) fn sent(&mut self, at: Duration) -> Result<(), String> {
        self.sends.push(at);
        let from = at.saturating_sub(Duration::from_secs(60));
        let in_window = |times: &[Duration]| times.len() - times.partition_point(|t| *t < from);
        let sends = in_window(&self.sends) as u64;
        let productive = in_window(&self.productive_ends) as u64;
        let bound = 9 * (2 * self.pages + 5) + productive;
        if sends > bound {
            return Err(format!(
                "{sends} requests in the minute up to {:.3}s exceed the bound 9·(2·{}+5) + {productive} = {bound}",
                at.as_secs_f64(),
                self.pages
            ));
        }
        Ok(())
    }

    /// Requests sent so far.
    pub(super) fn requests(&self) -> u64 {
        self.sends.len() as u64
    }
}
