//! The second-factor form, shared by the login (`/login/factor`) and the confirmation a
//! change of credentials asks for (`/account/confirm`): the page for one method with
//! links to the others, and the check of an answer. Both go through
//! `gatehouse_core::login::challenge` and `login::answer`, so an answer here counts
//! towards the lockout and is audited exactly as at the login.

use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_core::Gateway;
use gatehouse_core::factors::{Challenge, LoginContext, Method, Verdict, webauthn};
use gatehouse_core::login;
use gatehouse_core::users::User;

use crate::error::{WebError, WebResult};
use crate::render::{Chrome, Notice, page};

use gatehouse_core::login::slow_down;

/// How long one web request waits for an approval before the page asks again.
const WEB_WAIT: std::time::Duration = std::time::Duration::from_secs(25);

#[derive(askama::Template)]
#[template(path = "factor.html")]
struct FactorPage {
    c: Chrome,
    csrf: String,
    user: String,
    /// Where the form goes: `/login/factor` or `/account/confirm`.
    action: &'static str,
    /// A confirmation: the page where the change waits (carried in the form), and no
    /// offer to trust the browser.
    confirming: bool,
    next: String,
    method: &'static str,
    label: &'static str,
    numeric: bool,
    instructions: String,
    /// A follow-up round (RADIUS Access-Challenge): the server's State, hex, sent back
    /// with the next answer. Empty otherwise.
    state: String,
    /// Other usable methods: (link, label).
    others: Vec<(String, &'static str)>,
    /// The method can be approved elsewhere (link in a mail, push): the page offers to
    /// wait for that, and the code field is optional.
    can_wait: bool,
    /// For a security key: the ceremony the answer belongs to and the options for the
    /// browser (JSON); empty otherwise.
    ceremony: String,
    options: String,
    n: Notice,
}

/// Where a factor is asked, and of whom.
pub struct Step<'a> {
    pub user: &'a User,
    /// The methods the user may pass, the default first.
    pub methods: &'a [Method],
    pub ctx: LoginContext,
    pub csrf: &'a str,
    /// `None` at the login; at a confirmation, the layout of the logged-in user and the
    /// local path to return to.
    pub confirm: Option<(Chrome, &'a str)>,
}

impl Step<'_> {
    /// `method` if it is one of the user's, else the default.
    pub fn choose(&self, method: Option<&str>) -> Option<Method> {
        method
            .and_then(|m| m.parse::<Method>().ok())
            .filter(|m| self.methods.contains(m))
            .or_else(|| self.methods.first().copied())
    }

