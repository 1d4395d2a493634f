//! A TCP proxy for outage tests: forwards every connection to a real
//! server until it is set down, then cuts the open connections and refuses
//! new ones until it is set up again; it can also hold every request for a
//! while (slow network), so that a test can act while a request is on its way.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy on `127.0.0.1`; it stops when dropped.
pub struct TcpProxy {
    port: u16,
    up: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
    cut: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on `port` (0 for any free one) and forwards to `upstream`
    /// (`127.0.0.1:PORT`). Must be called inside a Tokio runtime.
    pub async fn start(port: u16, upstream: String) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let up = Arc::new(AtomicBool::new(true));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (cut, _) = watch::channel(0u64);
        let (accept_up, accept_cut) = (Arc::clone(&up), cut.clone());
        let accept_delay = Arc::clone(&delay_ms);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accept_up.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let upstream = upstream.clone();
                let mut cuts = accept_cut.subscribe();
                let delay_ms = Arc::clone(&accept_delay);
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut server_read, server_write) = server.into_split();
                    let (mut client_read, mut client_write) = client.split();
                    tokio::select! {
                        _ = forward_delayed(&mut client_read, server_write, &delay_ms) => {}
                        _ = tokio::io::copy(&mut server_read, &mut client_write) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Self {
            port,
            up,
            delay_ms,
            cut,
            task,
        }
    }

    /// Holds every piece of every request for `delay` before passing it on.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The port the proxy listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cuts every open connection and refuses new ones (`false`), or
    /// forwards again (`true`).
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            self.cut.send_modify(|generation| *generation += 1);
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to`, holding each piece read for the proxy's delay.
async fn forward_delayed(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay_ms: &AtomicU64,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let delay = delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
