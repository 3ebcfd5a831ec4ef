//! Second factors against a real database, on SQLite and PostgreSQL: a TOTP code is
//! accepted once (also when two logins race with it), backup codes are single-use and
//! regenerating voids the old set, the access keyword, a browser approval taken once by 40
//! racing polls. TOTP codes come from `oathtool`.

mod support;

use gatehouse_core::factors::{self, Challenge, Method, Verdict, backup_codes, keyword, totp};
use gatehouse_core::users::{self, NewUser, User};
use gatehouse_core::{Error, Gateway};
use support::{backends, now, open, settle_in_step, totp_at};

async fn user(gw: &Gateway, name: &str) -> User {
    users::create(&gw.db, NewUser { name, password: Some("correct horse"), email: None, is_admin: false })
        .await
        .unwrap()
}

fn challenge(method: Method) -> Challenge {
    Challenge {
        method,
        prompt: String::new(),
        echo: false,
        instructions: String::new(),
        pending: None,
        can_wait: false,
        state: None,
        webauthn: None,
    }
}

async fn verify(gw: &Gateway, user: &User, method: Method, answer: &str) -> Verdict {
    let f = factors::factor(method).expect("method implemented");
    f.verify(gw, user, &mut challenge(method), answer).await.unwrap()
}

/// Enrolls a fresh TOTP seed and returns its base32 text.
async fn enroll_totp(gw: &Gateway, user: &User) -> String {
    let seed = totp::NewSeed::generate();
    totp::enroll(gw, user.id, &seed, None).await.unwrap();
    seed.base32()
}

#[tokio::test]
async fn totp_code_is_accepted_once() {
    for backend in backends() {
        let t = open(backend).await;
        let alice = user(&t, "alice").await;
        let secret = enroll_totp(&t, &alice).await;
        assert_eq!(factors::enrolled(&t.db, alice.id).await.unwrap(), vec![Method::Totp]);

        let raw: String = sqlx::query_scalar("SELECT secret FROM factors WHERE user_id = $1 AND method = 'totp'")
            .bind(alice.id)
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert!(!raw.contains(&secret), "{backend:?}: TOTP seed stored in clear");

        settle_in_step(5).await;
        let step = now() / 30;
        let previous = totp_at(&secret, (step - 1) * 30);
        let current = totp_at(&secret, step * 30);
        let next = totp_at(&secret, (step + 1) * 30);
        let too_old = totp_at(&secret, (step - 3) * 30);

        assert_eq!(
            verify(&t, &alice, Method::Totp, &too_old).await,
            Verdict::Rejected,
            "{backend:?}: outside the window"
        );
        assert_eq!(verify(&t, &alice, Method::Totp, "12345").await, Verdict::Rejected);
        assert_eq!(verify(&t, &alice, Method::Totp, &current).await, Verdict::Accepted, "{backend:?}");
        assert_eq!(verify(&t, &alice, Method::Totp, &current).await, Verdict::Replayed, "{backend:?}: same code again");
        assert_eq!(
            verify(&t, &alice, Method::Totp, &previous).await,
            Verdict::Replayed,
            "{backend:?}: an older step after a newer one was accepted"
        );
        assert_eq!(verify(&t, &alice, Method::Totp, &next).await, Verdict::Accepted, "{backend:?}: the next step");
        assert_eq!(verify(&t, &alice, Method::Totp, &next).await, Verdict::Replayed, "{backend:?}");

        // Another user with a code of their own is unaffected by alice's steps.
        let bob = user(&t, "bob").await;
        let bob_secret = enroll_totp(&t, &bob).await;
        assert_eq!(verify(&t, &bob, Method::Totp, &totp_at(&bob_secret, now())).await, Verdict::Accepted);
        // A user without a TOTP factor is rejected, not an error.
        let carol = user(&t, "carol").await;
        assert_eq!(verify(&t, &carol, Method::Totp, &current).await, Verdict::Rejected);
    }
}

