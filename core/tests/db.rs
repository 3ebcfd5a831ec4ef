//! Database tests for the tables administrators manage, on SQLite and PostgreSQL:
//! migrations, users, groups, memberships, targets, grants, and target credentials sealed
//! at rest. Every bad input must leave the database as it was.

mod support;

use gatehouse_core::targets::{self, CredentialKind, Grantee, NewTarget};
use gatehouse_core::users::{self, NewUser};
use gatehouse_core::{Error, Gateway, app_passcodes, groups, ssh_keys};
use support::{Backend, backends, count, open};

async fn add_user(gw: &Gateway, name: &str) -> users::User {
    users::create(&gw.db, NewUser { name, password: Some("correct horse"), email: None, is_admin: false })
        .await
        .unwrap_or_else(|e| panic!("creating {name}: {e}"))
}

fn password_target<'a>(name: &'a str, secret: &'a str) -> NewTarget<'a> {
    NewTarget {
        name,
        host: "127.0.0.1",
        port: 22,
        username: "deploy",
        credential_kind: CredentialKind::Password,
        credential: secret,
        host_key: None,
    }
}

fn migration_files(backend: Backend) -> i64 {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations").join(match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    });
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "sql"))
        .count() as i64
}

#[tokio::test]
async fn migrations_apply_twice_without_change() {
    for backend in backends() {
        let t = open(backend).await;
        let applied = count(&t, "_sqlx_migrations").await;
        assert_eq!(applied, migration_files(backend), "{backend:?}: every migration applied once");
        add_user(&t, "alice").await;

        // Running the migrator again, and opening a second gateway on the same database
        // (a restart, or a second node), changes nothing.
        t.db.migrate().await.unwrap();
        let again = Gateway::open((*t.config).clone()).await.unwrap();
        again.db.migrate().await.unwrap();
        assert_eq!(count(&t, "_sqlx_migrations").await, applied, "{backend:?}");
        assert_eq!(users::list(&again.db).await.unwrap().len(), 1, "{backend:?}: data kept");
    }
}

#[tokio::test]
async fn users_crud_and_rejections_write_nothing() {
    for backend in backends() {
        let t = open(backend).await;
        let db = &t.db;
        let alice = users::create(
            db,
            NewUser {
                name: "alice",
                password: Some("correct horse"),
                email: Some("alice@example.com"),
                is_admin: true,
            },
        )
        .await
        .unwrap();
        assert_eq!(alice.name, "alice");
        assert!(alice.is_admin && !alice.locked && !alice.exempt_2fa);
        assert!(alice.check_password("correct horse").await);
        assert!(!alice.check_password("wrong horse").await);

        let dup =
            users::create(db, NewUser { name: "alice", password: Some("other password"), ..Default::default() }).await;
        assert!(matches!(dup, Err(Error::Duplicate { .. })), "{backend:?}: {dup:?}");
        assert!(
            users::get(db, "alice").await.unwrap().check_password("correct horse").await,
            "duplicate changed nothing"
        );

        for (name, password, email) in [
            ("bad name!", Some("long enough"), None),
            ("", Some("long enough"), None),
            ("bob", Some("short"), None),
            ("bob", Some("long enough"), Some("not-an-address")),
        ] {
            let r = users::create(db, NewUser { name, password, email, is_admin: false }).await;
            assert!(matches!(r, Err(Error::Invalid { .. })), "{backend:?} {name:?}: {r:?}");
        }
        assert_eq!(count(&t, "users").await, 1, "{backend:?}: rejected users not written");

        users::set_locked(db, "alice", true).await.unwrap();
        users::set_exempt(db, "alice", true).await.unwrap();
        let a = users::get(db, "alice").await.unwrap();
        assert!(a.locked && a.exempt_2fa);
        let passcode = app_passcodes::create(db, a.id, "backup job").await.unwrap();
        assert_eq!(
            users::set_password(db, "alice", "battery staple").await.unwrap(),
            1,
            "{backend:?}: the passcode goes with the old password"
        );
        assert!(users::get(db, "alice").await.unwrap().check_password("battery staple").await);
        assert_eq!(app_passcodes::verify(db, a.id, &passcode).await.unwrap(), None, "{backend:?}");

        for r in [
            users::set_locked(db, "nobody", true).await,
            users::set_exempt(db, "nobody", true).await,
            users::set_password(db, "nobody", "long enough").await.map(|_| ()),
            users::delete(db, "nobody").await,
        ] {
            assert!(matches!(r, Err(Error::NotFound { .. })), "{backend:?}: {r:?}");
        }

        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop";
        let k = ssh_keys::add(db, "alice", key).await.unwrap();
        assert!(k.fingerprint.starts_with("SHA256:"));
        assert!(matches!(ssh_keys::add(db, "alice", key).await, Err(Error::Duplicate { .. })));
        assert!(matches!(ssh_keys::add(db, "alice", "ssh-ed25519 AAAAnot-base64").await, Err(Error::Invalid { .. })));
        assert!(matches!(ssh_keys::add(db, "nobody", key).await, Err(Error::NotFound { .. })));
        assert_eq!(count(&t, "ssh_keys").await, 1, "{backend:?}");

        users::delete(db, "alice").await.unwrap();
        assert!(users::find(db, "alice").await.unwrap().is_none());
        assert_eq!(count(&t, "ssh_keys").await, 0, "{backend:?}: keys deleted with their user");
    }
}

