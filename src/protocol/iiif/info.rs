//! protocol::iiif::info: the JSON documents of IIIF: info.json for Image API 3.0 and 2.1
//! (level 2, with the pyramid's sizes and tiles) and a minimal Presentation 3 manifest (one
//! canvas painted with the image and its image service). Pure formatting: no HTTP or files.

use serde_json::{json, Value};

use super::{format_id, max_size, service_uri, Version, MAX_AREA, MAX_HEIGHT, MAX_WIDTH};
use crate::geometry::{Geometry, Level};

/// What the documents say about an image besides its size.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attribution<'a> {
    /// Copyright or credit line.
    pub text: Option<&'a str>,
    /// A link for it (only http and https links are used).
    pub link: Option<&'a str>,
}

impl Attribution<'_> {
    /// The link when it is an http(s) URI.
    fn web_link(&self) -> Option<&str> {
        self.link
            .map(str::trim)
            .filter(|l| l.starts_with("https://") || l.starts_with("http://"))
            .filter(|l| !l.contains(char::is_whitespace) && !l.contains(['"', '<', '>']))
    }

    /// The link when it is a rights statement IIIF accepts as `rights`: a Creative Commons
    /// licence or a RightsStatements.org statement.
    fn rights(&self) -> Option<&str> {
        self.web_link().filter(|l| {
            let rest = l.split_once("://").map_or("", |(_, r)| r);
            rest.starts_with("creativecommons.org/") || rest.starts_with("rightsstatements.org/")
        })
    }
}

/// Features beyond level 0 that both versions support (3.0 names).
const FEATURES: [&str; 15] = [
    "baseUriRedirect",
    "canonicalLinkHeader",
    "cors",
    "jsonldMediaType",
    "mirroring",
    "profileLinkHeader",
    "regionByPct",
    "regionByPx",
    "regionSquare",
    "rotationArbitrary",
    "rotationBy90s",
    "sizeByConfinedWh",
    "sizeByH",
    "sizeByPct",
    "sizeByW",
];

/// The pyramid's level sizes, smallest first, those within the output limits.
fn sizes(geometry: &Geometry) -> Vec<Value> {
    (0..geometry.level_count())
        .rev()
        .map(|k| geometry.level_size(Level(k)))
        .filter(|&(w, h)| max_size(w, h) == (w, h))
        .map(|(w, h)| json!({ "width": w, "height": h }))
        .collect()
}

/// Scale factors 1, 2, 4, ... 2^K: one per pyramid level.
fn scale_factors(geometry: &Geometry) -> Vec<u64> {
    (0..geometry.level_count()).map(|k| 1u64 << k).collect()
}

/// info.json of Image API 3.0, level 2; `base` is the server's base URL without a final `/`.
pub fn info_v3(base: &str, id: &str, geometry: &Geometry, attribution: Attribution) -> Value {
    let mut features: Vec<&str> = FEATURES.to_vec();
    features.extend(["sizeByWh", "sizeUpscaling"]);
    let mut info = json!({
        "@context": Version::V3.context(),
        "id": service_uri(Version::V3, base, id),
        "type": "ImageService3",
        "protocol": "http://iiif.io/api/image",
        "profile": "level2",
        "width": geometry.width,
        "height": geometry.height,
        "maxWidth": MAX_WIDTH,
        "maxHeight": MAX_HEIGHT,
        "maxArea": MAX_AREA,
        "sizes": sizes(geometry),
        "tiles": [{
            "width": geometry.tile_size,
            "height": geometry.tile_size,
            "scaleFactors": scale_factors(geometry),
        }],
        "preferredFormats": ["jpg"],
        "extraFormats": ["png", "webp"],
        "extraQualities": ["color", "gray", "bitonal"],
        "extraFeatures": features,
    });
    if let Some(rights) = attribution.rights() {
        info["rights"] = json!(rights);
    }
    info
}

