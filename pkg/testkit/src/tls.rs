//! A private certificate authority made for one test: a CA, a server certificate for
//! `localhost`/`127.0.0.1` and a client certificate, written as PEM files in a temporary
//! directory (rcgen; no `openssl` tool needed).

use std::io;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// PEM files of a fresh private CA and the certificates it signed. The directory is removed on
/// drop.
#[derive(Debug)]
pub struct TestPki {
    dir: tempfile::TempDir,
}

impl TestPki {
    /// The CA certificate.
    pub const CA: &str = "ca.pem";
    /// The server certificate (SANs `localhost` and `127.0.0.1`).
    pub const SERVER_CERT: &str = "server.pem";
    /// The server's private key.
    pub const SERVER_KEY: &str = "server-key.pem";
    /// The client certificate (for mutual TLS).
    pub const CLIENT_CERT: &str = "client.pem";
    /// The client's private key.
    pub const CLIENT_KEY: &str = "client-key.pem";

    /// Make a CA, a server and a client certificate signed by it, and write them.
    ///
    /// # Errors
    /// When a key or certificate cannot be made or a file cannot be written.
    pub fn generate() -> io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut ca = CertificateParams::default();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "astrolabe test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().map_err(io::Error::other)?)
            .map_err(io::Error::other)?;
        std::fs::write(dir.path().join(Self::CA), ca.pem())?;

        let leaves = [
            (
                Self::SERVER_CERT,
                Self::SERVER_KEY,
                ExtendedKeyUsagePurpose::ServerAuth,
                "localhost",
            ),
            (
                Self::CLIENT_CERT,
                Self::CLIENT_KEY,
                ExtendedKeyUsagePurpose::ClientAuth,
                "astrolabe",
            ),
        ];
        for (cert_file, key_file, usage, name) in leaves {
            let mut params = CertificateParams::new(vec![name.to_owned(), "127.0.0.1".to_owned()])
                .map_err(io::Error::other)?;
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().map_err(io::Error::other)?;
            let cert = params.signed_by(&key, &ca).map_err(io::Error::other)?;
            std::fs::write(dir.path().join(cert_file), cert.pem())?;
            std::fs::write(dir.path().join(key_file), key.serialize_pem())?;
        }
        Ok(Self { dir })
    }

    /// The path of one of the files ([`Self::CA`], [`Self::SERVER_CERT`], …).
    #[must_use]
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// The directory holding the files.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