#[tokio::test]
async fn enrollment_confirmation_code_cannot_log_in() {
    for backend in backends() {
        let t = open(backend).await;
        let alice = user(&t, "alice").await;
        settle_in_step(5).await;
        let seed = totp::NewSeed::generate();
        let code = totp_at(&seed.base32(), now());
        let step = seed.check(&code).expect("oathtool and the seed agree on the current code");
        totp::enroll(&t, alice.id, &seed, Some(step)).await.unwrap();
        assert_eq!(verify(&t, &alice, Method::Totp, &code).await, Verdict::Replayed, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_use_of_one_totp_code_has_one_winner() {
    for backend in backends() {
        let t = open(backend).await;
        let alice = user(&t, "alice").await;
        let secret = enroll_totp(&t, &alice).await;
        settle_in_step(8).await;
        let step = now() / 30;
        // Three races (previous, current and next step), each with several logins at once.
        for s in [step - 1, step, step + 1] {
            let code = totp_at(&secret, s * 30);
            let mut tasks = Vec::new();
            for _ in 0..6 {
                let (gw, u, code) = (t.gw.clone(), alice.clone(), code.clone());
                tasks.push(tokio::spawn(async move { verify(&gw, &u, Method::Totp, &code).await }));
            }
            let mut verdicts = Vec::new();
            for task in tasks {
                verdicts.push(task.await.unwrap());
            }
            let accepted = verdicts.iter().filter(|v| **v == Verdict::Accepted).count();
            assert_eq!(accepted, 1, "{backend:?} step {s}: {verdicts:?}");
            assert!(
                verdicts.iter().all(|v| matches!(v, Verdict::Accepted | Verdict::Replayed)),
                "{backend:?}: {verdicts:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_codes_are_single_use_and_regenerating_voids_them() {
    for backend in backends() {
        let t = open(backend).await;
        let alice = user(&t, "alice").await;
        let codes = backup_codes::regenerate(&t.db, alice.id, 5).await.unwrap();
        assert_eq!(codes.len(), 5);
        assert!(codes.iter().all(|c| c.len() == 9 && c.as_bytes()[4] == b'-'), "{codes:?}");
        assert_eq!(factors::enrolled(&t.db, alice.id).await.unwrap(), vec![Method::BackupCode]);
        let stored: Vec<String> = sqlx::query_scalar("SELECT code_hash FROM backup_codes WHERE user_id = $1")
            .bind(alice.id)
            .fetch_all(t.db.pool())
            .await
            .unwrap();
        assert!(stored.iter().all(|h| codes.iter().all(|c| !h.contains(&c.replace('-', "")))), "codes stored in clear");

        assert_eq!(verify(&t, &alice, Method::BackupCode, "zzzz-zzzz").await, Verdict::Rejected);
        assert_eq!(verify(&t, &alice, Method::BackupCode, &codes[0]).await, Verdict::Accepted, "{backend:?}");
        assert_ne!(verify(&t, &alice, Method::BackupCode, &codes[0]).await, Verdict::Accepted, "{backend:?}: reused");
        // Typed without the dash and with spaces: the same code.
        let spaced = format!(" {} {} ", &codes[1][..4], &codes[1][5..]);
        assert_eq!(verify(&t, &alice, Method::BackupCode, &spaced).await, Verdict::Accepted, "{backend:?}");
        assert_eq!(backup_codes::remaining(&t.db, alice.id).await.unwrap(), 3);

        // Two logins racing with one code: one wins.
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (gw, u, code) = (t.gw.clone(), alice.clone(), codes[2].clone());
            tasks.push(tokio::spawn(async move { verify(&gw, &u, Method::BackupCode, &code).await }));
        }
        let mut accepted = 0;
        for task in tasks {
            if task.await.unwrap() == Verdict::Accepted {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 1, "{backend:?}: one backup code, several concurrent logins");

        let fresh = backup_codes::regenerate(&t.db, alice.id, 4).await.unwrap();
        assert_eq!(backup_codes::remaining(&t.db, alice.id).await.unwrap(), 4);
        assert_eq!(
            verify(&t, &alice, Method::BackupCode, &codes[3]).await,
            Verdict::Rejected,
            "{backend:?}: old set void"
        );
        assert_eq!(verify(&t, &alice, Method::BackupCode, &fresh[0]).await, Verdict::Accepted, "{backend:?}");

        assert!(factors::remove(&t.db, alice.id, Method::BackupCode).await.unwrap());
        assert!(factors::enrolled(&t.db, alice.id).await.unwrap().is_empty());
        assert_eq!(verify(&t, &alice, Method::BackupCode, &fresh[1]).await, Verdict::Rejected);
    }
}

#[tokio::test]
async fn access_keyword() {
    for backend in backends() {
        let t = open(backend).await;
        let alice = user(&t, "alice").await;
        let short = keyword::set(&t, alice.id, "abc").await;
        assert!(matches!(short, Err(Error::Invalid { .. })), "{short:?}");
        assert!(factors::enrolled(&t.db, alice.id).await.unwrap().is_empty(), "{backend:?}: rejected keyword written");

        keyword::set(&t, alice.id, "open sesame").await.unwrap();
        assert_eq!(factors::enrolled(&t.db, alice.id).await.unwrap(), vec![Method::Keyword]);
        let raw: String = sqlx::query_scalar("SELECT secret FROM factors WHERE user_id = $1 AND method = 'keyword'")
            .bind(alice.id)
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert!(!raw.contains("open sesame"), "{backend:?}: keyword stored in clear");
        assert_eq!(verify(&t, &alice, Method::Keyword, "open sesame").await, Verdict::Accepted, "{backend:?}");
        assert_eq!(
            verify(&t, &alice, Method::Keyword, "open sesame").await,
            Verdict::Accepted,
            "a keyword is reusable"
        );
        assert_eq!(verify(&t, &alice, Method::Keyword, "open says me").await, Verdict::Rejected);

        keyword::set(&t, alice.id, "new phrase").await.unwrap();
        assert_eq!(verify(&t, &alice, Method::Keyword, "open sesame").await, Verdict::Rejected, "old keyword replaced");
        assert_eq!(verify(&t, &alice, Method::Keyword, "new phrase").await, Verdict::Accepted);
        let bob = user(&t, "bob").await;
        assert_eq!(verify(&t, &bob, Method::Keyword, "new phrase").await, Verdict::Rejected, "another user's keyword");
    }
}

#[tokio::test]
async fn forty_polls_of_one_approved_browser_approval_take_it_once() {
    use gatehouse_core::factors::webauthn::approval;
    use gatehouse_core::factors::{Frontend, LoginContext};
    for backend in backends() {
        let t = open(backend).await;
        let alice = user(&t, "alice").await;
        let login = LoginContext {
            user_name: "alice".into(),
            source: "127.0.0.1".into(),
            frontend: Frontend::Ssh,
            attempt: "attempt-1".into(),
        };
        let opened = approval::open(&t, &alice, &login).await.unwrap();
        // Approved in the browser; now 40 waits on it (a login polling on every node, a
        // client replaying its Enter) race to take it.
        sqlx::query(
            "UPDATE webauthn_approvals SET approved_at = expires_at - 1, approved_from = '127.0.0.1' WHERE id = $1",
        )
        .bind(opened.id)
        .execute(t.db.pool())
        .await
        .unwrap();
        let polls: Vec<_> = (0..40)
            .map(|_| {
                let (t, alice, id) = (t.clone(), alice.clone(), opened.id);
                tokio::spawn(async move {
                    let mut c = challenge(Method::Webauthn);
                    c.pending = Some(id.to_string());
                    factors::factor(Method::Webauthn).expect("webauthn").poll(&t, &alice, &mut c).await.unwrap()
                })
            })
            .collect();
        let mut verdicts = Vec::new();
        for p in polls {
            verdicts.push(p.await.unwrap());
        }
        let accepted = verdicts.iter().filter(|v| **v == Verdict::Accepted).count();
        assert_eq!(accepted, 1, "{backend:?}: one approval let {accepted} logins through: {verdicts:?}");
        assert!(
            verdicts.iter().all(|v| matches!(v, Verdict::Accepted | Verdict::Replayed)),
            "{backend:?}: {verdicts:?}"
        );
        // Bob's poll of alice's approval finds nothing.
        let bob = user(&t, "bob").await;
        let mut c = challenge(Method::Webauthn);
        c.pending = Some(opened.id.to_string());
        let v = factors::factor(Method::Webauthn).unwrap().poll(&t, &bob, &mut c).await.unwrap();
        assert_eq!(v, Verdict::Rejected, "{backend:?}");
    }
}
