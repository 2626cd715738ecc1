//! Pyramids written by gigatile open in the tools people already run: libvips reads every
//! level, and iipsrv (behind lighttpd) serves its metadata and tiles.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::{photo, psnr, reference_level, TempDir};
use gigatile::pyramid::build::{build_pyramid, BuildOptions, Progress};
use gigatile::raster::{PixelLayout, Rect};
use gigatile::source::RasterRows;

fn build(dir: &TempDir, width: u32, height: u32) -> (std::path::PathBuf, gigatile::raster::Raster) {
    let original = photo(width, height, PixelLayout::Rgb);
    let out = dir.path("pyramid.tif");
    let options = BuildOptions {
        quality: 92,
        ..BuildOptions::default()
    };
    let rows = Box::new(RasterRows::new(original.clone()));
    build_pyramid(
        rows,
        &out,
        &options,
        &Progress::new(),
        &AtomicBool::new(false),
    )
    .unwrap();
    (out, original)
}

#[test]
fn vips_reads_every_level() {
    let dir = TempDir::new("interop-vips");
    let (tif, original) = build(&dir, 900, 600);
    for (page, k) in [(0, 0), (1, 1), (2, 2)] {
        let png = dir.path(&format!("page{page}.png"));
        let input = format!("{}[page={page}]", tif.display());
        common::run("vips", &["copy", &input, png.to_str().unwrap()]);
        let got = common::decode_png(&std::fs::read(&png).unwrap());
        let want = reference_level(&original, k);
        assert!(
            psnr(&got, &want) > 30.0,
            "level {k}: {:.1} dB",
            psnr(&got, &want)
        );
    }
}

/// lighttpd with iipsrv as FastCGI, stopped on drop.
struct Iipsrv {
    lighttpd: Child,
    port: u16,
}

impl Iipsrv {
    fn start(dir: &TempDir) -> Iipsrv {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::create_dir_all(dir.path("www")).unwrap();
        let conf = dir.path("lighttpd.conf");
        std::fs::write(
            &conf,
            format!(
                r#"server.modules = ("mod_fastcgi")
server.document-root = "{www}"
server.bind = "127.0.0.1"
server.port = {port}
fastcgi.server = ( "/iipsrv" => ((
    "socket" => "{sock}",
    "bin-path" => "/usr/lib/iipimage-server/iipsrv.fcgi",
    "max-procs" => 1,
    "check-local" => "disable",
    "bin-environment" => ( "VERBOSITY" => "0" )
)) )
"#,
                www = dir.path("www").display(),
                sock = dir.path("iipsrv.sock").display(),
            ),
        )
        .unwrap();
        let lighttpd = Command::new("lighttpd")
            .args(["-D", "-f", conf.to_str().unwrap()])
            .spawn()
            .expect("lighttpd (installed by scripts/setup.sh)");
        let server = Iipsrv { lighttpd, port };
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("lighttpd did not start");
    }

    /// GETs a query of iipsrv's and returns the status line and the body.
    fn get(&self, query: &str) -> (String, Vec<u8>) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "GET /iipsrv?{query} HTTP/1.0\r\nHost: localhost\r\n\r\n"
        )
        .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP response");
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        (
            head.lines().next().unwrap_or("").to_string(),
            response[split + 4..].to_vec(),
        )
    }
}

impl Drop for Iipsrv {
    fn drop(&mut self) {
        // SIGTERM, so lighttpd stops the iipsrv processes it spawned before it exits.
        let pid = self.lighttpd.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.lighttpd.wait();
    }
}

#[test]
fn iipsrv_serves_our_pyramid() {
    let dir = TempDir::new("interop-iipsrv");
    let (tif, original) = build(&dir, 900, 600);
    let server = Iipsrv::start(&dir);
    let fif = format!("FIF={}", Path::new(&tif).display());
    let (status, body) = server.get(&format!(
        "{fif}&OBJ=IIP,1.0&OBJ=Max-size&OBJ=Resolution-number"
    ));
    let body = String::from_utf8_lossy(&body).into_owned();
    assert!(status.contains("200"), "{status}: {body}");
    assert!(body.contains("Max-size:900 600"), "{body}");
    assert!(body.contains("Resolution-number:3"), "{body}");
    // Resolution 2 is full size (iipsrv counts from the smallest); tile 5 is column 1, row 1 (4 columns).
    let (status, jpeg) = server.get(&format!("{fif}&JTL=2,5"));
    assert!(status.contains("200"), "{status}");
    let tile = gigatile::codec::jpeg::decode(&jpeg).unwrap();
    let want = original.crop(Rect::new(256, 256, 256, 256));
    assert!(psnr(&tile, &want) > 28.0, "{:.1} dB", psnr(&tile, &want));
}
