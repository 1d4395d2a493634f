//! TLS for every client the engine opens: rustls with the ring provider
//! (the AWS SDKs, S3 through object_store, reqwest, PostgreSQL), so that
//! no C crypto library (aws-lc) is part of the build.

/// Installs ring as the process's default rustls provider, which reqwest
/// and object_store build their TLS settings from. Does nothing when a
/// provider is installed already.
pub fn install_default_provider() {
    // An error only says that a provider is installed already: keep it.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
