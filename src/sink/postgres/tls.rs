//! How the `postgres` sink connects: plain TCP, or TLS through rustls when
//! the connection string asks for it (`sslmode=require`).
//!
//! With TLS the server's certificate is always verified against the system's
//! trusted roots plus an optional `ca_file` (PEM), and its name must match
//! the host; this is stricter than libpq's `require`, which encrypts without
//! verifying. libpq's `verify-ca`/`verify-full` are therefore spelled
//! `require` here, and the connection-string check says so.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, Connection, NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Parses a connection string (`postgres://…` or `key=value …`) into a
/// driver configuration; the error names the bad part, never the password.
pub fn parse_url(url: &str) -> Result<Config, String> {
    url.parse::<Config>().map_err(|e| {
        let mut message = format!("invalid PostgreSQL connection string: {e}");
        if url.contains("verify-full") || url.contains("verify-ca") {
            message.push_str(
                "; use sslmode=require: dynamo-cdc always verifies the server's certificate \
                 (add ca_file for a private CA)",
            );
        }
        if url.contains("sslrootcert") {
            message.push_str("; set the sink's ca_file instead of sslrootcert");
        }
        message
    })
}

/// Opens connections for one sink: the parsed connection string, and the TLS
/// setup when TLS is asked for.
#[derive(Clone)]
pub struct Connector {
    config: Config,
    tls: Option<MakeRustlsConnect>,
}

/// A connection's background task, boxed so plain and TLS ones look alike.
pub type ConnectionTask =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send>>;

impl Connector {
    /// Prepares connections for `url`: TLS with the system roots (and
    /// `ca_file` when given) if `sslmode` is `require`, plain otherwise.
    /// Fails on a bad connection string or an unreadable CA file.
    pub fn new(url: &str, ca_file: Option<&Path>) -> Result<Self, String> {
        let config = parse_url(url)?;
        let tls = match config.get_ssl_mode() {
            SslMode::Require => Some(MakeRustlsConnect::new(client_config(ca_file)?)),
            // `prefer` (tokio-postgres's default) and `disable`: no TLS.
            _ => {
                if ca_file.is_some() {
                    return Err(
                        "ca_file is set but the connection string does not ask for TLS: add sslmode=require"
                            .into(),
                    );
                }
                None
            }
        };
        Ok(Self { config, tls })
    }

    /// Whether connections use TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Opens one connection; the caller spawns the returned task.
    pub async fn connect(&self) -> Result<(Client, ConnectionTask), tokio_postgres::Error> {
        match &self.tls {
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                Ok((client, boxed(connection)))
            }
            None => {
                let (client, connection) = self.config.connect(NoTls).await?;
                Ok((client, boxed(connection)))
            }
        }
    }
}

fn boxed<T>(connection: Connection<Socket, T>) -> ConnectionTask
where
    T: tokio_postgres::tls::TlsStream + Unpin + Send + 'static,
{
    Box::pin(connection)
}

/// A rustls client configuration trusting the system's roots and `ca_file`.
fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    // Unreadable system stores are not fatal when a CA file is given.
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("ca_file {}: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "ca_file {}: no PEM certificate in it",
                path.display()
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        }
    } else if added == 0 {
        return Err(
            "sslmode=require but no trusted root certificate was found on this system: set ca_file"
                .into(),
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_unless_tls_is_required() {
        let plain = Connector::new("host=127.0.0.1 user=postgres", None).expect("plain");
        assert!(!plain.uses_tls());
        let disabled =
            Connector::new("postgres://u:p@127.0.0.1/db?sslmode=disable", None).expect("disabled");
        assert!(!disabled.uses_tls());
        let tls = Connector::new("postgres://u:p@127.0.0.1/db?sslmode=require", None);
        // Hosts without system roots fail with a message naming ca_file.
        match tls {
            Ok(connector) => assert!(connector.uses_tls()),
            Err(message) => assert!(message.contains("ca_file"), "{message}"),
        }
    }

    #[test]
    fn errors_name_the_problem_not_the_password() {
        let Err(message) = parse_url("postgres://u:hunter2@h/db?sslmode=verify-full") else {
            panic!("verify-full is not a tokio-postgres mode");
        };
        assert!(message.contains("sslmode=require"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        let Err(message) = Connector::new("host=h user=u", Some(Path::new("/nonexistent"))) else {
            panic!("ca_file without TLS");
        };
        assert!(message.contains("sslmode=require"), "{message}");
        let Err(message) = Connector::new(
            "host=h user=u sslmode=require",
            Some(Path::new("/nonexistent/ca.pem")),
        ) else {
            panic!("missing CA file");
        };
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");
    }
}
