//! A bot's network that can go away for a while: its signaling goes through a TCP relay of
//! its own that, while cut, drops every connection and refuses new ones (as a network that
//! goes away does), and its media socket drops what it sends and receives meanwhile
//! (`Peer::offline_until`). The signaling client then reconnects by itself.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The relay in front of the SFU's signaling for one bot.
#[derive(Debug)]
pub struct Relay {
    pub addr: SocketAddr,
    down_until: watch::Sender<Option<Instant>>,
    task: JoinHandle<()>,
}

fn down(until: Option<Instant>) -> bool {
    until.is_some_and(|t| Instant::now() < t)
}

impl Relay {
    /// A relay on a new loopback port to `upstream` (host:port).
    pub async fn start(upstream: String) -> std::io::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (down_until, watch) = watch::channel(None);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if down(*watch.borrow()) {
                    continue; // refused while cut: dropped at once
                }
                tokio::spawn(relay(client, upstream.clone(), watch.clone()));
            }
        });
        Ok(Relay {
            addr,
            down_until,
            task,
        })
    }

    /// Cuts the network until `until`: open connections drop now, new ones until then.
    pub fn cut(&self, until: Instant) {
        self.down_until.send_replace(Some(until));
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    mut client: TcpStream,
    upstream: String,
    mut watch: watch::Receiver<Option<Instant>>,
) {
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let cut = async {
        loop {
            if watch.changed().await.is_err() || down(*watch.borrow()) {
                return;
            }
        }
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cut => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_cut_drops_connections_and_refuses_new_ones_until_it_ends() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = echo.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 64];
                    while let Ok(n @ 1..) = s.read(&mut b).await {
                        let _ = s.write_all(&b[..n]).await;
                    }
                });
            }
        });
        let relay = Relay::start(upstream).await.unwrap();
        let mut c = TcpStream::connect(relay.addr).await.unwrap();
        c.write_all(b"hi").await.unwrap();
        let mut b = [0u8; 2];
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"hi");

        relay.cut(Instant::now() + Duration::from_millis(300));
        assert_eq!(c.read(&mut b).await.unwrap_or(0), 0, "dropped");
        let mut refused = TcpStream::connect(relay.addr).await.unwrap();
        assert_eq!(
            refused.read(&mut b).await.unwrap_or(0),
            0,
            "refused while cut"
        );

        tokio::time::sleep(Duration::from_millis(350)).await;
        let mut back = TcpStream::connect(relay.addr).await.unwrap();
        back.write_all(b"ok").await.unwrap();
        back.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"ok", "back after the cut");
    }
}