/// info.json of Image API 2.1, level 2.
pub fn info_v2(base: &str, id: &str, geometry: &Geometry, attribution: Attribution) -> Value {
    let mut supports: Vec<&str> = FEATURES.to_vec();
    supports.extend(["sizeAboveFull", "sizeByDistortedWh", "sizeByWh"]);
    let mut info = json!({
        "@context": Version::V2.context(),
        "@id": service_uri(Version::V2, base, id),
        "protocol": "http://iiif.io/api/image",
        "width": geometry.width,
        "height": geometry.height,
        "sizes": sizes(geometry),
        "tiles": [{
            "width": geometry.tile_size,
            "height": geometry.tile_size,
            "scaleFactors": scale_factors(geometry),
        }],
        "profile": [
            Version::V2.profile_uri(),
            {
                "formats": ["jpg", "png", "webp"],
                "qualities": ["default", "color", "gray", "bitonal"],
                "supports": supports,
                "maxWidth": MAX_WIDTH,
                "maxHeight": MAX_HEIGHT,
                "maxArea": MAX_AREA,
            }
        ],
    });
    if let Some(text) = attribution.text {
        info["attribution"] = json!(text);
    }
    if let Some(link) = attribution.web_link() {
        info["license"] = json!(link);
    }
    info
}

