//! Recording retention against a real database, on SQLite and PostgreSQL: what is too
//! old goes, then the oldest while the total is over the limit; running recordings and
//! other nodes' files are never touched; every deletion is audited; a row whose file is
//! already gone is removed too.

mod support;

use gatehouse_core::audit::{self, Filter};
use gatehouse_core::recordings::{self, NewRecording, retention};
use support::{backends, open_with};

const DAY: i64 = 86_400;

/// Indexes a finished (or running) recording of `size` bytes started `age_days` ago, with
/// its file.
async fn recording(t: &support::TestGw, node: &str, name: &str, age_days: i64, size: usize, running: bool) -> i64 {
    let dir = recordings::dir(&t.config);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), vec![b'x'; size]).unwrap();
    let started_at = gatehouse_core::time::now() - age_days * DAY;
    let new =
        NewRecording { user_name: "alice", target_name: "web1", node, path: name, width: 80, height: 24, started_at };
    let id = recordings::start(&t.db, &new).await.unwrap();
    if !running {
        recordings::finish(&t.db, id, name, size as u64).await.unwrap();
    }
    id
}

#[tokio::test]
async fn retention_by_age_then_by_total_size() {
    for backend in backends() {
        let t = open_with(backend, |c| {
            c.recordings.max_age_days = 30;
            // 2,500 bytes in all.
            c.recordings.max_total_gb = 2.5e-6;
        })
        .await;
        let node = t.config.node_name();
        let ancient = recording(&t, &node, "ancient.cast", 40, 100, false).await;
        let old = recording(&t, &node, "old.cast", 10, 1000, false).await;
        let middle = recording(&t, &node, "middle.cast", 5, 1000, false).await;
        let new = recording(&t, &node, "new.cast", 1, 1000, false).await;
        let running = recording(&t, &node, "running.cast", 50, 5000, true).await;
        let elsewhere = recording(&t, "other-node", "elsewhere.cast", 60, 100, false).await;
        let gone = recording(&t, &node, "gone.cast", 45, 10, false).await;
        std::fs::remove_file(recordings::dir(&t.config).join("gone.cast")).unwrap();

        let deleted = retention::prune(&t).await.unwrap();
        let ids: Vec<i64> = deleted.iter().map(|d| d.recording.id).collect();
        // Started 45 and 40 days ago (age), then the oldest of the rest until
        // 3,000 bytes fit under 2,500.
        assert_eq!(ids, vec![gone, ancient, old], "{backend:?}: {deleted:?}");
        assert!(deleted[1].reason.contains("older than 30 days"), "{:?}", deleted[1]);
        assert!(deleted[2].reason.contains("bytes in all"), "{:?}", deleted[2]);

        let dir = recordings::dir(&t.config);
        for (name, kept) in [
            ("ancient.cast", false),
            ("old.cast", false),
            ("middle.cast", true),
            ("new.cast", true),
            ("running.cast", true),
            ("elsewhere.cast", true),
        ] {
            assert_eq!(dir.join(name).exists(), kept, "{backend:?}: {name}");
        }
        let left: Vec<i64> = recordings::list(&t.db, 100).await.unwrap().into_iter().map(|r| r.id).collect();
        for id in [middle, new, running, elsewhere] {
            assert!(left.contains(&id), "{backend:?}: {id} kept");
        }
        for id in [gone, ancient, old] {
            assert!(!left.contains(&id), "{backend:?}: {id} deleted");
        }
        let events =
            audit::list(&t.db, &Filter { event: Some("recording.deleted".into()), limit: 100, ..Default::default() })
                .await
                .unwrap();
        assert_eq!(events.len(), 3, "{backend:?}: one audit event per deletion");
        assert!(events.iter().all(|e| e.user.as_deref() == Some("alice")));

        // Nothing more to do the second time.
        assert!(retention::prune(&t).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn no_limits_keep_everything_and_orphans_are_closed_at_start() {
    for backend in backends() {
        let t = open_with(backend, |_| {}).await;
        let node = t.config.node_name();
        recording(&t, &node, "kept.cast", 4000, 10, false).await;
        let cut_off = recording(&t, &node, "cut.cast", 1, 10, true).await;
        let theirs = recording(&t, "other-node", "theirs.cast", 1, 10, true).await;
        assert!(retention::prune(&t).await.unwrap().is_empty(), "{backend:?}: no limits set");
        assert_eq!(retention::close_orphans(&t).await.unwrap(), 1, "{backend:?}");
        assert!(recordings::get(&t.db, cut_off).await.unwrap().ended_at.is_some());
        assert!(recordings::get(&t.db, theirs).await.unwrap().ended_at.is_none(), "another node's stays running");
    }
}
