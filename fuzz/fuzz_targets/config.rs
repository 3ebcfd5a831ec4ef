//! The configuration (core/src/config.rs, `Config::from_text`): the file's text and the
//! `GATEHOUSE_*` variables, as an operator (or a tool writing the file for them) may get
//! them wrong.
//!
//! Asserts: a config that loads satisfies what `validate` promises the rest of the code
//! (at least one gate attempt and lockout thresholds of at least 1, a known database
//! scheme, an http(s) public URL or none); written back as TOML it loads again to the
//! same config; an error always says something; no panic.

#![no_main]

use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};
use gatehouse_core::config::{Config, Overrides};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    text: Option<String>,
    /// `GATEHOUSE_` + name = value.
    env: Vec<(String, String)>,
}

/// The first octet picks: the rest as the file's text, without variables (even), or a
/// text and variables built from the rest (odd).
fn input(data: &[u8]) -> Option<Input> {
    let [mode, rest @ ..] = data else { return None };
    if mode & 1 == 0 {
        Some(Input { text: Some(std::str::from_utf8(rest).ok()?.to_string()), env: Vec::new() })
    } else {
        Input::arbitrary_take_rest(Unstructured::new(rest)).ok()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = input(data) else { return };
    let path = Path::new("gatehouse.toml");
    let env = || input.env.iter().map(|(k, v)| (format!("GATEHOUSE_{k}"), v.clone()));
    let file = input.text.as_deref().map(|t| (path, t));
    let config = match Config::from_text(file, env(), &Overrides::default()) {
        Ok(config) => config,
        Err(e) => {
            let text = e.to_string();
            assert!(!text.trim().is_empty(), "an error without a text");
            return;
        }
    };
    assert!(config.ssh.gate_attempts >= 1);
    assert!(config.lockout.user_threshold >= 1 && config.lockout.source_threshold >= 1);
    assert!(!config.data_dir.as_os_str().is_empty());
    let url = config.database_url.trim();
    assert!(url.is_empty() || url.starts_with("sqlite:") || url.starts_with("postgres"), "{url:?}");
    assert!(config.public_url.is_empty() || config.public_url.starts_with("http"), "{:?}", config.public_url);

    let written = toml::to_string(&config).expect("a loaded config writes as TOML");
    let again = Config::from_text(Some((path, &written)), std::iter::empty(), &Overrides::default())
        .unwrap_or_else(|e| panic!("a written config does not load again: {e}\n{written}"));
    assert_eq!(toml::to_string(&again).expect("writes as TOML"), written, "the config changed on the way back");
});
