//! YubiKey OTP: the key types a one-time password when touched; YubiCloud (or a
//! self-hosted validation server) checks it with Yubico's validation protocol 2.0
//! ([`client`]).

pub mod client;
pub mod otp;