    fn action(&self) -> &'static str {
        if self.confirm.is_some() { "/account/confirm" } else { "/login/factor" }
    }

    /// The link that switches this page to `method`.
    fn link(&self, method: Method) -> String {
        let mut query = vec![("method", method.as_str())];
        if let Some((_, next)) = &self.confirm {
            query.push(("next", next));
        }
        format!("{}?{}", self.action(), serde_urlencoded::to_string(query).unwrap_or_default())
    }

    /// The page asking for `chosen`, with a new challenge (which mails a code or sends a
    /// push for methods that do).
    pub async fn ask(&self, gw: &Gateway, chosen: Method, status: StatusCode, n: Notice) -> WebResult {
        let (instructions, can_wait, webauthn) = match login::challenge(gw, &self.ctx, self.user, chosen).await? {
            Some(ch) => (ch.instructions, ch.can_wait, ch.webauthn.map(|w| (w.ceremony, w.options))),
            None => (format!("{} is not available on this gateway. Use another method.", chosen.label()), false, None),
        };
        self.render(chosen, status, n, Prompt { instructions, state: String::new(), can_wait, webauthn })
    }

    /// The follow-up round of a method that asked another question: its question above
    /// the form, its State carried in the form.
    fn follow_up(&self, challenge: &Challenge) -> WebResult {
        let question = challenge.prompt.trim().trim_end_matches(':').to_string();
        let state = challenge.state.as_deref().map(hex::encode).unwrap_or_default();
        self.render(
            challenge.method,
            StatusCode::OK,
            Notice::none(),
            Prompt { instructions: question, state, can_wait: false, webauthn: None },
        )
    }

    fn render(&self, chosen: Method, status: StatusCode, n: Notice, p: Prompt) -> WebResult {
        let (ceremony, options) = p.webauthn.unwrap_or_default();
        let (c, next) = match &self.confirm {
            Some((chrome, next)) => (chrome.clone(), next.to_string()),
            None => (Chrome::anonymous(), String::new()),
        };
        Ok(page(
            status,
            &FactorPage {
                c,
                csrf: self.csrf.to_string(),
                user: self.user.name.clone(),
                action: self.action(),
                confirming: self.confirm.is_some(),
                next,
                method: chosen.as_str(),
                label: chosen.label(),
                numeric: matches!(chosen, Method::Totp | Method::Email),
                instructions: p.instructions,
                state: p.state,
                others: self.methods.iter().filter(|m| **m != chosen).map(|m| (self.link(*m), m.label())).collect(),
                can_wait: p.can_wait,
                ceremony,
                options,
                n,
            },
        ))
    }

    /// Checks one answer of the form. [`Outcome::Page`] is the page to show instead (the
    /// error, or the next round); the caller handles the other outcomes.
    pub async fn check(&self, gw: &Gateway, a: Answer<'_>) -> WebResult<Outcome> {
        let Some(method) = a.method.parse::<Method>().ok().filter(|m| self.methods.contains(m)) else {
            return Err(WebError::BadRequest("That method is not one of yours.".into()));
        };
        if a.code.trim().is_empty() && !a.wait {
            let msg = if method == Method::Webauthn { "Use your security key." } else { "Enter the code." };
            return Ok(Outcome::Page(self.ask(gw, method, StatusCode::BAD_REQUEST, Notice::error("code", msg)).await?));
        }
        let challenge = if method == Method::Webauthn {
            // The answer belongs to the ceremony the page began; core binds it to this login.
            Some(webauthn::answering(&self.ctx, a.ceremony))
        } else {
            login::challenge(gw, &self.ctx, self.user, method).await?
        };
        let Some(mut challenge) = challenge else {
            return Err(WebError::BadRequest("That method is not available.".into()));
        };
        // Only a State the server can check (its own, at most one attribute long) is sent back.
        if method == Method::Radius && !a.state.is_empty() {
            challenge.state = hex::decode(a.state.trim()).ok().filter(|st| !st.is_empty() && st.len() <= 253);
        }
        let started = tokio::time::Instant::now();
        let verdict = if a.wait {
            if !challenge.can_wait {
                return Err(WebError::BadRequest("That method has nothing to wait for.".into()));
            }
            login::wait(gw, &self.ctx, self.user, &mut challenge, WEB_WAIT).await?
        } else {
            login::answer(gw, &self.ctx, self.user, &mut challenge, a.code).await?
        };
        let msg: String = match verdict {
            Verdict::Accepted => return Ok(Outcome::Passed(method)),
            Verdict::Pending if a.wait => "Not approved yet. Wait again, or enter the code.".into(),
            // Denied where it is approved ("this was not me").
            Verdict::Rejected if a.wait => return Ok(Outcome::Denied),
            Verdict::Continue => return Ok(Outcome::Page(self.follow_up(&challenge)?)),
            verdict => {
                slow_down(started).await;
                match login::lock_in_force(gw, &self.ctx).await? {
                    Some(lock) => login::lock_text(lock),
                    None => match verdict {
                        Verdict::Rejected | Verdict::Pending if a.wait => "The login was not approved.".into(),
                        v => login::verdict_text(v).unwrap_or("The login was not approved.").into(),
                    },
                }
            }
        };
        let status = if verdict == Verdict::Pending { StatusCode::ACCEPTED } else { StatusCode::UNAUTHORIZED };
        Ok(Outcome::Page(self.ask(gw, method, status, Notice::error("code", msg)).await?))
    }
}

/// The fields of a factor form that [`Step::check`] reads.
pub struct Answer<'a> {
    pub method: &'a str,
    pub code: &'a str,
    /// The State of a follow-up round, as the page put it in the form.
    pub state: &'a str,
    /// Wait for the approval given elsewhere instead of checking a code.
    pub wait: bool,
    /// For a security key: the ceremony the page began (the answer is in `code`).
    pub ceremony: &'a str,
}

/// What the page for one method shows besides the form.
struct Prompt {
    instructions: String,
    /// The State of a follow-up round, hex; empty otherwise.
    state: String,
    can_wait: bool,
    /// For a security key: the ceremony id and the browser's options.
    webauthn: Option<(String, String)>,
}

/// What an answer led to.
pub enum Outcome {
    Passed(Method),
    /// Show this page (an error, or the next question).
    Page(Response),
    /// The approval was refused where it is given (the push or link denied).
    Denied,
}