/// Escapes text for an HTML value of a Presentation manifest.
fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A Presentation 3 manifest: one canvas of the image's size painted with the whole image
/// (`full/max/0/default.jpg`) and its level 2 image service, manifest and canvas labelled with
/// `label` (the file's name as its user gave it: an upload's original name). The copyright text becomes the required statement (linked when the link is http(s));
/// a Creative Commons or RightsStatements.org link becomes `rights`.
pub fn manifest(
    base: &str,
    id: &str,
    label: &str,
    geometry: &Geometry,
    attribution: Attribution,
) -> Value {
    let service = service_uri(Version::V3, base, id);
    let manifest_id = format!("{service}/manifest.json");
    let canvas = format!("{base}/iiif/3/{}/canvas/1", format_id(id));
    let (w, h) = max_size(geometry.width, geometry.height);
    let mut manifest = json!({
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "id": manifest_id,
        "type": "Manifest",
        "label": { "none": [label] },
        "items": [{
            "id": canvas,
            "type": "Canvas",
            "label": { "none": [label] },
            "width": geometry.width,
            "height": geometry.height,
            "items": [{
                "id": format!("{canvas}/page/1"),
                "type": "AnnotationPage",
                "items": [{
                    "id": format!("{canvas}/page/1/annotation/1"),
                    "type": "Annotation",
                    "motivation": "painting",
                    "target": canvas,
                    "body": {
                        "id": format!("{service}/full/max/0/default.jpg"),
                        "type": "Image",
                        "format": "image/jpeg",
                        "width": w,
                        "height": h,
                        "service": [{
                            "id": service,
                            "type": "ImageService3",
                            "profile": "level2",
                        }],
                    },
                }],
            }],
        }],
    });
    let statement = match (attribution.text, attribution.web_link()) {
        (Some(text), Some(link)) => Some(format!(
            "<a href=\"{}\">{}</a>",
            escape_html(link),
            escape_html(text)
        )),
        (Some(text), None) => Some(escape_html(text)),
        (None, Some(link)) if attribution.rights().is_none() => {
            Some(format!("<a href=\"{0}\">{0}</a>", escape_html(link)))
        }
        (None, _) => None,
    };
    if let Some(value) = statement {
        manifest["requiredStatement"] = json!({
            "label": { "en": ["Attribution"] },
            "value": { "none": [value] },
        });
    }
    if let Some(rights) = attribution.rights() {
        manifest["rights"] = json!(rights);
    }
    manifest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_v3_describes_the_pyramid() {
        let g = Geometry::new(1000, 600); // K = 2
        let info = info_v3("http://h:1", "a/b.tif", &g, Attribution::default());
        assert_eq!(info["id"], "http://h:1/iiif/3/a%2Fb.tif");
        assert_eq!(info["type"], "ImageService3");
        assert_eq!(info["profile"], "level2");
        assert_eq!(info["tiles"][0]["scaleFactors"], json!([1, 2, 4]));
        assert_eq!(
            info["sizes"],
            json!([
                {"width": 250, "height": 150},
                {"width": 500, "height": 300},
                {"width": 1000, "height": 600}
            ])
        );
        assert!(info.get("rights").is_none());
        let features = info["extraFeatures"].as_array().unwrap();
        for f in [
            "sizeUpscaling",
            "mirroring",
            "baseUriRedirect",
            "regionSquare",
        ] {
            assert!(features.contains(&json!(f)), "{f}");
        }
        assert!(features.contains(&json!("rotationArbitrary")));
    }

    #[test]
    fn sizes_beyond_the_limits_are_not_listed() {
        let g = Geometry::new(40000, 1000);
        let info = info_v3("http://h", "x", &g, Attribution::default());
        let widths: Vec<u64> = info["sizes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["width"].as_u64().unwrap())
            .collect();
        assert_eq!(widths, [157, 313, 625, 1250, 2500, 5000, 10000]);
        let g = Geometry::new(8000, 6000);
        let largest = info_v3("http://h", "x", &g, Attribution::default())["sizes"][4].clone();
        assert_eq!(largest, json!({"width": 4000, "height": 3000}));
    }

    #[test]
    fn info_v2_has_its_profile_and_attribution() {
        let g = Geometry::new(300, 200);
        let attribution = Attribution {
            text: Some("© A"),
            link: Some("https://example.org/x"),
        };
        let info = info_v2("http://h", "p.png", &g, attribution);
        assert_eq!(info["@id"], "http://h/iiif/2/p.png");
        assert_eq!(info["@context"], "http://iiif.io/api/image/2/context.json");
        assert_eq!(info["profile"][0], "http://iiif.io/api/image/2/level2.json");
        assert!(info["profile"][1]["supports"]
            .as_array()
            .unwrap()
            .contains(&json!("sizeAboveFull")));
        assert_eq!(info["attribution"], "© A");
        assert_eq!(info["license"], "https://example.org/x");
    }

    #[test]
    fn rights_only_from_licence_uris() {
        let g = Geometry::new(300, 200);
        let cc = Attribution {
            text: None,
            link: Some("https://creativecommons.org/licenses/by/4.0/"),
        };
        let info = info_v3("http://h", "p.png", &g, cc);
        assert_eq!(
            info["rights"],
            "https://creativecommons.org/licenses/by/4.0/"
        );
        for link in [
            "javascript:alert(1)",
            "ftp://x",
            "https://example.org/terms",
        ] {
            let a = Attribution {
                text: None,
                link: Some(link),
            };
            assert!(info_v3("http://h", "p", &g, a).get("rights").is_none());
            assert!(manifest("http://h", "p", "p", &g, a)
                .get("rights")
                .is_none());
        }
    }

    #[test]
    fn manifest_paints_one_canvas_with_the_service() {
        let g = Geometry::new(300, 200);
        let a = Attribution {
            text: Some("<b>Me</b>"),
            link: Some("https://example.org/"),
        };
        let m = manifest(
            "https://x.org",
            "d/p.png",
            "Sunset \"über\" <Meer>.png",
            &g,
            a,
        );
        assert_eq!(m["id"], "https://x.org/iiif/3/d%2Fp.png/manifest.json");
        assert_eq!(m["label"]["none"][0], "Sunset \"über\" <Meer>.png");
        let canvas = &m["items"][0];
        assert_eq!(canvas["label"], m["label"]);
        assert_eq!(
            (canvas["width"].as_u64(), canvas["height"].as_u64()),
            (Some(300), Some(200))
        );
        let anno = &canvas["items"][0]["items"][0];
        assert_eq!(anno["motivation"], "painting");
        assert_eq!(anno["target"], canvas["id"]);
        assert_eq!(
            anno["body"]["id"],
            "https://x.org/iiif/3/d%2Fp.png/full/max/0/default.jpg"
        );
        assert_eq!(anno["body"]["service"][0]["type"], "ImageService3");
        assert_eq!(
            m["requiredStatement"]["value"]["none"][0],
            "<a href=\"https://example.org/\">&lt;b&gt;Me&lt;/b&gt;</a>"
        );
    }
}
