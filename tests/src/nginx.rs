//! The README's nginx setup, run for real: Debian's nginx with the configuration the README
//! gives an operator (its ```nginx block, with this test's ports and a fresh self-signed
//! certificate put in), in front of a real relay; and TLS clients that reach it from a loopback
//! address of the caller's choosing (127.0.0.2 and up stand for traders on other machines).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use darkswap_net::libp2p::tcp::tokio::TcpStream as FuturesTcp;
use futures::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::pki_types::{CertificateDer, ServerName};
use futures_rustls::rustls::{ClientConfig, RootCertStore};
use futures_rustls::TlsConnector;
use tokio::net::TcpListener;

use crate::hostile::connect_from;

/// The name the test certificate is for.
pub const SERVER_NAME: &str = "relay.example.org";

/// Debian's nginx binary.
pub const NGINX: &str = "/usr/sbin/nginx";

/// Where Debian's nginx keeps the `stream` module (package libnginx-mod-stream).
pub const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// The README's ```nginx block, as an operator would copy it.
pub fn readme_config() -> Result<String> {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(&readme).context("cannot read README.md")?;
    let start = text
        .find("```nginx\n")
        .ok_or_else(|| anyhow!("README.md has no ```nginx block"))?
        + "```nginx\n".len();
    let len = text[start..]
        .find("```")
        .ok_or_else(|| anyhow!("README.md's ```nginx block does not end"))?;
    Ok(text[start..start + len].to_string())
}

/// Replaces every `from` in `text`, failing when there is none: a README edit that drops what a
/// test relies on must fail the test, not make it test something else.
fn replace_all(text: &str, from: &str, to: &str) -> Result<String> {
    if !text.contains(from) {
        bail!("README's nginx block no longer contains {from:?}");
    }
    Ok(text.replace(from, to))
}

/// A running nginx; stopped when dropped.
pub struct Nginx {
    child: Child,
    /// Where it serves `wss` (the README's 4443).
    pub wss: SocketAddr,
    /// Where it serves `https` (the README's 443).
    pub https: SocketAddr,
    /// The certificate it presents, for clients to trust.
    pub cert: CertificateDer<'static>,
    dir: PathBuf,
}

impl Nginx {
    /// Starts nginx in `dir` with the README's configuration in front of a relay whose
    /// WebSocket port is `ws` and HTTP port `http`, and waits until it accepts connections.
    pub async fn start_from_readme(dir: &Path, ws: SocketAddr, http: SocketAddr) -> Result<Self> {
        Self::start(dir, &readme_config()?, ws, http).await
    }

    /// [`Nginx::start_from_readme`] with another configuration `block`, written as the README's
    /// is (its ports, addresses and certificate paths): an `http` part, and optionally a
    /// `stream { }` part.
    pub async fn start(dir: &Path, block: &str, ws: SocketAddr, http: SocketAddr) -> Result<Self> {
        let generated = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()])?;
        let (cert_pem, key_pem) = (dir.join("fullchain.pem"), dir.join("privkey.pem"));
        std::fs::write(&cert_pem, generated.cert.pem())?;
        std::fs::write(&key_pem, generated.key_pair.serialize_pem())?;
        let wss = SocketAddr::new([127, 0, 0, 1].into(), crate::free_tcp_port());
        let https = SocketAddr::new([127, 0, 0, 1].into(), crate::free_tcp_port());

        let block = replace_all(
            block,
            "/etc/letsencrypt/live/relay.example.org/fullchain.pem",
            &cert_pem.display().to_string(),
        )?;
        let block = replace_all(
            &block,
            "/etc/letsencrypt/live/relay.example.org/privkey.pem",
            &key_pem.display().to_string(),
        )?;
        let block = replace_all(&block, "listen 4443 ssl", &format!("listen {wss} ssl"))?;
        let block = replace_all(&block, "listen 443 ssl", &format!("listen {https} ssl"))?;
        let block = replace_all(&block, "127.0.0.1:4002", &ws.to_string())?;
        let block = replace_all(&block, "127.0.0.1:8080", &http.to_string())?;
        // The README's block goes where Debian's /etc/nginx/nginx.conf includes it: the `http`
        // part in the http context (sites-enabled), the `stream` part at the top level.
        let (http_part, stream_part) =
            block.split_at(block.find("stream {").unwrap_or(block.len()));
        let d = dir.display();
        let conf = format!(
            "load_module {STREAM_MODULE};\n\
             daemon off;\nmaster_process off;\nworker_processes 1;\n\
             error_log {d}/error.log info;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             {http_part}\n}}\n{stream_part}\n"
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| {
                format!("cannot start {NGINX} (Debian's nginx and libnginx-mod-stream)")
            })?;
        let mut nginx = Nginx {
            child,
            wss,
            https,
            cert: generated.cert.der().clone(),
            dir: dir.to_path_buf(),
        };
        nginx.wait_listening().await?;
        Ok(nginx)
    }

    async fn wait_listening(&mut self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("nginx exited ({status}): {}", self.error_log());
            }
            let wss = tokio::net::TcpStream::connect(self.wss).await.is_ok();
            let https = tokio::net::TcpStream::connect(self.https).await.is_ok();
            if wss && https {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("nginx not listening after 10 s: {}", self.error_log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// A TLS connection to `to` (one of nginx's ports) from the loopback address `from`.
    pub async fn tls_from(
        &self,
        from: IpAddr,
        to: SocketAddr,
    ) -> Result<futures_rustls::client::TlsStream<FuturesTcp>> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.clone())?;
        let provider = Arc::new(futures_rustls::rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = FuturesTcp(connect_from(from, to).await?);
        let name = ServerName::try_from(SERVER_NAME)?;
        Ok(TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?)
    }

    /// A plain-TCP entrance on 127.0.0.1 that carries each connection to nginx's `wss` port over
    /// TLS from `from`: a trader's own TLS, for libp2p clients that dial `/ws` to it (the
    /// relay's address then names the entrance; the relay itself is only behind nginx).
    pub async fn wss_entrance_from(self: &Arc<Self>, from: IpAddr) -> Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let entrance = listener.local_addr()?;
        let nginx = self.clone();
        tokio::spawn(async move {
            while let Ok((plain, _)) = listener.accept().await {
                let nginx = nginx.clone();
                tokio::spawn(async move {
                    let Ok(tls) = nginx.tls_from(from, nginx.wss).await else {
                        return;
                    };
                    let (mut tls_r, mut tls_w) = tls.split();
                    let (mut plain_r, mut plain_w) = FuturesTcp(plain).split();
                    let up = async {
                        let _ = futures::io::copy(&mut plain_r, &mut tls_w).await;
                        let _ = tls_w.close().await;
                    };
                    let down = async {
                        let _ = futures::io::copy(&mut tls_r, &mut plain_w).await;
                        let _ = plain_w.close().await;
                    };
                    futures::join!(up, down);
                });
            }
        });
        Ok(entrance)
    }

    /// `GET path` over https from `from`: the status line and the body.
    pub async fn https_get(&self, from: IpAddr, path: &str) -> Result<String> {
        let mut tls = self.tls_from(from, self.https).await?;
        tls.write_all(format!("GET {path} HTTP/1.0\r\nHost: {SERVER_NAME}\r\n\r\n").as_bytes())
            .await?;
        let mut response = String::new();
        tls.read_to_string(&mut response).await?;
        Ok(response)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
