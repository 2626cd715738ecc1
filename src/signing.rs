//! signing: signed URLs (`URL_SIGNING_KEYS`): the keys, the token, the message a token signs,
//! and where a token sits in a URL. It knows no HTTP, catalogue or files; `http::signature`
//! checks requests with it, `gigatile sign` mints URLs with it.
//!
//! A signature is scoped to an image, not to a URL. Clients build image URLs themselves:
//! Leaflet fills `{z}/{x}/{y}`, IIIF clients append `/{region}/{size}/{rotation}/{quality}.{format}`
//! to info.json's `id`, OpenSeadragon derives Deep Zoom and Zoomify tile paths from the
//! descriptor's URL. A signature over each whole URL could never cover what they ask for, and
//! a query parameter on IIIF's `id` would end up before the path a client appends. So a token
//! signs an image id (and an optional expiry), and travels as a leading path prefix,
//! `/s/{token}`, in front of any image route of the URL contract:
//!
//! ```text
//! /s/{token}/iiif/3/{id}/info.json          /s/{token}/api/images/{id}/tiles/{z}/{x}/{y}.jpg
//! /s/{token}/dzi/{id}.dzi                   /s/{token}/imgserv.cgi?src=/{id}&width=W&height=H
//! ```
//!
//! Every URL a client derives from such a URL, by appending to it or resolving a relative
//! path against it, keeps the prefix.
//!
//! The token, for an image id `ID` (its catalogue id, `/` between folders, not
//! percent-encoded) and a key `K`:
//!
//! ```text
//! token   = [EXPIRES "."] MAC
//! EXPIRES = unix seconds, decimal digits; absent: the token never expires
//! MAC     = base64url, without padding, of HMAC-SHA256(K, UTF-8(ID) "\n" EXPIRES)
//! ```
//!
//! (with `EXPIRES` empty in the message when the token has none). A token is refused from
//! the second `EXPIRES` on. The first key signs; every key verifies, so keys can be rotated:
//! list the new key first and keep the old one second until the URLs it signed are gone.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The fewest bytes a key may have.
pub const MIN_KEY_BYTES: usize = 16;

/// The path prefix a token travels in: `/s/{token}`.
const PREFIX: &str = "/s/";

/// Bytes of an HMAC-SHA256.
const MAC_BYTES: usize = 32;

/// Why a request's signature is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("this URL needs a signature (/s/{{token}}/...)")]
    Missing,
    #[error("the signature is malformed")]
    Malformed,
    #[error("the signature is not valid for this image")]
    Mismatch,
    #[error("the signature has expired")]
    Expired,
}

/// The signing keys: the first signs, all verify. Its `Debug` shows no key.
#[derive(Clone)]
pub struct UrlSigner {
    /// Each key's HMAC, keyed once, cloned for every message.
    keys: Vec<Hmac<Sha256>>,
}

impl fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UrlSigner {{ keys: {} }}", self.keys.len())
    }
}

impl FromStr for UrlSigner {
    type Err = String;

    /// Parses `URL_SIGNING_KEYS`: keys separated by commas (spaces around them ignored), each
    /// taken as the bytes of its text, each at least [`MIN_KEY_BYTES`] long.
    ///
    /// ```
    /// use gigatile::signing::UrlSigner;
    /// assert!("0123456789abcdef, fedcba9876543210".parse::<UrlSigner>().is_ok());
    /// assert!("0123456789abcdef,short".parse::<UrlSigner>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<UrlSigner, String> {
        let keys = text
            .split(',')
            .map(str::trim)
            .enumerate()
            .map(|(i, key)| match key.len() {
                n if n < MIN_KEY_BYTES => Err(format!(
                    "URL_SIGNING_KEYS: key {} has {n} bytes; each key needs at least \
                     {MIN_KEY_BYTES}",
                    i + 1
                )),
                _ => Ok(Hmac::<Sha256>::new_from_slice(key.as_bytes())
                    .expect("HMAC takes keys of any length")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(UrlSigner { keys })
    }
}

impl UrlSigner {
    /// The token for image `id`, valid until `expires` (unix seconds), or for ever.
    ///
    /// ```
    /// use gigatile::signing::UrlSigner;
    /// let signer: UrlSigner = "0123456789abcdef".parse().unwrap();
    /// let token = signer.sign("hubble/heic1502a.tif", Some(1_900_000_000));
    /// assert!(token.starts_with("1900000000."));
    /// assert!(signer.verify("hubble/heic1502a.tif", Some(&token), 1_800_000_000).is_ok());
    /// ```
    pub fn sign(&self, id: &str, expires: Option<u64>) -> String {
        let expires = expires.map(|e| e.to_string());
        let mac = message_mac(&self.keys[0], id, expires.as_deref().unwrap_or(""));
        let mac = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        match expires {
            Some(expires) => format!("{expires}.{mac}"),
            None => mac,
        }
    }

    /// Whether `token` lets a client read image `id` at `now` (unix seconds): it must be
    /// well formed, its MAC must match the message under one of the keys (compared in constant
    /// time), and its expiry, if any, must lie after `now`.
    pub fn verify(&self, id: &str, token: Option<&str>, now: u64) -> Result<(), SignatureError> {
        let token = token.ok_or(SignatureError::Missing)?;
        let (expires, mac) = match token.split_once('.') {
            Some((expires, mac)) => (Some(expires), mac),
            None => (None, token),
        };
        let expires_at = expires.map(parse_expiry).transpose()?;
        let mut bytes = [0u8; MAC_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(mac, &mut bytes) {
            Ok(MAC_BYTES) => {}
            _ => return Err(SignatureError::Malformed),
        }
        let matches = self.keys.iter().any(|key| {
            message_mac(key, id, expires.unwrap_or(""))
                .verify_slice(&bytes)
                .is_ok()
        });
        match expires_at {
            _ if !matches => Err(SignatureError::Mismatch),
            Some(at) if now >= at => Err(SignatureError::Expired),
            _ => Ok(()),
        }
    }
}

/// The HMAC of the message `id "\n" expires` under `key`, not yet finalized.
fn message_mac(key: &Hmac<Sha256>, id: &str, expires: &str) -> Hmac<Sha256> {
    let mut mac = key.clone();
    mac.update(id.as_bytes());
    mac.update(b"\n");
    mac.update(expires.as_bytes());
    mac
}

/// An expiry as a token writes it: 1 to 20 decimal digits.
fn parse_expiry(text: &str) -> Result<u64, SignatureError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed);
    }
    text.parse().map_err(|_| SignatureError::Malformed)
}

