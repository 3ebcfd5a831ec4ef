//! Throwaway TLS certificates for the directory servers ([`super::ldap::Slapd`],
//! [`super::samba::SambaDc`]), made with the `openssl` CLI: a CA the client trusts, another
//! it does not, and a server certificate for one loopback address.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::process::{describe, run_with_timeout};

const OPENSSL_TIMEOUT: Duration = Duration::from_secs(20);

/// Which server certificate [`make_certificates`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerCert {
    /// For the address (and `localhost`), signed by the CA in `ca.pem`.
    Trusted,
    /// For the address, signed by the CA in `other-ca.pem`: a client trusting `ca.pem`
    /// must refuse it.
    OtherCa,
    /// Signed by `ca.pem` but for `wrong.invalid` only: a client checking the name must
    /// refuse it.
    WrongName,
}

/// Writes into `dir`: `ca.pem`/`ca.key` (the CA a client trusts), `other-ca.pem`/
/// `other-ca.key` (one it does not), and `server.pem`/`server.key` as `cert` says, for
/// the IP address `ip` (an IP SAN, which rustls needs to accept a URL with an address).
/// P-256 keys: fast to make, and GnuTLS (slapd, Samba) and rustls (the gateway) take them.
pub fn make_certificates(dir: &Path, ip: &str, cert: ServerCert) {
    for (name, cn) in [("ca", "Gatehouse test directory CA"), ("other-ca", "Some other CA")] {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-subj",
                &format!("/CN={cn}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
    }
    let (subject, names) = match cert {
        ServerCert::WrongName => ("wrong.invalid".to_string(), "DNS:wrong.invalid".to_string()),
        _ => (ip.to_string(), format!("IP:{ip},DNS:localhost")),
    };
    std::fs::write(
        dir.join("server.ext"),
        format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n\
             subjectAltName={names}\n"
        ),
    )
    .expect("writing the certificate extensions");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            &format!("/CN={subject}"),
        ],
    );
    let signer = if cert == ServerCert::OtherCa { "other-ca" } else { "ca" };
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{signer}.pem"),
            "-CAkey",
            &format!("{signer}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = run_with_timeout(Command::new("openssl").current_dir(dir).args(args), None, OPENSSL_TIMEOUT);
    assert!(out.status.success(), "openssl {} failed:\n{}", args.join(" "), describe(&out));
}
