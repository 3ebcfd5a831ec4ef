//! The lockout's row locks under concurrency, on SQLite and PostgreSQL: transactions take
//! the guard rows before the failure rows, so logins settling in parallel wait for each
//! other and never deadlock (PostgreSQL would abort one of them, and a login whose
//! bookkeeping fails is refused).

mod support;

use std::time::Duration;

use gatehouse_core::lockout::{self, Admission};
use support::{Backend, backends, open_with};

/// A completed login clears the user's failures while a parallel wrong answer settles its
/// own row. Here a transaction stands in for the wrong answer half-way: it holds the
/// user's guard row (as `Attempt::failed` does first) and then marks the pending row
/// failed. `clear_user` must queue behind the guard rather than lock the failure rows
/// first and then wait for the guard, which deadlocked.
#[tokio::test]
async fn a_completed_login_and_a_failing_answer_settling_at_once_do_not_deadlock() {
    for backend in backends() {
        if backend != Backend::Postgres {
            continue; // SQLite has one writer at a time: no row locks to order.
        }
        let t = open_with(backend, |_| {}).await;
        let Admission::Admitted(attempt) =
            lockout::admit(&t.db, &t.config.lockout, "alice", "192.0.2.1").await.unwrap()
        else {
            panic!("first guess not admitted")
        };
        let pending: i64 =
            sqlx::query_scalar("SELECT id FROM login_failures WHERE pending = 1").fetch_one(t.db.pool()).await.unwrap();
        let mut failing = t.db.begin().await.unwrap();
        sqlx::query("UPDATE lockouts SET locked_until = locked_until WHERE subject = 'user:alice'")
            .execute(&mut *failing)
            .await
            .unwrap();

        let db = t.db.clone();
        let clearing = tokio::spawn(async move { lockout::clear_user(&db, "alice").await });
        // Let the clearing transaction reach the row it waits for.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let settled = sqlx::query("UPDATE login_failures SET pending = 0 WHERE id = $1")
            .bind(pending)
            .execute(&mut *failing)
            .await;
        let committed = match settled {
            Ok(_) => failing.commit().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let cleared = tokio::time::timeout(Duration::from_secs(10), clearing).await.expect("clear_user hangs").unwrap();
        assert!(committed.is_ok(), "the settling answer was aborted: {committed:?}");
        assert!(cleared.is_ok(), "clearing the failures was aborted: {cleared:?}");
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM login_failures").fetch_one(t.db.pool()).await.unwrap();
        assert_eq!(left, 0, "the completed login's clearing came last and removed every failure");
        drop(attempt);
    }
}

/// Forty users fail at once, from forty addresses, with old failure rows lying around:
/// every settlement succeeds, each user is locked by its own fresh failures only, and the
/// old rows stay until the housekeeping's sweep removes exactly them (a login's transaction
/// no longer deletes other subjects' rows, whose locks it would take out of order).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_users_failing_at_once_all_settle() {
    for backend in backends() {
        let t = open_with(backend, |c| {
            c.lockout.user_threshold = 3;
            c.lockout.source_threshold = 3;
        })
        .await;
        let old = gatehouse_core::time::now() - t.config.lockout.window_secs as i64 - 60;
        for i in 0..40 {
            for _ in 0..2 {
                sqlx::query("INSERT INTO login_failures (user_name, source, at) VALUES ($1, $2, $3)")
                    .bind(format!("u{i}"))
                    .bind(format!("198.51.100.{i}"))
                    .bind(old)
                    .execute(t.db.pool())
                    .await
                    .unwrap();
            }
        }
        for round in 0..3 {
            let tasks: Vec<_> = (0..40)
                .map(|i| {
                    let db = t.db.clone();
                    let cfg = t.config.lockout.clone();
                    tokio::spawn(async move {
                        lockout::record_failure(&db, &cfg, &format!("u{i}"), &format!("198.51.100.{i}")).await
                    })
                })
                .collect();
            for (i, task) in tasks.into_iter().enumerate() {
                let r = task.await.unwrap();
                assert!(r.is_ok(), "{backend:?} round {round}, u{i}: {:?}", r.err());
            }
        }
        // Each user reached the threshold with its own three fresh failures.
        for i in 0..40 {
            let lock = lockout::current(&t.db, &format!("u{i}"), "192.0.2.200").await.unwrap();
            assert!(lock.is_some(), "{backend:?}: u{i} not locked");
        }
        // The housekeeping removes the old rows, and only those.
        let removed = lockout::sweep(&t.db, &t.config.lockout).await.unwrap();
        assert_eq!(removed, 80, "{backend:?}");
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM login_failures").fetch_one(t.db.pool()).await.unwrap();
        assert_eq!(left, 120, "{backend:?}");
    }
}
