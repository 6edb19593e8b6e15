//! Mutual TLS (rustls, with ring): peer links where both ends show a certificate from the
//! cluster's CA, and the certificate names the node. A node's certificate is valid for the
//! DNS name `n{id}.{cluster_id}` ([`peer_name`]): a dialer checks it of the node it dials
//! (rustls checks the name), and an acceptor checks it of the node the handshake claims to be.
//! The same certificate serves HTTPS, so it also names `localhost` and 127.0.0.1.
//!
//! [`generate`] writes a throwaway CA and certificates for a local cluster (`cluster --tls`).

use consensus_core::NodeId;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The DNS name a node's certificate is valid for.
pub fn peer_name(cluster_id: &str, id: NodeId) -> String {
    format!("n{id}.{cluster_id}")
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The certificates or key do not make a configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Where a node's TLS material lives: the cluster's CA certificate, the node's certificate
/// (chain) and its private key, all PEM.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TlsFiles {
    /// The CA that signed every node's (and client's) certificate.
    pub ca: PathBuf,
    /// This node's certificate.
    pub cert: PathBuf,
    /// This node's private key.
    pub key: PathBuf,
}

/// What a node needs to speak TLS: its configurations, built once.
#[derive(Clone)]
pub struct Tls {
    cluster_id: String,
    roots: Arc<RootCertStore>,
    certs: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    peer_acceptor: TlsAcceptor,
    connector: TlsConnector,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tls {{ cluster_id: {:?} }}", self.cluster_id)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn certs_of(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::File {
            path: path.to_path_buf(),
            reason: format!("not PEM certificates: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::File {
            path: path.to_path_buf(),
            reason: "holds no certificate".into(),
        });
    }
    Ok(certs)
}

fn key_of(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(&read(path)?).map_err(|e| TlsError::File {
        path: path.to_path_buf(),
        reason: format!("not a PEM private key: {e}"),
    })
}

fn config_error(e: impl std::fmt::Display) -> TlsError {
    TlsError::Config(e.to_string())
}

fn roots_of(ca: Vec<CertificateDer<'static>>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in ca {
        roots.add(c).map_err(config_error)?;
    }
    Ok(roots)
}

/// A server configuration showing `certs`, that checks client certificates against `roots`
/// and requires one unless `anonymous_clients`.
fn server_config(
    roots: &Arc<RootCertStore>,
    certs: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    anonymous_clients: bool,
) -> Result<ServerConfig, TlsError> {
    let builder = WebPkiClientVerifier::builder(Arc::clone(roots));
    let verifier = if anonymous_clients {
        builder.allow_unauthenticated().build()
    } else {
        builder.build()
    }
    .map_err(config_error)?;
    ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs.to_vec(), key.clone_key())
        .map_err(config_error)
}

impl Tls {
    /// Loads the files and builds the configurations; errors name the file.
    pub fn load(files: &TlsFiles, cluster_id: &str) -> Result<Tls, TlsError> {
        Self::new(
            certs_of(&files.ca)?,
            certs_of(&files.cert)?,
            key_of(&files.key)?,
            cluster_id,
        )
    }

    /// Builds the configurations from parsed material.
    pub fn new(
        ca: Vec<CertificateDer<'static>>,
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        cluster_id: &str,
    ) -> Result<Tls, TlsError> {
        let roots = Arc::new(roots_of(ca)?);
        let server = server_config(&roots, &certs, &key, false)?;
        let client = ClientConfig::builder()
            .with_root_certificates(Arc::clone(&roots))
            .with_client_auth_cert(certs.clone(), key.clone_key())
            .map_err(config_error)?;
        Ok(Tls {
            cluster_id: cluster_id.to_string(),
            roots,
            certs,
            key: Arc::new(key),
            peer_acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }

    /// The acceptor for HTTPS: a client certificate from the CA is required (`required`) or
    /// optional (checked when shown).
    pub fn http_acceptor(&self, required: bool) -> Result<TlsAcceptor, TlsError> {
        let mut server = server_config(&self.roots, &self.certs, &self.key, !required)?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(server)))
    }

