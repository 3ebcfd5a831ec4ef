//! Every page of the router, as a person would get it, checked for the structure a
//! browser needs to show it: one plain-text `<title>`, a heading, every form and button
//! in the `<body>`, and the CSRF token in every POST form.
//!
//! A template that puts markup in the wrong block (the health page once rendered its "Ask
//! Duo" section inside `<title>`, so the browser showed no Duo button) still answers 200
//! with the right words somewhere in the source; only parsing the page as a browser does
//! shows what is lost. [`PAGES`] lists each GET route with who fetches it; a new page is
//! one line there, and [`every_get_route_of_the_router_is_listed`] fails until it is.

mod support;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use gatehouse_core::factors::{Frontend, LoginContext, email, keyword, webauthn};
use gatehouse_core::live_sessions::{self, NewLiveSession};
use gatehouse_core::recordings::{self, NewRecording};
use gatehouse_core::users;
use scraper::{ElementRef, Html, Selector};
use support::smtp::SmtpSink;
use support::{Client, Web};

/// Who fetches a page: each is a browser in the state the page is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// No session yet.
    Anonymous,
    /// Password accepted, the second factor pending.
    FactorStep,
    /// Logged in, but a forced group sends them to enrollment first.
    Enrolling,
    /// A user logged in with a password and a second factor.
    User,
    /// An administrator logged in with a password (no factor enrolled).
    Admin,
    /// Logged in without a fresh second factor, so changes of credentials ask for one.
    Unconfirmed,
}

use Who::*;

/// How a POST form on the page proves it came from the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Csrf {
    /// Every POST form carries the session's `csrf` field.
    Session,
    /// The Authorize page's form needs no session: the unguessable token in its URL is the
    /// proof that the mail was read (see `routes::email`).
    TokenInUrl,
}

/// One HTML page: the route as `routes/mod.rs` writes it, the path to fetch (`{recording}`
/// and `{token}` are filled in from the fixture), who fetches it, and its form rule.
struct Page {
    route: &'static str,
    path: &'static str,
    who: &'static [Who],
    csrf: Csrf,
}

const fn page(route: &'static str, path: &'static str, who: &'static [Who]) -> Page {
    Page { route, path, who, csrf: Csrf::Session }
}

const ACCOUNT: &[Who] = &[User, Admin];

/// Every GET route that serves an HTML page.
const PAGES: &[Page] = &[
    page("/login", "/login", &[Anonymous]),
    page("/login/factor", "/login/factor", &[FactorStep]),
    page("/enroll", "/enroll", &[Enrolling]),
    page("/account", "/account", ACCOUNT),
    page("/account/confirm", "/account/confirm?next=/account/keys", &[Unconfirmed]),
    page("/account/totp", "/account/totp", ACCOUNT),
    page("/account/yubikey", "/account/yubikey", ACCOUNT),
    page("/account/security-keys", "/account/security-keys", ACCOUNT),
    page("/account/email", "/account/email", ACCOUNT),
    // Carol's own SSH login waiting for her security key (she has none here: the page
    // says so).
    page("/approve/{token}", "/approve/{approval}", &[User]),
    Page { route: "/authorize/{token}", path: "/authorize/{token}", who: &[Anonymous], csrf: Csrf::TokenInUrl },
    page("/account/keys", "/account/keys", ACCOUNT),
    page("/account/ssh-security-keys", "/account/ssh-security-keys", ACCOUNT),
    page("/account/password", "/account/password", ACCOUNT),
    page("/account/devices", "/account/devices", ACCOUNT),
    page("/account/passcodes", "/account/passcodes", ACCOUNT),
    page("/admin/users", "/admin/users", &[Admin]),
    page("/admin/users/{name}", "/admin/users/carol", &[Admin]),
    page("/admin/groups", "/admin/groups", &[Admin]),
    page("/admin/groups/{name}", "/admin/groups/ops", &[Admin]),
    page("/admin/policy", "/admin/policy", &[Admin]),
    page("/admin/targets", "/admin/targets", &[Admin]),
    page("/admin/targets/{name}", "/admin/targets/web1", &[Admin]),
    page("/admin/audit", "/admin/audit", &[Admin]),
    page("/admin/recordings", "/admin/recordings", &[Admin]),
    page("/admin/recordings/{id}", "/admin/recordings/{recording}", &[Admin]),
    page("/admin/live", "/admin/live", &[Admin]),
    page("/admin/health", "/admin/health", &[Admin]),
];