/// The path prefix that carries `token`: `/s/{token}`.
pub fn format_prefix(token: &str) -> String {
    format!("{PREFIX}{token}")
}

/// Splits a path that starts with a token prefix into the token and the rest of the path
/// (which keeps its leading `/`).
///
/// ```
/// use gigatile::signing::split_prefix;
/// assert_eq!(split_prefix("/s/abc/iiif/3/a.tif/info.json"), Some(("abc", "/iiif/3/a.tif/info.json")));
/// assert_eq!(split_prefix("/iiif/3/a.tif/info.json"), None);
/// ```
pub fn split_prefix(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix(PREFIX)?;
    let slash = rest.find('/')?;
    Some(rest.split_at(slash))
}

/// The current time in unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "old-key-0123456789";
    const NEW: &str = "new-key-0123456789";

    fn signer(keys: &str) -> UrlSigner {
        keys.parse().unwrap()
    }

    #[test]
    fn the_mac_is_hmac_sha256_of_id_newline_expiry_in_base64url() {
        // An independent computation of the documented message, so that the format is pinned.
        let key = "0123456789abcdef";
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(b"a/b.tif\n1700000000");
        let expected = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let token = signer(key).sign("a/b.tif", Some(1_700_000_000));
        assert_eq!(token, format!("1700000000.{expected}"));
        assert_eq!(expected.len(), 43);
        let plain = signer(key).sign("a/b.tif", None);
        assert!(!plain.contains('.'));
        assert!(plain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn the_readmes_test_vectors_hold() {
        let s = signer("0123456789abcdef0123456789abcdef");
        assert_eq!(
            s.sign("hubble/heic1502a.tif", Some(1_796_413_174)),
            "1796413174.y8aakDPPHJN4gtF-gPubOjk8ZJBddXPKGYdI-qsEjeA"
        );
        assert_eq!(
            s.sign("hubble/heic1502a.tif", None),
            "bs7eCQi__7kXRhwfWnuuiy_sJ9d1X8jz-oPVFc4dVGg"
        );
    }

    #[test]
    fn a_token_holds_for_its_image_until_it_expires() {
        let s = signer(NEW);
        let forever = s.sign("a.tif", None);
        assert_eq!(s.verify("a.tif", Some(&forever), u64::MAX), Ok(()));
        let until = s.sign("a.tif", Some(1000));
        assert_eq!(s.verify("a.tif", Some(&until), 999), Ok(()));
        assert_eq!(
            s.verify("a.tif", Some(&until), 1000),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            s.verify("b.tif", Some(&forever), 0),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(s.verify("a.tif", None, 0), Err(SignatureError::Missing));
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let s = signer(NEW);
        let token = s.sign("a.tif", Some(1000));
        let (_, mac) = token.split_once('.').unwrap();
        // A later expiry with the same MAC.
        assert_eq!(
            s.verify("a.tif", Some(&format!("2000.{mac}")), 0),
            Err(SignatureError::Mismatch)
        );
        // The MAC alone (no expiry) does not verify either.
        assert_eq!(
            s.verify("a.tif", Some(mac), 0),
            Err(SignatureError::Mismatch)
        );
        for bad in [
            "",
            ".",
            "abc",
            &format!("+1000.{mac}"),
            &format!("x.{mac}"),
            &format!("1000.{mac}A"),
            &format!("1000.{}", &mac[..42]),
            &format!("1000.{mac}="),
        ] {
            assert_eq!(
                s.verify("a.tif", Some(bad), 0),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_first_key_signs_and_every_key_verifies() {
        let before = signer(OLD).sign("a.tif", None);
        let rotated = signer(&format!("{NEW}, {OLD}"));
        assert_eq!(rotated.verify("a.tif", Some(&before), 0), Ok(()));
        assert_eq!(rotated.sign("a.tif", None), signer(NEW).sign("a.tif", None));
        assert_eq!(
            signer(NEW).verify("a.tif", Some(&before), 0),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn keys_are_checked() {
        let err = "0123456789abcdef,0123".parse::<UrlSigner>().unwrap_err();
        assert!(
            err.contains("URL_SIGNING_KEYS") && err.contains("key 2"),
            "{err}"
        );
        assert!(!err.contains("0123"), "{err}");
        assert!("0123456789abcdef,".parse::<UrlSigner>().is_err());
        assert_eq!(format!("{:?}", signer(NEW)), "UrlSigner { keys: 1 }");
    }

    #[test]
    fn the_prefix_splits_off_the_first_segment_pair() {
        assert_eq!(format_prefix("t"), "/s/t");
        assert_eq!(split_prefix("/s/t/dzi/a.dzi"), Some(("t", "/dzi/a.dzi")));
        assert_eq!(split_prefix("/s/t"), None);
        assert_eq!(split_prefix("/s//x"), Some(("", "/x")));
        assert_eq!(split_prefix("/sx/t/x"), None);
    }
}
