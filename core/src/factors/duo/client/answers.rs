//! Duo's answers: its envelope (`{"stat":"OK","response":…}` or
//! `{"stat":"FAIL","code":…,"message":…}`) and the `response` of each call the gateway
//! makes, read into types that hold only what the gateway uses.

use serde::Deserialize;

use super::DuoError;

/// One enrolled device, as preauth lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Device {
    /// Duo's device id (`DP…`).
    pub device: String,
    /// `phone`, `token`, `desktopauthenticator`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    /// E.g. `iOS (XXX-XXX-0100)`.
    pub display_name: String,
    /// `push`, `sms`, `phone`, `mobile_otp`, `auto`, …
    pub capabilities: Vec<String>,
}

impl Device {
    pub fn can_push(&self) -> bool {
        self.capabilities.iter().any(|c| c == "push")
    }

    /// How the device is shown to its owner.
    pub fn label(&self) -> &str {
        [&self.display_name, &self.name, &self.kind]
            .into_iter()
            .find(|s| !s.is_empty())
            .map(String::as_str)
            .unwrap_or("device")
    }
}

/// Duo's answer to preauth: what this user must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preauth {
    /// A second factor is needed, with one of these devices (or a passcode).
    Auth { devices: Vec<Device> },
    /// Duo lets the user through without a second factor (bypass, or a policy that allows
    /// unenrolled users).
    Allow { status_msg: String },
    /// Duo refuses this user (locked out, disabled, policy).
    Deny { status_msg: String },
    /// The user has no device at Duo yet; they may enroll at the portal address.
    Enroll { status_msg: String, enroll_portal_url: String },
}

/// The state of an authentication, as `auth` and `auth_status` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Deny,
    /// A push not answered yet.
    Waiting,
}

/// `auth` (passcode) and `auth_status` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    /// Duo's detail: `allow`, `bypass`, `deny`, `fraud`, `timeout`, `pushed`, …
    pub status: String,
    /// Duo's sentence about it, fit to show the user.
    pub status_msg: String,
}

#[derive(Deserialize)]
struct RawDecision {
    result: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    status_msg: String,
}

impl RawDecision {
    fn decision(self) -> Result<Decision, DuoError> {
        let outcome = match self.result.as_str() {
            "allow" => Outcome::Allow,
            "deny" => Outcome::Deny,
            "waiting" => Outcome::Waiting,
            other => return Err(DuoError::Unexpected(format!("result '{}'", crate::audit::printable(other)))),
        };
        Ok(Decision { outcome, status: self.status, status_msg: self.status_msg })
    }
}

#[derive(Deserialize)]
struct RawPreauth {
    result: String,
    #[serde(default)]
    status_msg: String,
    #[serde(default)]
    enroll_portal_url: String,
    #[serde(default)]
    devices: Vec<Device>,
}

/// Duo's envelope around an answer: the `response` when `stat` is OK. Public, like the
/// `parse_*` functions after it, so that the fuzz targets (`fuzz/`) can feed it any body.
#[doc(hidden)]
pub fn interpret(status: u16, body: &[u8]) -> Result<serde_json::Value, DuoError> {
    #[derive(Deserialize)]
    struct Envelope {
        stat: String,
        #[serde(default)]
        response: serde_json::Value,
        #[serde(default)]
        code: u32,
        #[serde(default)]
        message: String,
    }
    if status >= 500 || status == 429 {
        return Err(DuoError::ServerError(status));
    }
    let envelope: Envelope = serde_json::from_slice(body).map_err(|_| DuoError::NotJson(status))?;
    match envelope.stat.as_str() {
        "OK" if status == 200 => Ok(envelope.response),
        "FAIL" => {
            // Duo's message reaches the logs and the health page: no control and no bidi
            // formatting character (the one rule of `text`), and not too much of it.
            let message: String = envelope.message.chars().filter(|&c| !crate::text::is_unsafe(c)).take(200).collect();
            Err(DuoError::Refused { status, code: envelope.code, message })
        }
        _ => {
            Err(DuoError::Unexpected(format!("HTTP {status} with stat '{}'", crate::audit::printable(&envelope.stat))))
        }
    }
}

/// The `response` read as `T`; a shape Duo does not send is [`DuoError::Unexpected`].
pub(super) fn parse<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, DuoError> {
    serde_json::from_value(v).map_err(|e| DuoError::Unexpected(e.to_string()))
}