/// GET routes that serve no HTML page, and why.
const NOT_PAGES: &[(&str, &str)] = &[
    ("/healthz", "plain text for load balancers"),
    ("/static/style.css", "a style sheet"),
    ("/static/player.js", "a script"),
    ("/static/webauthn.js", "a script"),
    ("/", "a redirect to /account"),
    ("/admin", "a redirect to /admin/users"),
    ("/admin/recordings/{id}/cast", "the asciicast file"),
];

const ROOT_PASSWORD: &str = "root password 1";
const CAROL_PASSWORD: &str = "carol password 1";
const CAROL_KEYWORD: &str = "purple elephant";
const MIA_ADDRESS: &str = "mia@example.com";

/// Longest title accepted: a few words, as a tab shows them.
const MAX_TITLE_CHARS: usize = 80;

/// The gateway with something on every page, and one browser per [`Who`].
struct Fixture {
    /// Keeps the database and its temp dir for as long as the browsers use them.
    _web: Web,
    _smtp: SmtpSink,
    browsers: Vec<(Who, Client)>,
    recording: i64,
    token: String,
    /// The link token of an SSH login of carol's waiting for approval.
    approval: String,
}

impl Fixture {
    fn browser(&self, who: Who) -> &Client {
        self.browsers
            .iter()
            .find(|(w, _)| *w == who)
            .map(|(_, c)| c)
            .unwrap_or_else(|| panic!("no browser for {who:?}"))
    }

    fn path(&self, p: &Page) -> String {
        p.path
            .replace("{recording}", &self.recording.to_string())
            .replace("{token}", &self.token)
            .replace("{approval}", &self.approval)
    }
}

async fn fixture() -> Fixture {
    let smtp = SmtpSink::start();
    let port = smtp.port;
    let web = support::open_with(|c| {
        c.email.smtp_host = "127.0.0.1".into();
        c.email.smtp_port = port;
        c.email.tls = gatehouse_core::config::SmtpTls::None;
        c.email.from = "Gatehouse <gatehouse@test.invalid>".into();
        c.email.timeout_secs = 5;
    })
    .await;
    web.user("root", ROOT_PASSWORD, true).await;
    let carol = web.user("carol", CAROL_PASSWORD, false).await;
    keyword::set(&web.gw, carol.id, CAROL_KEYWORD).await.expect("carol's keyword");
    let erin = web.user("erin", "erin password 1", false).await;
    keyword::set(&web.gw, erin.id, "erin's keyword").await.expect("erin's keyword");
    users::set_exempt(&web.gw.db, "erin", true).await.expect("exempting erin");
    web.user("frank", "frank password 1", false).await;
    let mia = web.user("mia", "mia password 1", false).await;
    email::start_enrollment(&web.gw, &mia, MIA_ADDRESS, "fixture").await.expect("mailing mia's code");
    let code = smtp.wait_for(MIA_ADDRESS, 1).code();
    email::confirm_enrollment(&web.gw, &mia, "fixture", &code).await.expect("confirming mia's address");

    // The objects of the pages with a path parameter, made as an administrator makes them.
    let root = web.login("root", ROOT_PASSWORD).await;
    root.submit("/admin/groups", "/admin/groups", &[("name", "ops")])
        .await
        .assert_redirect("/admin/groups/ops", "create group");
    root.submit("/admin/groups/ops", "/admin/groups/ops/members", &[("user", "frank")])
        .await
        .assert_redirect("/admin/groups/ops", "add frank");
    root.submit("/admin/groups/ops", "/admin/groups/ops/force", &[("on", "on")])
        .await
        .assert_redirect("/admin/groups/ops", "force 2FA for ops");
    let target = [
        ("name", "web1"),
        ("host", "192.0.2.10"),
        ("port", "22"),
        ("username", "deploy"),
        ("credential_kind", "password"),
        ("credential", "target password"),
        ("host_key", ""),
    ];
    root.submit("/admin/targets", "/admin/targets", &target).await.assert_redirect("/admin/targets/web1", "target");
    // A recording and a live session come from the SSH side; here they are indexed directly.
    let file = "web1-fixture.cast";
    let dir = recordings::dir(&web.gw.config);
    std::fs::create_dir_all(&dir).expect("the recordings folder");
    let cast = "{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.5, \"o\", \"hello\\r\\n\"]\n";
    std::fs::write(dir.join(file), cast).expect("writing a recording");
    let new = NewRecording {
        user_name: "carol",
        target_name: "web1",
        node: "test-node",
        path: file,
        width: 80,
        height: 24,
        started_at: gatehouse_core::time::now(),
    };
    let recording = recordings::start(&web.gw.db, &new).await.expect("indexing a recording");
    recordings::finish(&web.gw.db, recording, file, cast.len() as u64).await.expect("finishing it");
    let live = NewLiveSession {
        node: "test-node",
        user_name: "carol",
        target_name: "web1",
        source: "127.0.0.1",
        kind: "shell",
        recording_id: Some(recording),
    };
    live_sessions::register(&web.gw.db, &live).await.expect("registering a live session");

    // Carol logs in with her keyword; a second browser of hers stops after the password.
    let user = web.client();
    user.password_step("carol", CAROL_PASSWORD).await.assert_redirect("/login/factor", "carol's password");
    let factor = user.get("/login/factor?method=keyword").await;
    factor.assert_status(StatusCode::OK, "carol's factor page");
    user.post("/login/factor", &[("csrf", &factor.csrf()), ("method", "keyword"), ("code", CAROL_KEYWORD)])
        .await
        .assert_redirect("/account", "carol's keyword");
    let factor_step = web.client();
    factor_step.password_step("carol", CAROL_PASSWORD).await.assert_redirect("/login/factor", "password step");
    // Frank is in the forced group with no factor; erin is exempt, so her login skipped
    // the factor she has, and changing a credential asks for it.
    let enrolling = web.login("frank", "frank password 1").await;
    let unconfirmed = web.login("erin", "erin password 1").await;
    // Mia's login mails her an Authorize link.
    let mia_browser = web.client();
    mia_browser.password_step("mia", "mia password 1").await.assert_redirect("/login/factor", "mia's password");
    mia_browser.get("/login/factor?method=email").await.assert_status(StatusCode::OK, "mia's factor page");
    let link = smtp.wait_for(MIA_ADDRESS, 2).authorize_link();
    let token = link.rsplit('/').next().unwrap_or_default().to_string();
    let waiting = LoginContext {
        user_name: "carol".into(),
        source: "192.0.2.7".into(),
        frontend: Frontend::Ssh,
        attempt: "fixture".into(),
    };
    let opened = webauthn::approval::open(&web.gw, &carol, &waiting).await.expect("an SSH login waiting");
    let approval = opened.link.rsplit('/').next().unwrap_or_default().to_string();

    let browsers = vec![
        (Anonymous, web.client()),
        (FactorStep, factor_step),
        (Enrolling, enrolling),
        (User, user),
        (Admin, root),
        (Unconfirmed, unconfirmed),
    ];
    Fixture { _web: web, _smtp: smtp, browsers, recording, token, approval }
}

