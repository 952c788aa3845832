//! A network error in the middle of a run reads as one clean line: each cause said once.
//!
//! The client's transport error repeats its cause as its own message ("error sending request
//! for url (...)"), so printing the chain as it comes says it twice. A small fake server on
//! 127.0.0.1 answers the first request like Elasticsearch (so the example connects), then hangs
//! up on every later one, as a node that dies would.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

mod common;

/// Serves one `GET /_nodes/_local` answer, then closes every later connection at once.
fn server_that_dies_after_one_answer() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = listener.local_addr().expect("its address").port();
    std::thread::spawn(move || {
        let mut answered = false;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if answered {
                drop(stream);
                continue;
            }
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let body = r#"{"nodes":{"n":{"version":"0.0.0-fake"}}}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
            answered = true;
        }
    });
    port
}

/// The server hangs up after the first answer: the example stops with one line, and the
/// transport's message appears in it once.
#[test]
fn a_connection_lost_mid_run_is_one_line_with_each_cause_once() {
    let port = server_that_dies_after_one_answer();
    let url = format!("http://127.0.0.1:{port}");
    let run = common::run(
        "lost_update",
        &[],
        &[("ELASTICSEARCH_URL", &url)],
        Duration::from_secs(60),
    );
    run.assert_one_line_error("error sending request for url");
    assert_eq!(
        run.stderr.matches("error sending request").count(),
        1,
        "{run:?}"
    );
}
