//! Duo (Auth API v2): Duo decides, through its own [`client`].

pub mod client;