fn select<'a>(html: &'a Html, css: &str) -> Vec<ElementRef<'a>> {
    let selector = Selector::parse(css).unwrap_or_else(|e| panic!("selector {css}: {e:?}"));
    html.select(&selector).collect()
}

/// Occurrences of `<tag` (followed by a space or `>`) in the raw source, case-insensitive.
fn raw_tags(source: &str, tag: &str) -> usize {
    let lower = source.to_ascii_lowercase();
    let open = format!("<{tag}");
    lower
        .match_indices(&open)
        .filter(|(i, _)| matches!(lower.as_bytes().get(i + open.len()), Some(b' ' | b'>')))
        .count()
}

/// Everything wrong with the structure of one page; empty when it is sound.
fn structure_problems(source: &str, csrf: Csrf) -> Vec<String> {
    let html = Html::parse_document(source);
    let mut problems = Vec::new();
    let titles = select(&html, "title");
    if titles.len() != 1 || raw_tags(source, "title") != 1 {
        problems.push(format!(
            "{} <title> elements ({} in the source), not one",
            titles.len(),
            raw_tags(source, "title")
        ));
    }
    for title in &titles {
        // The parser keeps a title's content as text, so misplaced markup shows as '<'.
        let text: String = title.text().collect();
        let shown: String = text.chars().take(100).collect();
        if title.children().any(|c| c.value().is_element()) || text.contains(['<', '>']) || text.contains('\n') {
            problems.push(format!("the <title> holds markup or lines, not a plain text: {shown:?}…"));
        }
        if text.trim().is_empty() || text.chars().count() > MAX_TITLE_CHARS {
            problems.push(format!("the <title> is empty or longer than {MAX_TITLE_CHARS} characters: {shown:?}"));
        }
    }
    if select(&html, "body h1").is_empty() {
        problems.push("no <h1> in the body".into());
    }
    for tag in ["form", "button"] {
        let in_body = select(&html, &format!("body {tag}")).len();
        let in_source = raw_tags(source, tag);
        if in_body != in_source {
            problems.push(format!("{in_source} <{tag}> in the source but {in_body} in the body"));
        }
    }
    let session_tokens: BTreeSet<&str> =
        select(&html, "input[name=csrf]").iter().filter_map(|i| i.value().attr("value")).collect();
    if session_tokens.len() > 1 {
        problems.push(format!("the page carries {} different CSRF tokens", session_tokens.len()));
    }
    for form in select(&html, "form") {
        let method = form.value().attr("method").unwrap_or("get");
        let action = form.value().attr("action").unwrap_or("?");
        if !method.eq_ignore_ascii_case("post") {
            continue;
        }
        let token = Selector::parse("input[type=hidden][name=csrf]").expect("a valid selector");
        let carries = form.select(&token).any(|i| i.value().attr("value").is_some_and(|v| !v.is_empty()));
        let exempt = csrf == Csrf::TokenInUrl && action.starts_with("/authorize/");
        if !carries && !exempt {
            problems.push(format!("the POST form to {action} has no csrf field"));
        }
    }
    problems
}