    /// The connector this node dials with (its certificate as the client's).
    pub fn connector(&self) -> TlsConnector {
        self.connector.clone()
    }

    /// TLS on an accepted peer connection.
    pub(crate) async fn accept(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
        self.peer_acceptor.accept(stream).await
    }

    /// TLS on a connection to peer `peer`, whose certificate must name it.
    pub(crate) async fn connect(
        &self,
        peer: NodeId,
        stream: TcpStream,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let name = ServerName::try_from(peer_name(&self.cluster_id, peer))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        self.connector.connect(name, stream).await
    }

    /// Checks that the certificate a peer showed names node `claimed` of this cluster.
    pub(crate) fn check_peer(
        &self,
        certs: Option<&[CertificateDer<'_>]>,
        claimed: NodeId,
    ) -> Result<(), String> {
        let cert = certs
            .and_then(|c| c.first())
            .ok_or_else(|| format!("node {claimed} showed no certificate"))?;
        let name = peer_name(&self.cluster_id, claimed);
        let server_name = ServerName::try_from(name.clone()).map_err(|e| e.to_string())?;
        webpki::EndEntityCert::try_from(cert)
            .map_err(|e| format!("node {claimed}'s certificate does not parse: {e}"))?
            .verify_is_valid_for_subject_name(&server_name)
            .map_err(|_| format!("the certificate shown for node {claimed} is not {name}'s"))
    }
}

/// A connector for an HTTPS client of the cluster: it trusts `ca` and, given a certificate
/// and key, authenticates with them.
pub fn client_connector(
    ca: &Path,
    cert_and_key: Option<(&Path, &Path)>,
) -> Result<TlsConnector, TlsError> {
    let builder = ClientConfig::builder().with_root_certificates(roots_of(certs_of(ca)?)?);
    let config = match cert_and_key {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(certs_of(cert)?, key_of(key)?)
            .map_err(config_error)?,
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The files [`generate`] writes for one node, under `dir`.
pub fn node_files(dir: &Path, id: NodeId) -> TlsFiles {
    TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join(format!("n{id}.pem")),
        key: dir.join(format!("n{id}.key")),
    }
}

/// Writes a throwaway CA (`ca.pem`, `ca.key`) and a certificate and key for each node
/// (`n{id}.pem`, `n{id}.key`, valid for [`peer_name`], `localhost` and 127.0.0.1) and for a
/// client (`client.pem`, `client.key`) into `dir`.
pub fn generate(dir: &Path, cluster_id: &str, nodes: &[NodeId]) -> Result<(), TlsError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    std::fs::create_dir_all(dir).map_err(|e| TlsError::File {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| TlsError::File {
            path,
            reason: e.to_string(),
        })
    };
    let ca_key = KeyPair::generate().map_err(config_error)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(config_error)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{cluster_id} CA"));
    let ca = ca_params.self_signed(&ca_key).map_err(config_error)?;
    write("ca.pem", ca.pem())?;
    write("ca.key", ca_key.serialize_pem())?;
    let issuer = Issuer::new(ca_params, ca_key);
    let sign = |file: &str, names: Vec<String>| -> Result<(), TlsError> {
        let key = KeyPair::generate().map_err(config_error)?;
        let mut params = CertificateParams::new(names).map_err(config_error)?;
        params
            .distinguished_name
            .push(DnType::CommonName, file.to_string());
        let cert = params.signed_by(&key, &issuer).map_err(config_error)?;
        write(&format!("{file}.pem"), cert.pem())?;
        write(&format!("{file}.key"), key.serialize_pem())
    };
    for &id in nodes {
        sign(
            &format!("n{id}"),
            vec![
                peer_name(cluster_id, id),
                "localhost".into(),
                "127.0.0.1".into(),
            ],
        )?;
    }
    sign("client", vec![format!("client.{cluster_id}")])
}
