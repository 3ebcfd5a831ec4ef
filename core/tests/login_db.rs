//! The shared login decisions against a real database, on SQLite and PostgreSQL: lockout
//! per user and per source address (and lifting it), the 2FA requirement resolved from
//! global and group policy, exemptions and enrollments, and the audit rows every login
//! step writes.

mod support;

use gatehouse_core::audit::{self, Filter};
use gatehouse_core::factors::{Method, MethodSet, keyword};
use gatehouse_core::lockout::{self, Lock};
use gatehouse_core::login::{self, Primary};
use gatehouse_core::policy::{self, Requirement};
use gatehouse_core::users::{self, NewUser, User};
use gatehouse_core::{Error, Gateway, groups};
use support::{backends, login, open, open_with};

const PASSWORD: &str = "correct horse";

async fn user(gw: &Gateway, name: &str) -> User {
    users::create(&gw.db, NewUser { name, password: Some(PASSWORD), email: None, is_admin: false }).await.unwrap()
}

async fn password(gw: &Gateway, name: &str, source: &str, pw: &str) -> Primary {
    login::password(gw, &login(name, source), pw).await.unwrap()
}

async fn events(gw: &Gateway, user: &str) -> Vec<audit::AuditRecord> {
    audit::list(&gw.db, &Filter { user: Some(user.into()), limit: 1000, ..Default::default() }).await.unwrap()
}

#[tokio::test]
async fn lockout_per_user_then_cleared() {
    for backend in backends() {
        let t = open_with(backend, |c| {
            c.lockout.user_threshold = 3;
            c.lockout.source_threshold = 100;
        })
        .await;
        user(&t, "alice").await;
        for i in 0..2 {
            assert!(matches!(password(&t, "alice", "192.0.2.1", "wrong").await, Primary::Rejected), "{backend:?} #{i}");
        }
        assert!(
            lockout::current(&t.db, "alice", "192.0.2.1").await.unwrap().is_none(),
            "{backend:?}: locked too early"
        );
        // The third failure (from another address: failures count per user) locks.
        assert!(matches!(password(&t, "alice", "192.0.2.2", "wrong").await, Primary::Rejected));
        let lock = lockout::current(&t.db, "alice", "198.51.100.9").await.unwrap();
        assert!(matches!(lock, Some(Lock::User { .. })), "{backend:?}: {lock:?}");

        // Locked: even the right password is refused, from any address.
        assert!(
            matches!(password(&t, "alice", "198.51.100.9", PASSWORD).await, Primary::Locked(Lock::User { .. })),
            "{backend:?}"
        );
        // Other users are not affected.
        user(&t, "bob").await;
        assert!(matches!(password(&t, "bob", "192.0.2.1", PASSWORD).await, Primary::Accepted(_)), "{backend:?}");

        lockout::clear_user(&t.db, "alice").await.unwrap();
        assert!(lockout::current(&t.db, "alice", "192.0.2.1").await.unwrap().is_none());
        assert!(matches!(password(&t, "alice", "192.0.2.1", PASSWORD).await, Primary::Accepted(_)), "{backend:?}");

        // Unknown names are counted and locked the same way (a lock reveals nothing).
        for _ in 0..3 {
            assert!(matches!(password(&t, "ghost", "192.0.2.3", PASSWORD).await, Primary::Rejected));
        }
        assert!(matches!(password(&t, "ghost", "192.0.2.3", PASSWORD).await, Primary::Locked(_)), "{backend:?}");
    }
}

#[tokio::test]
async fn lockout_per_source_address() {
    for backend in backends() {
        let t = open_with(backend, |c| {
            c.lockout.user_threshold = 100;
            c.lockout.source_threshold = 4;
        })
        .await;
        for name in ["u1", "u2", "u3", "carol"] {
            user(&t, name).await;
        }
        for name in ["u1", "u2", "u3", "u1"] {
            assert!(matches!(password(&t, name, "203.0.113.5", "wrong").await, Primary::Rejected));
        }
        // Any user from that address is refused, even with the right password...
        let r = password(&t, "carol", "203.0.113.5", PASSWORD).await;
        assert!(matches!(r, Primary::Locked(Lock::Source { .. })), "{backend:?}: {r:?}");
        // ...while the same user from elsewhere gets in.
        assert!(matches!(password(&t, "carol", "203.0.113.6", PASSWORD).await, Primary::Accepted(_)), "{backend:?}");
        // Clearing a user's failures does not lift a source block.
        lockout::clear_user(&t.db, "u1").await.unwrap();
        assert!(matches!(lockout::current(&t.db, "u1", "203.0.113.5").await.unwrap(), Some(Lock::Source { .. })));
    }
}