#[tokio::test]
async fn every_page_has_a_plain_title_a_heading_and_its_forms_in_the_body() {
    let f = fixture().await;
    let mut failures = Vec::new();
    let mut fetched = 0;
    for p in PAGES {
        for who in p.who {
            let path = f.path(p);
            let reply = f.browser(*who).get(&path).await;
            fetched += 1;
            if reply.status != StatusCode::OK {
                failures.push(format!(
                    "{who:?} GET {path}: status {} (location {:?})\n{}",
                    reply.status, reply.location, reply.body
                ));
                continue;
            }
            for problem in structure_problems(&reply.body, p.csrf) {
                failures.push(format!("{who:?} GET {path}: {problem}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {fetched} pages are broken:\n{}", failures.len(), failures.join("\n"));
}

/// The GET routes `routes/mod.rs` declares, as written there.
fn router_get_routes() -> BTreeSet<String> {
    let source = include_str!("../src/routes/mod.rs");
    let routes: BTreeSet<String> = source
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(".route(\"") && l.contains("get("))
        .filter_map(|l| l.strip_prefix(".route(\"")?.split('"').next().map(str::to_string))
        .collect();
    assert!(routes.len() > 20, "routes/mod.rs no longer reads as expected: {routes:?}");
    routes
}

#[test]
fn every_get_route_of_the_router_is_listed() {
    let listed: BTreeSet<String> =
        PAGES.iter().map(|p| p.route).chain(NOT_PAGES.iter().map(|(r, _)| *r)).map(str::to_string).collect();
    let routes = router_get_routes();
    let missing: Vec<_> = routes.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&routes).collect();
    assert!(missing.is_empty(), "GET routes with no line in PAGES or NOT_PAGES: {missing:?}");
    assert!(stale.is_empty(), "lines for routes the router no longer has: {stale:?}");
}

#[test]
fn the_check_catches_markup_in_the_title_and_forms_outside_the_body() {
    let sound = "<!doctype html><html><head><title>Health · Gatehouse</title></head><body><h1>Health</h1>\
                 <form method=\"post\" action=\"/x\"><input type=\"hidden\" name=\"csrf\" value=\"t\"><button>Go</button></form></body></html>";
    assert_eq!(structure_problems(sound, Csrf::Session), Vec::<String>::new());
    let swallowed = "<!doctype html><html><head><title>Health<section><form method=\"post\" action=\"/x\">\
                     <input type=\"hidden\" name=\"csrf\" value=\"t\"><button>Go</button></form></section> · Gatehouse</title></head>\
                     <body><h1>Health</h1></body></html>";
    let problems = structure_problems(swallowed, Csrf::Session);
    assert!(problems.iter().any(|p| p.contains("<title> holds markup")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("<form> in the source but 0 in the body")), "{problems:?}");
    let unprotected = "<!doctype html><html><head><title>T</title></head><body><h1>T</h1>\
                       <form method=\"post\" action=\"/x\"><button>Go</button></form></body></html>";
    let problems = structure_problems(unprotected, Csrf::Session);
    assert!(problems.iter().any(|p| p.contains("no csrf field")), "{problems:?}");
}
