//! The directory sync's schedule, on each backend: one node per interval runs it (the claim
//! is one conditional UPDATE), an interval of 0 never runs it, and a directory that does not
//! answer stops the sync without disabling anyone.

mod support;

use gatehouse_core::directory;
use gatehouse_core::users::{self, NewUser};
use support::{backends, open_with};

/// A directory nothing listens on (port 1 on loopback): every question to it fails.
fn unreachable(c: &mut gatehouse_core::Config, interval: u64) {
    c.ldap.urls = vec!["ldap://127.0.0.1:1".into()];
    c.ldap.starttls = false;
    c.ldap.bind_dn = "cn=gatehouse,dc=example,dc=test".into();
    c.ldap.bind_password = "secret".into();
    c.ldap.user_base = "dc=example,dc=test".into();
    c.ldap.timeout_secs = 1;
    c.ldap.sync_interval_secs = interval;
}

#[tokio::test]
async fn one_node_per_interval_and_never_when_off() {
    for backend in backends() {
        let gw = open_with(backend, |c| unreachable(c, 600)).await;
        // Nobody to ask: the round runs, checks no one, and is claimed for the interval.
        let first = directory::sync_if_due(&gw).await.expect("first round");
        assert_eq!(first.map(|r| r.checked), Some(0), "{backend:?}");
        // A second node (same database) within the interval finds it claimed.
        let node_b = support::open_on(&gw, |c| unreachable(c, 600)).await;
        assert!(directory::sync_if_due(&node_b).await.expect("second round").is_none(), "{backend:?}");
        assert!(directory::sync_if_due(&gw).await.expect("third round").is_none(), "{backend:?}");

        let off = open_with(backend, |c| unreachable(c, 0)).await;
        assert!(directory::sync_if_due(&off).await.expect("interval 0").is_none());
    }
}

#[tokio::test]
async fn an_outage_disables_nobody() {
    for backend in backends() {
        let gw = open_with(backend, |c| unreachable(c, 600)).await;
        let u = users::create(&gw.db, NewUser { name: "dana", ..NewUser::default() }).await.expect("user");
        sqlx::query("UPDATE users SET store = 'ldap' WHERE id = $1").bind(u.id).execute(gw.db.pool()).await.unwrap();
        let e = directory::sync_if_due(&gw).await.expect_err("the directory does not answer");
        assert!(e.to_string().contains("no directory server answered"), "{e}");
        let after = users::get(&gw.db, "dana").await.expect("dana");
        assert!(!after.directory_disabled && !after.disabled(), "{backend:?}: an outage disabled a user");
        let health = gatehouse_core::health::last_seen_of(&gw, directory::HEALTH_KEY).await.expect("health");
        assert!(health.last_error.is_some_and(|e| e.contains("127.0.0.1:1")), "{backend:?}");
    }
}