#[tokio::test]
async fn second_factor_failures_count_towards_the_lock() {
    for backend in backends() {
        let t = open_with(backend, |c| c.lockout.user_threshold = 3).await;
        let alice = user(&t, "alice").await;
        keyword::set(&t, alice.id, "open sesame").await.unwrap();
        let ctx = login("alice", "192.0.2.1");
        let mut challenge =
            login::challenge(&t, &ctx, &alice, Method::Keyword).await.unwrap().expect("keyword implemented");
        assert!(challenge.prompt.contains("keyword"), "prompt: {}", challenge.prompt);
        for _ in 0..3 {
            let v = login::answer(&t, &ctx, &alice, &mut challenge, "wrong").await.unwrap();
            assert_eq!(v, gatehouse_core::factors::Verdict::Rejected);
        }
        // Locked now: even the right keyword is refused.
        let v = login::answer(&t, &ctx, &alice, &mut challenge, "open sesame").await.unwrap();
        assert_ne!(v, gatehouse_core::factors::Verdict::Accepted, "{backend:?}: accepted while locked");
        assert!(matches!(password(&t, "alice", "192.0.2.1", PASSWORD).await, Primary::Locked(_)));
    }
}

#[tokio::test]
async fn requirement_resolution() {
    for backend in backends() {
        let t = open(backend).await;
        let db = &t.db;
        let req = |name: &'static str| {
            let gw = t.gw.clone();
            async move {
                let u = users::get(&gw.db, name).await.unwrap();
                policy::requirement(&gw.db, &u).await.unwrap()
            }
        };
        user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        groups::create(db, "ops").await.unwrap();
        groups::add_member(db, "ops", "alice").await.unwrap();

        assert_eq!(req("alice").await, Requirement::NotRequired, "{backend:?}");

        // Forced for a group: members without a factor must enroll; others are free.
        groups::set_force_2fa(db, "ops", true).await.unwrap();
        assert!(matches!(req("alice").await, Requirement::MustEnroll { .. }), "{backend:?}");
        assert_eq!(req("bob").await, Requirement::NotRequired);

        // Forced globally: everyone.
        groups::set_force_2fa(db, "ops", false).await.unwrap();
        policy::set_force_2fa(db, true).await.unwrap();
        assert!(policy::load(db).await.unwrap().force_2fa);
        assert!(matches!(req("bob").await, Requirement::MustEnroll { .. }), "{backend:?}");

        // Exempt wins over every force flag, and is reversible.
        users::set_exempt(db, "bob", true).await.unwrap();
        assert_eq!(req("bob").await, Requirement::Exempt, "{backend:?}");
        users::set_exempt(db, "bob", false).await.unwrap();

        // Enrolled: asked for it, whatever the force flags say.
        keyword::set(&t, bob.id, "open sesame").await.unwrap();
        assert_eq!(req("bob").await, Requirement::Required { methods: vec![Method::Keyword] }, "{backend:?}");
        policy::set_force_2fa(db, false).await.unwrap();
        assert_eq!(req("bob").await, Requirement::Required { methods: vec![Method::Keyword] }, "{backend:?}");

        // The last-used method comes first.
        let seed = gatehouse_core::factors::totp::NewSeed::generate();
        gatehouse_core::factors::totp::enroll(&t, bob.id, &seed, None).await.unwrap();
        users::set_last_method(db, bob.id, Method::Keyword).await.unwrap();
        assert_eq!(req("bob").await, Requirement::Required { methods: vec![Method::Keyword, Method::Totp] });
        users::set_last_method(db, bob.id, Method::Totp).await.unwrap();
        assert_eq!(req("bob").await, Requirement::Required { methods: vec![Method::Totp, Method::Keyword] });

        // A group narrowing the allowed methods hides the others from its members.
        groups::add_member(db, "ops", "bob").await.unwrap();
        groups::set_allowed_methods(db, "ops", Some(&[Method::Totp])).await.unwrap();
        assert_eq!(req("bob").await, Requirement::Required { methods: vec![Method::Totp] }, "{backend:?}");
        policy::set_allowed_methods(db, &MethodSet::parse_list("keyword").unwrap()).await.unwrap();
        // Nothing allowed is enrolled, and bob used his first-login window when he enrolled:
        // refused until an administrator resets his factors, which opens a new window.
        assert_eq!(req("bob").await, Requirement::EnrollmentClosed, "{backend:?}: nothing allowed is enrolled");
        gatehouse_core::factors::reset(db, bob.id).await.unwrap();
        assert_eq!(req("bob").await, Requirement::NotRequired, "{backend:?}: nothing forces bob now");
        policy::set_force_2fa(db, true).await.unwrap();
        assert!(matches!(req("bob").await, Requirement::MustEnroll { .. }), "{backend:?}: forced, after a reset");
    }
}

