//! [`Cache`]: the global policy and the users' groups of one access revision, kept per
//! node for [`super::resolve_at`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Policy;
use crate::groups::Group;

/// The global policy and each user's groups as of one access revision, so that a busy
/// page does not read them again on every request. Every change to either moves the
/// revision ([`super::set_setting`], the group changes in `groups`), and every request reads the
/// revision from the database with its session, so a change made on any node applies to
/// the next request on every node. The user's own row and factors are never cached.
#[derive(Default)]
pub struct Cache {
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    revision: i64,
    policy: Option<Arc<Policy>>,
    groups: HashMap<i64, Arc<Vec<Group>>>,
}

/// Users whose groups are kept at most; past it the map starts again (a full map costs
/// only one more query per user).
const CACHED_USERS: usize = 10_000;

impl Cache {
    pub(super) fn get(&self, user_id: i64, revision: i64) -> Option<(Arc<Policy>, Arc<Vec<Group>>)> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.revision != revision {
            return None;
        }
        Some((inner.policy.clone()?, inner.groups.get(&user_id)?.clone()))
    }

    /// Keeps what was read after `revision` was: newer than or as new as that revision,
    /// never older. A request that read an older revision than the cache holds keeps
    /// nothing.
    pub(super) fn put(&self, user_id: i64, revision: i64, policy: &Arc<Policy>, groups: &Arc<Vec<Group>>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if revision < inner.revision {
            return;
        }
        if revision > inner.revision || inner.groups.len() >= CACHED_USERS {
            inner.groups.clear();
        }
        inner.revision = revision;
        inner.policy = Some(policy.clone());
        inner.groups.insert(user_id, groups.clone());
    }
}
