//! The TCP transport's contract on loopback: frames arrive intact and in order on one
//! connection; a peer that sends garbage or lies about who it is loses its connection and
//! nothing else. Waits are bounded.
#![cfg(not(madsim))]

use phantomdb::io::transport::{Frame, TcpTransport};
use phantomdb::io::Transport;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn frames_arrive_in_order_and_bad_peers_are_cut_off() {
    let la = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peers = BTreeMap::from([(1, la.local_addr().unwrap()), (2, lb.local_addr().unwrap())]);
    let (a, _inbox_a, _) = TcpTransport::from_listener(1, la, peers.clone()).unwrap();
    let (_b, mut inbox_b, b_addr) = TcpTransport::from_listener(2, lb, peers).unwrap();

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
    // A forged sender: a hello naming node 7, then a frame naming node 1.
    let mut liar = TcpStream::connect(b_addr).await.unwrap();
    liar.write_all(&Frame { from: 7, payload: vec![] }.encode()).await.unwrap();
    liar.write_all(&Frame { from: 1, payload: b"forged".to_vec() }.encode()).await.unwrap();
    // Both are cut off: the server closes their connections.
    for stream in [&mut garbage, &mut liar] {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(WAIT, stream.read(&mut buf)).await.expect("closed in time");
        assert!(matches!(read, Ok(0) | Err(_)), "the connection was closed: {read:?}");
    }
    // An honest frame after them still arrives, and nothing forged did.
    a.send(2, b"after".to_vec());
    let got = tokio::time::timeout(WAIT, inbox_b.recv()).await.expect("in time").expect("open");
    assert_eq!(got.payload, b"after".to_vec());
    assert!(inbox_b.try_recv().is_err(), "nothing from the bad peers was delivered");
}
