//! The TCP transport's contract on loopback: frames arrive intact and in order on one
//! connection; a peer that sends garbage, lacks the cluster secret, lies about who it is
//! or forges a frame loses its connection and nothing else. Waits are bounded.
#![cfg(not(madsim))]

use phantomdb::io::transport::auth::{self, ClusterSecret, CHALLENGE_BYTES};
use phantomdb::io::transport::{Frame, TcpTransport};
use phantomdb::io::Transport;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(10);

fn secret(s: &str) -> ClusterSecret {
    ClusterSecret::new(s.as_bytes().to_vec())
}

/// Connects to `addr` as node `from`, answering the challenge with `key`.
async fn handshake(addr: SocketAddr, from: u64, key: &ClusterSecret) -> (TcpStream, auth::Sealer) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut challenge = [0u8; CHALLENGE_BYTES];
    s.read_exact(&mut challenge).await.unwrap();
    let (hello, sealer) = auth::answer(key, &challenge, [1; 16], from).unwrap();
    s.write_all(&Frame { from, payload: hello }.encode()).await.unwrap();
    (s, sealer)
}

async fn assert_closed(stream: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 64];
    loop {
        let read = tokio::time::timeout(WAIT, stream.read(&mut buf)).await;
        match read {
            Err(_) => panic!("{what}: connection still open after {WAIT:?}"),
            Ok(Ok(0) | Err(_)) => return,
            // The challenge may still be unread.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn frames_arrive_in_order_and_bad_peers_are_cut_off() {
    let la = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peers = BTreeMap::from([(1, la.local_addr().unwrap()), (2, lb.local_addr().unwrap())]);
    let key = secret("a cluster secret of some length");
    let (a, _inbox_a, _) = TcpTransport::from_listener(1, la, peers.clone(), key.clone()).unwrap();
    let (b, mut inbox_b, b_addr) = TcpTransport::from_listener(2, lb, peers, key.clone()).unwrap();

    for i in 0..100u32 {
        a.send(2, i.to_le_bytes().to_vec());
    }
    for i in 0..100u32 {
        let got = tokio::time::timeout(WAIT, inbox_b.recv()).await.expect("in time").expect("open");
        assert_eq!(got.from, 1);
        assert_eq!(got.payload, i.to_le_bytes().to_vec());
    }

    // Garbage: a length prefix of 2^31 is refused and the connection closed.
    let mut garbage = TcpStream::connect(b_addr).await.unwrap();
    garbage.write_all(&[0, 0, 0, 0x80, 1, 2, 3, 4]).await.unwrap();
    // No handshake: an empty hello naming node 1.
    let mut no_auth = TcpStream::connect(b_addr).await.unwrap();
    no_auth.write_all(&Frame { from: 1, payload: vec![] }.encode()).await.unwrap();
    // The wrong secret, claiming to be node 1.
    let (mut wrong, mut wrong_sealer) = handshake(b_addr, 1, &secret("not the cluster secret")).await;
    wrong.write_all(&Frame { from: 1, payload: wrong_sealer.seal(b"forged") }.encode()).await.unwrap();
    // The right secret but not a member.
    let (mut stranger, _) = handshake(b_addr, 7, &key).await;
    // A member that changes its name mid-connection, and one whose frame fails its tag.
    let (mut renamer, mut renamer_sealer) = handshake(b_addr, 1, &key).await;
    renamer.write_all(&Frame { from: 3, payload: renamer_sealer.seal(b"forged") }.encode()).await.unwrap();
    let (mut forger, _) = handshake(b_addr, 1, &key).await;
    forger.write_all(&Frame { from: 1, payload: [0u8; 40].to_vec() }.encode()).await.unwrap();
    for (stream, what) in [
        (&mut garbage, "garbage"),
        (&mut no_auth, "no handshake"),
        (&mut wrong, "wrong secret"),
        (&mut stranger, "not a member"),
        (&mut renamer, "renamed sender"),
        (&mut forger, "bad tag"),
    ] {
        assert_closed(stream, what).await;
    }
    // An honest frame after them still arrives, and nothing forged did.
    a.send(2, b"after".to_vec());
    let got = tokio::time::timeout(WAIT, inbox_b.recv()).await.expect("in time").expect("open");
    assert_eq!(got.payload, b"after".to_vec());
    assert!(inbox_b.try_recv().is_err(), "nothing from the bad peers was delivered");
    // Every one failed authentication (garbage in place of a hello too).
    assert_eq!(b.health().auth_failures(), 6);
    assert_eq!(a.health().connected(), vec![(2, true)]);
}
