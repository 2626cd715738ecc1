//! Malformed HTTP over raw TCP: bad chunked encoding, bodies shorter or longer than their
//! `Content-Length`, truncated and malformed multipart uploads, odd methods and headers. Each
//! gets a 4xx with a JSON `{error, code}` (or, for a head hyper cannot parse, hyper's plain
//! 400), the server stays healthy, and no half-written upload is left or joins the catalogue.

mod common;

use common::server::{ids, multipart, Response, TestServer};
use common::{photo, write_png};
use gigatile::config::SettingsLayer;
use gigatile::raster::PixelLayout;

const BOUNDARY: &str = "gigatile-test-boundary-7d3f";

fn server(name: &str) -> TestServer {
    let layer = SettingsLayer {
        trust_proxy: Some(true),
        ..SettingsLayer::default()
    };
    TestServer::start(name, layer, |data| {
        write_png(&photo(300, 200, PixelLayout::Rgb), &data.path("small.png"));
    })
}

/// A request head for `POST /api/upload` with the test boundary and `extra` header lines.
fn upload_head(extra: &str) -> String {
    format!(
        "POST /api/upload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{extra}\r\n"
    )
}

/// The start of a multipart form whose `file` part is under way.
fn file_part_start() -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend(std::iter::repeat_n(b'x', 20_000));
    body
}

/// Files anywhere under `DATA_DIR/uploads/` (a half-written upload would be one).
fn upload_files(server: &TestServer) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&server.path("uploads"), &mut files);
    files
}

/// The server answers, lists only its own image, and holds no upload.
fn assert_unharmed(server: &TestServer) {
    assert_eq!(server.get("/healthz").status, 200);
    let list = server.json("/api/images");
    assert_eq!(ids(&list), ["small.png"]);
    assert_eq!(upload_files(server), Vec::<std::path::PathBuf>::new());
}

/// The one response on a connection.
fn only(responses: Vec<Response>) -> Response {
    assert_eq!(responses.len(), 1, "{responses:?}");
    responses.into_iter().next().unwrap()
}

#[test]
fn bad_chunked_encoding_is_a_400() {
    let server = server("mal-chunked");
    // A good first chunk that starts the file, then a chunk size that is no number.
    let part = file_part_start();
    let mut request = upload_head("Transfer-Encoding: chunked\r\n").into_bytes();
    request.extend(format!("{:x}\r\n", part.len()).as_bytes());
    request.extend(&part);
    request.extend(b"\r\nzz-not-hex\r\nmore\r\n0\r\n\r\n");
    only(server.raw(&request)).assert_error(400, "malformed_body");
    // A chunk longer than its size says.
    let mut request = upload_head("Transfer-Encoding: chunked\r\n").into_bytes();
    request.extend(b"4\r\nabcdefgh\r\n0\r\n\r\n");
    only(server.raw(&request)).assert_error(400, "malformed_body");
    assert_unharmed(&server);
}

