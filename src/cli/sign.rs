//! cli::sign: `gigatile sign ID`: an image's signed URL prefix and an example URL for each
//! protocol, with the keys and base URL `serve` would use (`URL_SIGNING_KEYS`,
//! `PUBLIC_BASE_URL`), so that an application can mint signed URLs without reimplementing
//! them. The token itself is [`gigatile::signing`]'s.

use std::net::SocketAddr;

use anyhow::bail;
use clap::Args;
use gigatile::config::SettingsLayer;
use gigatile::protocol::iiif::format_id;
use gigatile::signing::{format_prefix, unix_now};

use super::serve::ServeArgs;

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The image id: its path relative to the data folder (`hubble/heic1502a.tif`).
    id: String,
    /// Seconds from now until the URLs stop working (default: they never expire).
    #[arg(long, value_name = "SECONDS")]
    expires_in: Option<u64>,
    #[command(flatten)]
    serve: ServeArgs,
}

pub fn run(args: &SignArgs) -> anyhow::Result<()> {
    let settings = args.serve.settings(SettingsLayer::default())?;
    let Some(signer) = &settings.url_signing else {
        bail!("URL_SIGNING_KEYS is not set: there is no key to sign with");
    };
    if args.id.is_empty() || args.id.starts_with('/') {
        bail!("the id is a path relative to the data folder, like hubble/heic1502a.tif");
    }
    let expires = args.expires_in.map(|s| unix_now().saturating_add(s));
    let token = signer.sign(&args.id, expires);
    let prefix = format_prefix(&token);
    let base = settings
        .public_base_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", SocketAddr::new(settings.host, settings.port)));
    let signed = format!("{base}{prefix}");
    let id = format_id(&args.id);
    let src: String = form_urlencoded::byte_serialize(format!("/{}", args.id).as_bytes()).collect();
    let expiry = expires.map_or_else(|| "never".to_string(), |e| format!("{e} (unix seconds)"));
    let lines = [
        ("token", token),
        ("prefix", prefix),
        ("expires", expiry),
        (
            "tiles",
            format!("{signed}/api/images/{id}/tiles/{{z}}/{{x}}/{{y}}.jpg"),
        ),
        ("iiif 3", format!("{signed}/iiif/3/{id}/info.json")),
        ("iiif 2", format!("{signed}/iiif/2/{id}/info.json")),
        ("manifest", format!("{signed}/iiif/3/{id}/manifest.json")),
        ("dzi", format!("{signed}/dzi/{id}.dzi")),
        (
            "zoomify",
            format!("{signed}/zoomify/{id}/ImageProperties.xml"),
        ),
        (
            "imgserv",
            format!("{signed}/imgserv.cgi?src={src}&width=800&height=600"),
        ),
    ];
    for (name, value) in lines {
        println!("{:<10}{value}", format!("{name}:"));
    }
    Ok(())
}