#[tokio::test]
async fn login_steps_write_audit_rows() {
    for backend in backends() {
        let t = open_with(backend, |c| c.lockout.user_threshold = 2).await;
        let alice = user(&t, "alice").await;
        keyword::set(&t, alice.id, "open sesame").await.unwrap();
        let ctx = login("alice", "192.0.2.7");

        assert!(matches!(password(&t, "alice", "192.0.2.7", PASSWORD).await, Primary::Accepted(_)));
        let mut challenge = login::challenge(&t, &ctx, &alice, Method::Keyword).await.unwrap().unwrap();
        let v = login::answer(&t, &ctx, &alice, &mut challenge, "open sesame").await.unwrap();
        assert_eq!(v, gatehouse_core::factors::Verdict::Accepted);
        login::completed(&t, &ctx, &alice, "password+keyword").await.unwrap();
        assert_eq!(users::get(&t.db, "alice").await.unwrap().last_method, Some(Method::Keyword), "{backend:?}");

        let ev = events(&t, "alice").await;
        let has = |name: &str, outcome: &str| ev.iter().any(|e| e.event == name && e.outcome == outcome);
        assert!(has("login.password", "success"), "{backend:?}: {ev:#?}");
        assert!(has("login.factor", "success"), "{backend:?}: {ev:#?}");
        assert!(has("login.success", "success"), "{backend:?}: {ev:#?}");
        assert!(ev.iter().all(|e| e.source.as_deref() == Some("192.0.2.7") && e.node == "test-node"), "{ev:#?}");

        // Failures, then the lock they cause, then a refusal while locked.
        password(&t, "alice", "192.0.2.7", "Wr0ng-Secret").await;
        password(&t, "alice", "192.0.2.7", "Wr0ng-Secret").await;
        password(&t, "alice", "192.0.2.7", PASSWORD).await;
        let ev = events(&t, "alice").await;
        let failures = ev.iter().filter(|e| e.event == "login.password" && e.outcome == "failure").count();
        assert_eq!(failures, 3, "{backend:?}: two wrong passwords and one refusal: {ev:#?}");
        assert!(ev.iter().any(|e| e.event == "login.lockout"), "{backend:?}: {ev:#?}");
        // No secret reaches the log.
        for secret in [PASSWORD, "open sesame", "Wr0ng-Secret"] {
            assert!(ev.iter().all(|e| !e.detail.contains(secret)), "{backend:?}: a secret in the audit log: {ev:#?}");
        }

        // The event filter matches a prefix.
        let logins = audit::list(&t.db, &Filter { event: Some("login".into()), limit: 1000, ..Default::default() })
            .await
            .unwrap();
        assert_eq!(logins.len(), ev.len(), "{backend:?}");
    }
}

/// 40 wrong keyword answers at once, on each engine (the web factor step and the SSH
/// gate both call `login::answer`): no more than the threshold are checked, and the
/// account ends up locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_answers_never_exceed_the_threshold() {
    for backend in backends() {
        let t = open_with(backend, |c| {
            c.lockout.user_threshold = 5;
            c.lockout.source_threshold = 10_000;
        })
        .await;
        let alice = user(&t, "alice").await;
        keyword::set(&t, alice.id, "open sesame").await.unwrap();
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let (gw, alice) = (t.gw.clone(), alice.clone());
                tokio::spawn(async move {
                    let ctx = login("alice", &format!("192.0.2.{i}"));
                    let mut ch = login::challenge(&gw, &ctx, &alice, Method::Keyword).await.unwrap().unwrap();
                    login::answer(&gw, &ctx, &alice, &mut ch, "wrong guess").await.unwrap()
                })
            })
            .collect();
        for task in tasks {
            assert_ne!(task.await.unwrap(), gatehouse_core::factors::Verdict::Accepted);
        }
        let checked = events(&t, "alice").await.iter().filter(|e| e.detail.contains("wrong answer")).count();
        assert!((1..=5).contains(&checked), "{backend:?}: {checked} answers checked with a threshold of 5");
        assert!(
            matches!(lockout::current(&t.db, "alice", "203.0.113.1").await.unwrap(), Some(Lock::User { .. })),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_login_whose_account_was_locked_removed_or_replaced_meanwhile_does_not_complete() {
    for backend in backends() {
        let t = open(backend).await;
        let alice = user(&t, "alice").await;
        let ctx = login("alice", "192.0.2.7");
        // Every step passed; then an administrator locks her before the login completes.
        users::set_locked(&t.db, "alice", true).await.unwrap();
        let locked = login::completed(&t, &ctx, &alice, "password and totp").await;
        assert!(matches!(locked, Err(Error::Refused(_))), "{backend:?}: {locked:?}");
        users::set_locked(&t.db, "alice", false).await.unwrap();
        login::completed(&t, &ctx, &alice, "password and totp").await.unwrap();

        // Removed, then another account made under her name: neither completes her login.
        users::delete(&t.db, "alice").await.unwrap();
        let removed = login::completed(&t, &ctx, &alice, "password and totp").await;
        assert!(matches!(removed, Err(Error::Refused(_))), "{backend:?}: {removed:?}");
        let _other = user(&t, "alice").await;
        let replaced = login::completed(&t, &ctx, &alice, "password and totp").await;
        assert!(matches!(replaced, Err(Error::Refused(_))), "{backend:?}: {replaced:?}");
        let ev = events(&t, "alice").await;
        let refused = ev.iter().filter(|e| e.outcome == "failure" && e.detail.contains("refused at the end")).count();
        assert_eq!(refused, 3, "{backend:?}: {ev:#?}");
        let done = ev.iter().filter(|e| e.event == "login.success").count();
        assert_eq!(done, 1, "{backend:?}: {ev:#?}");
    }
}