#[tokio::test]
async fn groups_and_memberships() {
    for backend in backends() {
        let t = open(backend).await;
        let db = &t.db;
        let alice = add_user(&t, "alice").await;
        add_user(&t, "bob").await;
        groups::create(db, "ops").await.unwrap();
        assert!(matches!(groups::create(db, "ops").await, Err(Error::Duplicate { .. })));
        assert!(matches!(groups::create(db, "no spaces").await, Err(Error::Invalid { .. })));
        assert_eq!(count(&t, "user_groups").await, 1, "{backend:?}");

        groups::add_member(db, "ops", "alice").await.unwrap();
        groups::add_member(db, "ops", "bob").await.unwrap();
        let dup = groups::add_member(db, "ops", "alice").await;
        assert!(matches!(dup, Err(Error::Duplicate { .. })), "{backend:?}: {dup:?}");
        assert!(matches!(groups::add_member(db, "ops", "nobody").await, Err(Error::NotFound { .. })));
        assert!(matches!(groups::add_member(db, "nogroup", "alice").await, Err(Error::NotFound { .. })));
        assert_eq!(count(&t, "group_members").await, 2, "{backend:?}");
        assert_eq!(groups::members(db, "ops").await.unwrap(), vec!["alice", "bob"]);
        assert_eq!(groups::of_user(db, alice.id).await.unwrap().len(), 1);

        groups::remove_member(db, "ops", "bob").await.unwrap();
        assert!(matches!(groups::remove_member(db, "ops", "bob").await, Err(Error::NotFound { .. })));
        assert_eq!(groups::members(db, "ops").await.unwrap(), vec!["alice"]);

        groups::set_force_2fa(db, "ops", true).await.unwrap();
        assert!(groups::get(db, "ops").await.unwrap().force_2fa);
        assert!(matches!(groups::set_force_2fa(db, "nogroup", true).await, Err(Error::NotFound { .. })));

        groups::delete(db, "ops").await.unwrap();
        assert_eq!(count(&t, "group_members").await, 0, "{backend:?}: memberships deleted with the group");
    }
}

