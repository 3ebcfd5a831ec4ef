//! The configuration's loading rules: defaults, files, environment, overrides, errors.

use super::*;

fn load(text: &str, env: &[(&str, &str)]) -> Result<Config> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, text).unwrap();
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Config::load(Some(&path), env, &Overrides::default())
}

#[test]
fn zero_config_defaults() {
    let c = Config::load(None, Vec::new(), &Overrides::default()).unwrap();
    assert_eq!(c.ssh_listen.port(), 2222);
    assert_eq!(c.web_listen.port(), 8080);
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert!(c.database_url().starts_with("sqlite://./data/gatehouse.db"));
    assert_eq!(c.public_url(), "https://localhost:8080");
}

#[test]
fn env_overrides_file_and_flags_override_env() {
    let c = load(
        "ssh_listen = \"127.0.0.1:1\"\n[lockout]\nuser_threshold = 9\n",
        &[("GATEHOUSE_SSH_LISTEN", "127.0.0.1:2"), ("GATEHOUSE_LOCKOUT__WINDOW_SECS", "60")],
    )
    .unwrap();
    assert_eq!(c.ssh_listen.port(), 2);
    assert_eq!(c.lockout.user_threshold, 9);
    assert_eq!(c.lockout.window_secs, 60);

    let overrides = Overrides { ssh_listen: Some("127.0.0.1:3".into()), ..Default::default() };
    let env = vec![("GATEHOUSE_SSH_LISTEN".to_string(), "127.0.0.1:2".to_string())];
    let c = Config::load(None, env, &overrides).unwrap();
    assert_eq!(c.ssh_listen.port(), 3);
}

#[test]
fn unknown_key_is_named() {
    let err = load("ssh_lisen = \"127.0.0.1:1\"\n", &[]).unwrap_err().to_string();
    assert!(err.contains("ssh_lisen"), "{err}");
    let err = load("", &[("GATEHOUSE_WEB_LISTN", "x")]).unwrap_err().to_string();
    assert!(err.contains("web_listn"), "{err}");
}

#[test]
fn bad_value_is_named() {
    let err = load("web_listen = \"nowhere\"\n", &[]).unwrap_err().to_string();
    assert!(err.contains("web_listen"), "{err}");
    let err = load("database_url = \"mysql://x\"\n", &[]).unwrap_err().to_string();
    assert!(err.contains("database_url"), "{err}");
    let err = load("[lockout]\nuser_threshold = \"many\"\n", &[]).unwrap_err().to_string();
    assert!(err.contains("user_threshold"), "{err}");
}

#[test]
fn pending_limits_are_checked() {
    let c = load("", &[]).unwrap();
    assert_eq!((c.ssh.max_pending_per_source, c.ssh.max_pending, c.ssh.version_timeout_secs), (10, 100, 10));
    assert_eq!(c.ssh.max_connections, 16_384);
    for bad in [
        "max_pending = 0",
        "max_pending_per_source = 0",
        "version_timeout_secs = 0",
        "max_pending = 5",
        "max_connections = 50",
    ] {
        let err = load(&format!("[ssh]\n{bad}\n"), &[]).unwrap_err().to_string();
        assert!(err.contains("ssh."), "{bad}: {err}");
    }
    let c = load("[ssh]\nmax_pending = 5\nmax_pending_per_source = 5\n", &[]).unwrap();
    assert_eq!(c.ssh.max_pending, 5);
}

#[test]
fn radius_table() {
    let c = load(
        "[radius]\nservers = [\"127.0.0.1:1812\", \"radius.example:1645\"]\ntimeout_secs = 2\n",
        &[("GATEHOUSE_RADIUS__SECRET", "s3cret")],
    )
    .unwrap();
    assert_eq!(c.radius.servers, ["127.0.0.1:1812", "radius.example:1645"]);
    assert_eq!(c.radius.secret, "s3cret");
    assert_eq!((c.radius.timeout_secs, c.radius.retries), (2, 2));
    assert!(!format!("{c:?}").contains("s3cret"), "Debug must not show the secret");

    let c =
        load("", &[("GATEHOUSE_RADIUS__SERVERS", "a:1812, b:1812"), ("GATEHOUSE_RADIUS__SECRET", "123456")]).unwrap();
    assert_eq!(c.radius.servers, ["a:1812", "b:1812"]);
    assert_eq!(c.radius.secret, "123456");
    let err = load("[radius]\nservers = 5\n", &[]).unwrap_err().to_string();
    assert!(err.contains("servers"), "{err}");

    let err = load("[radius]\nserver = []\n", &[]).unwrap_err().to_string();
    assert!(err.contains("server"), "{err}");
    let err = load("[radius]\nservers = [\"nohost\"]\nsecret = \"x\"\n", &[]).unwrap_err().to_string();
    assert!(err.contains("radius.servers"), "{err}");
    let err = load("[radius]\nservers = [\"h:1812\"]\n", &[]).unwrap_err().to_string();
    assert!(err.contains("radius.secret"), "{err}");
    let err = load("[radius]\ntimeout_secs = 0\n", &[]).unwrap_err().to_string();
    assert!(err.contains("radius.timeout_secs"), "{err}");
    let err = load("[radius]\nretries = \"x\"\n", &[]).unwrap_err().to_string();
    assert!(err.contains("retries"), "{err}");
}