/// The `response` of `preauth`.
#[doc(hidden)]
pub fn parse_preauth(v: serde_json::Value) -> Result<Preauth, DuoError> {
    let raw: RawPreauth = parse(v)?;
    Ok(match raw.result.as_str() {
        "auth" => Preauth::Auth { devices: raw.devices },
        "allow" => Preauth::Allow { status_msg: raw.status_msg },
        "deny" => Preauth::Deny { status_msg: raw.status_msg },
        "enroll" => Preauth::Enroll { status_msg: raw.status_msg, enroll_portal_url: raw.enroll_portal_url },
        other => return Err(DuoError::Unexpected(format!("preauth result '{}'", crate::audit::printable(other)))),
    })
}

/// The `response` of `auth` (passcode) and `auth_status`.
#[doc(hidden)]
pub fn parse_decision(v: serde_json::Value) -> Result<Decision, DuoError> {
    parse::<RawDecision>(v)?.decision()
}

/// The `response` of an asynchronous `auth` (push): the transaction id, which goes back
/// to Duo in a query string, so only a short id of letters, digits and `-` is taken.
#[doc(hidden)]
pub fn parse_txid(v: serde_json::Value) -> Result<String, DuoError> {
    #[derive(Deserialize)]
    struct Started {
        txid: String,
    }
    let started: Started = parse(v)?;
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '-';
    if started.txid.is_empty() || started.txid.len() > 128 || !started.txid.chars().all(valid) {
        return Err(DuoError::Unexpected("a push without a usable txid".into()));
    }
    Ok(started.txid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_duos_envelope() {
        let ok = interpret(200, br#"{"stat":"OK","response":{"time":1357020061}}"#).unwrap();
        assert_eq!(ok["time"], 1357020061);
        let refused =
            interpret(401, br#"{"stat":"FAIL","code":40103,"message":"Invalid signature in request credentials"}"#);
        let err = refused.unwrap_err();
        assert_eq!(
            err,
            DuoError::Refused { status: 401, code: 40103, message: "Invalid signature in request credentials".into() }
        );
        assert!(!err.is_outage(), "a refusal is not an outage: fail_open must not let it through");
        assert_eq!(interpret(503, b"<html>down</html>"), Err(DuoError::ServerError(503)));
        assert_eq!(
            interpret(429, br#"{"stat":"FAIL","code":42901,"message":"Too Many Requests"}"#),
            Err(DuoError::ServerError(429))
        );
        assert_eq!(interpret(200, b"<html>captive portal</html>"), Err(DuoError::NotJson(200)));
        assert!(
            DuoError::NotJson(200).is_outage()
                && DuoError::TimedOut.is_outage()
                && DuoError::ServerError(500).is_outage()
        );
        assert!(matches!(interpret(200, br#"{"stat":"MAYBE"}"#), Err(DuoError::Unexpected(_))));
        assert!(!DuoError::Unexpected(String::new()).is_outage());
    }

    #[test]
    fn a_refusal_message_keeps_no_bidi_or_control_character() {
        // The body the duo_response fuzz target's assertion refused: U+202E reorders a log line.
        let err = interpret(400, br#"{"stat":"FAIL","code":1,"message":"a\u202eb\u061cc\u001b[2Jd"}"#).unwrap_err();
        assert_eq!(err, DuoError::Refused { status: 400, code: 1, message: "abc[2Jd".into() });
    }

    #[test]
    fn reads_decisions() {
        let d = |json: &str| serde_json::from_str::<RawDecision>(json).unwrap().decision();
        assert_eq!(
            d(r#"{"result":"allow","status":"allow","status_msg":"Success. Logging you in..."}"#).unwrap().outcome,
            Outcome::Allow
        );
        assert_eq!(
            d(r#"{"result":"waiting","status":"pushed","status_msg":"Pushed a login request to your device..."}"#)
                .unwrap()
                .outcome,
            Outcome::Waiting
        );
        let deny = d(r#"{"result":"deny","status":"timeout","status_msg":"Login timed out."}"#).unwrap();
        assert_eq!((deny.outcome, deny.status.as_str()), (Outcome::Deny, "timeout"));
        assert!(d(r#"{"result":"perhaps"}"#).is_err());
        let device: Device = serde_json::from_str(
            r#"{"device":"DPFZRS9FB0D46QFTM891","type":"phone","number":"XXX-XXX-0100","name":"","display_name":"iOS (XXX-XXX-0100)","capabilities":["auto","push","sms"]}"#,
        )
        .unwrap();
        assert!(device.can_push());
        assert_eq!(device.label(), "iOS (XXX-XXX-0100)");
    }
}