#[tokio::test]
async fn targets_grants_and_granted_to() {
    for backend in backends() {
        let t = open(backend).await;
        let (db, vault) = (&t.db, &t.vault);
        let alice = add_user(&t, "alice").await;
        let bob = add_user(&t, "bob").await;
        groups::create(db, "ops").await.unwrap();
        groups::add_member(db, "ops", "bob").await.unwrap();
        targets::create(db, vault, password_target("web1", "s3cret-web1")).await.unwrap();
        targets::create(db, vault, password_target("db1", "s3cret-db1")).await.unwrap();

        let dup = targets::create(db, vault, password_target("web1", "other")).await;
        assert!(matches!(dup, Err(Error::Duplicate { .. })), "{backend:?}: {dup:?}");
        let bad_port = targets::create(db, vault, NewTarget { port: 0, ..password_target("web2", "x") }).await;
        assert!(matches!(bad_port, Err(Error::Invalid { .. })), "{backend:?}: {bad_port:?}");
        let bad_host = targets::create(db, vault, NewTarget { host: "a host", ..password_target("web3", "x") }).await;
        assert!(matches!(bad_host, Err(Error::Invalid { .. })), "{backend:?}: {bad_host:?}");
        let bad_key = targets::create(
            db,
            vault,
            NewTarget { credential_kind: CredentialKind::Key, ..password_target("web4", "not a key") },
        )
        .await;
        assert!(matches!(bad_key, Err(Error::Invalid { .. })), "{backend:?}: {bad_key:?}");
        assert_eq!(count(&t, "targets").await, 2, "{backend:?}: rejected targets not written");
        assert_eq!(targets::get(db, "web1").await.unwrap().credential(vault).unwrap().as_str(), "s3cret-web1");

        let names = |v: Vec<targets::Target>| v.into_iter().map(|t| t.name).collect::<Vec<_>>();
        assert!(targets::granted_to(db, alice.id).await.unwrap().is_empty());

        targets::grant(db, "web1", Grantee::User("alice")).await.unwrap();
        let dup = targets::grant(db, "web1", Grantee::User("alice")).await;
        assert!(matches!(dup, Err(Error::Duplicate { .. })), "{backend:?}: {dup:?}");
        assert!(matches!(targets::grant(db, "web1", Grantee::User("nobody")).await, Err(Error::NotFound { .. })));
        assert!(matches!(targets::grant(db, "nowhere", Grantee::User("alice")).await, Err(Error::NotFound { .. })));
        assert!(matches!(targets::grant(db, "web1", Grantee::Group("nogroup")).await, Err(Error::NotFound { .. })));
        assert_eq!(count(&t, "grants").await, 1, "{backend:?}");

        // Through a group, and directly: one entry per target.
        targets::grant(db, "db1", Grantee::Group("ops")).await.unwrap();
        targets::grant(db, "web1", Grantee::Group("ops")).await.unwrap();
        targets::grant(db, "web1", Grantee::User("bob")).await.unwrap();
        assert_eq!(names(targets::granted_to(db, alice.id).await.unwrap()), vec!["web1"]);
        assert_eq!(names(targets::granted_to(db, bob.id).await.unwrap()), vec!["db1", "web1"]);
        let web1 = targets::get(db, "web1").await.unwrap();
        assert_eq!(
            targets::grantees(db, web1.id).await.unwrap(),
            (vec!["alice".into(), "bob".into()], vec!["ops".into()])
        );

        // Revoking the direct grant leaves the group's; leaving the group ends it.
        targets::revoke(db, "web1", Grantee::User("bob")).await.unwrap();
        assert_eq!(names(targets::granted_to(db, bob.id).await.unwrap()), vec!["db1", "web1"]);
        let again = targets::revoke(db, "web1", Grantee::User("bob")).await;
        assert!(matches!(again, Err(Error::NotFound { .. })), "{backend:?}: {again:?}");
        groups::remove_member(db, "ops", "bob").await.unwrap();
        assert!(targets::granted_to(db, bob.id).await.unwrap().is_empty());
        targets::revoke(db, "web1", Grantee::User("alice")).await.unwrap();
        assert!(targets::granted_to(db, alice.id).await.unwrap().is_empty());

        // Revoking a user's grant must not touch a group's grant, and the reverse.
        assert_eq!(count(&t, "grants").await, 2, "{backend:?}: the two group grants remain");
        targets::delete(db, "db1").await.unwrap();
        assert_eq!(count(&t, "grants").await, 1, "{backend:?}: grants deleted with their target");
    }
}

#[tokio::test]
async fn target_credentials_are_sealed_and_bound_to_their_row() {
    for backend in backends() {
        let t = open(backend).await;
        let (db, vault) = (&t.db, &t.vault);
        let secret = "Tr0ub4dor&3-target-password";
        let a = targets::create(db, vault, password_target("alpha", secret)).await.unwrap();
        let b = targets::create(db, vault, password_target("beta", "another-password")).await.unwrap();

        let raw: String = sqlx::query_scalar("SELECT credential FROM targets WHERE id = $1")
            .bind(a.id)
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert!(!raw.contains(secret) && !raw.contains("Tr0ub4dor"), "{backend:?}: credential stored in clear: {raw}");
        assert!(!raw.is_empty());
        assert_eq!(a.credential(vault).unwrap().as_str(), secret);

        // A ciphertext copied into another row does not open there.
        sqlx::query("UPDATE targets SET credential = $1 WHERE id = $2")
            .bind(&raw)
            .bind(b.id)
            .execute(db.pool())
            .await
            .unwrap();
        let moved = targets::get(db, "beta").await.unwrap().credential(vault);
        assert!(moved.is_err(), "{backend:?}: a credential opened under another target's context");

        // A key credential: a real OpenSSH private key, sealed the same way.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id");
        let ok = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&path)
            .status()
            .expect("running ssh-keygen")
            .success();
        assert!(ok, "ssh-keygen failed");
        let pem = std::fs::read_to_string(&path).unwrap();
        let k = targets::create(
            db,
            vault,
            NewTarget { credential_kind: CredentialKind::Key, credential: &pem, ..password_target("gamma", "") },
        )
        .await
        .unwrap();
        let raw: String = sqlx::query_scalar("SELECT credential FROM targets WHERE id = $1")
            .bind(k.id)
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert!(!raw.contains("OPENSSH PRIVATE KEY"), "{backend:?}: key stored in clear");
        assert_eq!(k.credential(vault).unwrap().as_str(), pem);
    }
}