#[test]
fn duo_table() {
    let c = load(
        "[duo]\nintegration_key = \"DIWJ8X6AEYOR5OMC6TQ1\"\napi_host = \"api-XXXXXXXX.duosecurity.com\"\n",
        &[("GATEHOUSE_DUO__SECRET_KEY", "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep")],
    )
    .unwrap();
    assert!(c.duo.enabled());
    assert_eq!(c.duo.endpoint().unwrap().host, "api-xxxxxxxx.duosecurity.com");
    assert_eq!((c.duo.timeout_secs, c.duo.push_timeout_secs, c.duo.fail_open), (10, 60, false));
    assert!(!format!("{c:?}").contains("Zh5eGmUq"), "Debug must not show the secret key");
    assert!(!Config::default().duo.enabled(), "off unless configured");

    let c = load("[duo]\nfail_open = true\n", &[("GATEHOUSE_DUO__PUSH_TIMEOUT_SECS", "5")]).unwrap();
    assert!(!c.duo.enabled() && c.duo.fail_open && c.duo.push_timeout_secs == 5);

    let err =
        load("[duo]\nintegration_key = \"DIX\"\napi_host = \"api-x.duosecurity.com\"\n", &[]).unwrap_err().to_string();
    assert!(err.contains("duo.secret_key: must be set"), "{err}");
    let err = load("[duo]\napi_host = \"api-x.duosecurity.com\"\n", &[]).unwrap_err().to_string();
    assert!(err.contains("duo.integration_key: must be set"), "{err}");
    let err = load("", &[("GATEHOUSE_DUO__SECRET_KEY", "s")]).unwrap_err().to_string();
    assert!(err.contains("duo.integration_key"), "{err}");
    let full = "[duo]\nintegration_key = \"DIX\"\nsecret_key = \"s\"\n";
    let err = load(&format!("{full}api_host = \"http://api-x.duosecurity.com\"\n"), &[]).unwrap_err().to_string();
    assert!(err.contains("duo.api_host") && err.contains("loopback"), "{err}");
    assert!(load(&format!("{full}api_host = \"http://127.0.0.1:9\"\n"), &[]).is_ok());
    let err =
        load("[duo]\nintegration_key = \"DI X\"\nsecret_key = \"s\"\napi_host = \"h\"\n", &[]).unwrap_err().to_string();
    assert!(err.contains("duo.integration_key"), "{err}");
    let err = load("[duo]\ntimeout_secs = 0\n", &[]).unwrap_err().to_string();
    assert!(err.contains("duo.timeout_secs"), "{err}");
    let err = load("[duo]\npush_timeout_secs = 301\n", &[]).unwrap_err().to_string();
    assert!(err.contains("duo.push_timeout_secs"), "{err}");
    let err = load("[duo]\nfail_open = \"yes\"\n", &[]).unwrap_err().to_string();
    assert!(err.contains("fail_open"), "{err}");
    let err = load("[duo]\nhost = \"x\"\n", &[]).unwrap_err().to_string();
    assert!(err.contains("host"), "{err}");
}

