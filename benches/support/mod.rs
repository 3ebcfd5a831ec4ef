//! What the benches share: sample statistics, a fixed-concurrency driver, and users made
//! with the command line.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub struct Stats {
    pub samples: Vec<Duration>,
    pub wall: Duration,
}

impl Stats {
    pub fn pct(&self, p: f64) -> f64 {
        let mut s: Vec<f64> = self.samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        s.sort_by(|a, b| a.total_cmp(b));
        let i = ((s.len() as f64 - 1.0) * p).round() as usize;
        s[i.min(s.len() - 1)]
    }
    pub fn per_second(&self) -> f64 {
        self.samples.len() as f64 / self.wall.as_secs_f64()
    }
}

/// Runs `logins` logins, `concurrency` at a time; `login(i)` must return true on success.
pub fn measure(logins: usize, concurrency: usize, login: impl Fn(usize) -> bool + Sync) -> Stats {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    let samples = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..concurrency {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= logins {
                        return;
                    }
                    let t = Instant::now();
                    assert!(login(i), "login {i} failed");
                    samples.lock().expect("samples lock").push(t.elapsed());
                }
            });
        }
    });
    let wall = started.elapsed();
    Stats { samples: samples.into_inner().expect("samples lock"), wall }
}

/// Creates users `u0`…`u{n-1}`, each with `key` and a TOTP of its own, with `jobs` CLI
/// processes at once. Returns the TOTP secrets and the time taken.
pub fn provision(
    gw: &crate::common::Gw,
    key: &crate::common::ClientKey,
    n: usize,
    jobs: usize,
) -> (Vec<String>, Duration) {
    let public = key.public.display().to_string();
    let next = AtomicUsize::new(0);
    let secrets = std::sync::Mutex::new(vec![String::new(); n]);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    let name = format!("u{i}");
                    gw.cli_ok(&["user", "add", &name]);
                    gw.cli_ok(&["user", "add-key", &name, "--key-file", &public]);
                    let secret = gw.enroll_totp(&name);
                    secrets.lock().expect("secrets lock")[i] = secret;
                }
            });
        }
    });
    (secrets.into_inner().expect("secrets lock"), started.elapsed())
}
