//! A reader that falls behind without falling out: its socket fills, the server keeps the rest
//! of what it had to write, and once the reader reads again everything arrives, in order.

mod harness;

use harness::{Client, TestServer};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpSocket;

#[tokio::test]
async fn a_reader_that_catches_up_gets_every_message_in_order() {
    const N: usize = 4000;
    let mut settings = harness::settings();
    // Room enough that it is never cut as too slow: 8 MB waits for it.
    settings.session.outbox = 100_000;
    settings.session.outbox_kib = 64 * 1024;
    let server = TestServer::start_with(settings).await;
    // A tiny receive window: a few kilobytes fill the socket.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.tcp).await.unwrap();
    let (read, mut write) = stream.into_split();
    write.write_all(b"{\"type\":\"hello\",\"nick\":\"behind\"}\n").await.unwrap();
    let mut lines = BufReader::new(read).lines();
    while !lines.next_line().await.unwrap().unwrap().contains(r#""type":"joined""#) {}
    // 4,000 messages of 2 KB (8 MB: beyond any socket buffer, within the outbox), all
    // acknowledged, so all handed to the reader's outbox, while it reads nothing.
    let mut talker = Client::native(server.tcp, "talker").await;
    let text = "y".repeat(2000);
    for i in 0..N {
        talker.line(&format!(r##"{{"type":"send","room":"#lobby","text":"{i} {text}","id":{i}}}"##)).await;
    }
    talker.expect(&format!(r#""type":"ack","id":{}"#, N - 1)).await;
    // Now it reads: every message, in order, with nothing new sent to wake the server.
    let all = async {
        let mut next = 0;
        while next < N {
            let line = lines.next_line().await.unwrap().expect("the connection stays open");
            if line.contains(r#""type":"message""#) {
                assert!(line.contains(&format!(r#""text":"{next} "#)), "message {next} out of order");
                next += 1;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), all).await.expect("the rest of the backlog never came");
}