#[test]
fn yubikey_table() {
    let c = load("", &[]).unwrap();
    assert!(!c.yubikey.enabled(), "off by default");
    assert_eq!(c.yubikey.api_urls, [YUBICLOUD_URL]);

    // The key from the environment, as the README advises; a numeric id stays text.
    let c = load(
        "[yubikey]\napi_urls = [\"http://127.0.0.1:8000/wsapi/2.0/verify\"]\ntimeout_secs = 2\n",
        &[("GATEHOUSE_YUBIKEY__CLIENT_ID", "12345"), ("GATEHOUSE_YUBIKEY__SECRET_KEY", "c2VjcmV0LWtleS0yMC1ieXRlcyE=")],
    )
    .unwrap();
    assert!(c.yubikey.enabled());
    assert_eq!(c.yubikey.client_id, "12345");
    assert_eq!(c.yubikey.key_bytes(), b"secret-key-20-bytes!");
    assert_eq!(c.yubikey.timeout_secs, 2);
    assert!(!format!("{c:?}").contains("c2VjcmV0"), "Debug must not show the key");

    let c = load("", &[("GATEHOUSE_YUBIKEY__API_URLS", "https://a.example/v, http://b.example:8080/v")]).unwrap();
    assert_eq!(c.yubikey.api_urls, ["https://a.example/v", "http://b.example:8080/v"]);

    let key = "[yubikey]\nclient_id = \"1\"\n";
    for (text, env, named) in [
        ("[yubikey]\nclient_id = \"1\"\nsecret_key = \"not base64!\"\n", vec![], "yubikey.secret_key"),
        (key, vec![], "yubikey.secret_key"),
        ("[yubikey]\nsecret_key = \"a2V5\"\n", vec![], "yubikey.client_id"),
        ("[yubikey]\nclient_id = \"1 2\"\nsecret_key = \"a2V5\"\n", vec![], "yubikey.client_id"),
        ("[yubikey]\napi_urls = [\"ftp://x/verify\"]\n", vec![], "yubikey.api_urls"),
        ("[yubikey]\napi_urls = [\"api.yubico.com/wsapi/2.0/verify\"]\n", vec![], "yubikey.api_urls"),
        ("[yubikey]\napi_urls = [\"https://u:p@x/verify\"]\n", vec![], "yubikey.api_urls"),
        ("[yubikey]\napi_urls = [\"https://x/verify?id=1\"]\n", vec![], "yubikey.api_urls"),
        ("[yubikey]\napi_urls = [\"https:///verify\"]\n", vec![], "yubikey.api_urls"),
        ("[yubikey]\napi_urls = []\n", vec![], "yubikey.api_urls"),
        ("[yubikey]\ntimeout_secs = 0\n", vec![], "yubikey.timeout_secs"),
        ("[yubikey]\napi_url = []\n", vec![], "api_url"),
        (
            "",
            vec![("GATEHOUSE_YUBIKEY__CLIENT_ID", "7"), ("GATEHOUSE_YUBIKEY__SECRET_KEY", "%%%")],
            "yubikey.secret_key",
        ),
    ] {
        let err = load(text, &env).unwrap_err().to_string();
        assert!(err.contains(named), "{text:?} {env:?}: {err}");
        assert!(!err.contains("%%%"), "the key is not echoed: {err}");
    }
}

#[test]
fn recordings_bucket_table() {
    let base = "[recordings.s3]\nbucket = \"gh-recordings\"\naccess_key_id = \"AKIA1\"\n";
    let c = load(base, &[("GATEHOUSE_RECORDINGS__S3__SECRET_ACCESS_KEY", "s3cr3t")]).unwrap();
    let s3 = c.recordings.s3.as_ref().unwrap();
    assert_eq!((s3.region.as_str(), s3.prefix.as_str(), s3.timeout_secs), ("us-east-1", "recordings/", 30));
    assert_eq!(s3.secret_access_key, "s3cr3t");
    assert!(!format!("{c:?}").contains("s3cr3t"), "the secret key is never shown");
    assert!(Config::load(None, Vec::new(), &Overrides::default()).unwrap().recordings.s3.is_none());

    let with = |extra: &str| load(&format!("{base}secret_access_key = \"k\"\n{extra}"), &[]);
    assert!(with("endpoint = \"http://127.0.0.1:9000\"").is_ok());
    assert!(with("endpoint = \"https://minio.example.net:9000\"").is_ok());
    for (extra, key) in [
        ("endpoint = \"http://minio.example.net:9000\"", "recordings.s3.endpoint"),
        ("endpoint = \"ftp://127.0.0.1\"", "recordings.s3.endpoint"),
        ("endpoint = \"https://h.example/some/path\"", "recordings.s3.endpoint"),
        ("prefix = \"../elsewhere/\"", "recordings.s3.prefix"),
        ("prefix = \"/abs/\"", "recordings.s3.prefix"),
        ("timeout_secs = 0", "recordings.s3.timeout_secs"),
    ] {
        let err = with(extra).unwrap_err().to_string();
        assert!(err.contains(key), "{extra}: {err}");
    }
    let err = load(base, &[]).unwrap_err().to_string();
    assert!(err.contains("secret_access_key"), "{err}");
    let err = load("[recordings.s3]\nbucket = \"No_Such\"\naccess_key_id = \"a\"\nsecret_access_key = \"b\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("recordings.s3.bucket"), "{err}");
}