#[test]
fn a_body_cut_short_of_its_content_length_is_a_400() {
    let server = server("mal-short");
    let part = file_part_start();
    let head = upload_head(&format!("Content-Length: {}\r\n", part.len() + 5000));
    let mut request = head.into_bytes();
    request.extend(&part);
    // The client stops sending (and closes its side) mid-file.
    only(server.raw_then_close(&request)).assert_error(400, "malformed_body");
    // One that goes away altogether leaves nothing either, once the server has seen it go:
    // wait until the server is receiving the file, go away, then wait for the file to go.
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    std::io::Write::write_all(&mut stream, &request).unwrap();
    let wait_until = |done: &dyn Fn() -> bool, what: &str| {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !done() {
            assert!(std::time::Instant::now() < until, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    wait_until(
        &|| !upload_files(&server).is_empty(),
        "the server never started receiving the file",
    );
    drop(stream);
    wait_until(
        &|| upload_files(&server).is_empty(),
        "the cut upload was never removed",
    );
    assert_unharmed(&server);
}

#[test]
fn bytes_past_the_content_length_are_the_next_request() {
    let server = server("mal-long");
    let png = gigatile::codec::png::encode(&photo(64, 48, PixelLayout::Rgb)).unwrap();
    let upload = |name: &str, extra: &[u8]| {
        let (ctype, body) = multipart(name, &png, &[]);
        let head = format!(
            "POST /api/upload HTTP/1.1\r\nHost: localhost\r\nContent-Type: {ctype}\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend(&body);
        request.extend(extra);
        server.raw(&request)
    };
    // What follows the body is read as the next request: garbage gets hyper's own 400 and
    // the connection closes (no hang)...
    let responses = upload("one.png", b"\x01garbage that is no request\r\n\r\n");
    assert_eq!(responses.len(), 2, "{responses:?}");
    assert_eq!(responses[0].status, 201, "{}", responses[0].text());
    assert_eq!(responses[1].status, 400);
    // ... and a well-formed request is answered.
    let responses = upload(
        "two.png",
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(responses.len(), 2, "{responses:?}");
    assert_eq!(responses[0].status, 201, "{}", responses[0].text());
    assert_eq!(responses[1].status, 200);
    // Both uploads joined the catalogue, whole.
    let list = server.json("/api/images");
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
}

#[test]
fn truncated_and_malformed_multipart_is_a_400() {
    let server = server("mal-multipart");
    let png = gigatile::codec::png::encode(&photo(64, 48, PixelLayout::Rgb)).unwrap();
    let (ctype, whole) = multipart("cut.png", &png, &[]);
    let missing_final_boundary = whole[..whole.len() - BOUNDARY.len() - 8].to_vec();
    let unnamed_part = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; filename=\"a.png\"\r\n\r\nabc\r\n\
         --{BOUNDARY}--\r\n"
    );
    let text_only = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"copyright_text\"\r\n\r\nhi\r\n\
         --{BOUNDARY}--\r\n"
    );
    let no_headers = format!("--{BOUNDARY}\r\nabc\r\n--{BOUNDARY}--\r\n");
    let cases: [(&str, &str, Vec<u8>, &str); 8] = [
        (
            "final boundary missing",
            &ctype,
            missing_final_boundary,
            "malformed_multipart",
        ),
        (
            "garbage",
            &ctype,
            b"\x00\xffgarbage, no boundary at all".to_vec(),
            "malformed_multipart",
        ),
        ("empty body", &ctype, Vec::new(), "malformed_multipart"),
        (
            "part headers not ended",
            &ctype,
            no_headers.into_bytes(),
            "malformed_multipart",
        ),
        (
            "no boundary",
            "multipart/form-data",
            whole.clone(),
            "malformed_multipart",
        ),
        (
            "not multipart",
            "application/json",
            b"{}".to_vec(),
            "malformed_multipart",
        ),
        (
            "part without a name",
            &ctype,
            unnamed_part.into_bytes(),
            "bad_request",
        ),
        (
            "no file part",
            &ctype,
            text_only.into_bytes(),
            "bad_request",
        ),
    ];
    for (what, content_type, body, code) in cases {
        let r = server.request(
            "POST",
            "/api/upload",
            &[("Content-Type", content_type)],
            &body,
        );
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        r.assert_error(400, code);
    }
    // A missing Content-Type, and one that is not valid UTF-8.
    let mut request = b"POST /api/upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".to_vec();
    request.extend(b"Content-Type: multipart/form-data; boundary=\xff\xfe\r\n");
    request.extend(b"Content-Length: 2\r\n\r\nab");
    only(server.raw(&request)).assert_error(400, "malformed_multipart");
    server
        .request("POST", "/api/upload", &[], b"abc")
        .assert_error(400, "malformed_multipart");
    assert_unharmed(&server);
}

#[test]
fn a_chunked_upload_past_the_limit_is_a_413() {
    let layer = SettingsLayer {
        max_upload_size: Some("10K".parse().unwrap()),
        ..SettingsLayer::default()
    };
    let server = TestServer::start("mal-limit", layer, |_| {});
    let part = file_part_start();
    let mut request = upload_head("Transfer-Encoding: chunked\r\n").into_bytes();
    for piece in part
        .chunks(4096)
        .chain(std::iter::repeat_n(&[b'y'; 4096][..], 30))
    {
        request.extend(format!("{:x}\r\n", piece.len()).as_bytes());
        request.extend(piece);
        request.extend(b"\r\n");
    }
    request.extend(b"0\r\n\r\n");
    let responses = server.raw(&request);
    responses[0].assert_error(413, "too_large");
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(upload_files(&server), Vec::<std::path::PathBuf>::new());
}

#[test]
fn odd_methods_bodies_and_headers_get_no_5xx() {
    let server = server("mal-headers");
    let paths = [
        "/",
        "/api/images",
        "/api/images/small.png/meta",
        "/api/images/small.png/tiles/0/0/0",
        "/api/images/small.png",
        "/api/upload",
        "/iiif/3/small.png/info.json",
        "/iiif/2/small.png/full/max/0/default.jpg",
        "/dzi/small.png.dzi",
        "/zoomify/small.png/ImageProperties.xml",
        "/imgserv.cgi?src=/small.png&width=100&height=100",
        "/imgcache/small.png/nope.jpg",
        "/healthz",
        "/metrics",
        "/nope",
    ];
    let odd_headers: &[&[u8]] = &[
        b"Accept: \xff\xfe image/webp;q=\x80",
        b"Range: bytes=\xff-\xfe",
        b"Range: bytes=99999999999999999999999-",
        b"If-None-Match: \xff\"",
        b"If-Range: \xfe",
        b"If-Modified-Since: \xffday, 99 Foo 99999",
        b"Authorization: Bearer \xff\xfe",
        b"Authorization: Basic",
        b"Origin: \xff://\xfe",
        b"X-Forwarded-For: \xff, ::1, not-an-ip",
        b"X-Forwarded-Host: \xfe\xff",
        b"X-Forwarded-Proto: \xff",
        b"Content-Type: \xff/\xfe; boundary=\"",
        b"X-Request-Id: \xff\xfe",
    ];
    for path in paths {
        for method in [
            "GET", "HEAD", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "TRACE", "FOO",
        ] {
            let mut request =
                format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n").into_bytes();
            for header in odd_headers {
                request.extend(*header);
                request.extend(b"\r\n");
            }
            request.extend(b"Content-Length: 5\r\nConnection: close\r\n\r\nhello");
            let r = only(server.raw(&request));
            assert!(r.status < 500, "{method} {path}: {} {}", r.status, r.text());
            if r.status >= 400 && method != "HEAD" {
                r.assert_error(r.status, r.json()["code"].as_str().unwrap());
            }
        }
    }
    // Request targets in authority, absolute and asterisk form.
    for line in [
        "CONNECT localhost:80 HTTP/1.1",
        "GET http://elsewhere.example/api/images HTTP/1.1",
        "OPTIONS * HTTP/1.1",
    ] {
        let request = format!("{line}\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        for r in server.raw(request.as_bytes()) {
            assert!(r.status < 500, "{line}: {} {}", r.status, r.text());
        }
    }
    // A chunked body on a GET that is never read.
    let request = b"GET /api/images HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
        Transfer-Encoding: chunked\r\n\r\nzz\r\n";
    assert!(server.raw(request).iter().all(|r| r.status < 500));
    // A head hyper refuses gets its plain 400.
    let request = b"GET / HTTP/1.1\r\nHost: x\r\nBad\x01Header: y\r\n\r\n";
    assert!(server.raw(request).iter().all(|r| r.status == 400));
    assert_unharmed(&server);
}
