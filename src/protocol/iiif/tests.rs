//! Unit tests of IIIF parsing, resolution and canonical URIs: every URL form and every error.

use super::*;

fn image(version: Version, path: &str) -> (String, ImageRequest) {
    match parse_path(version, path) {
        Ok(IiifPath::Image(id, req)) => (id, req),
        other => panic!("{path}: {other:?}"),
    }
}

fn err(version: Version, path: &str) -> IiifError {
    parse_path(version, path).expect_err(path)
}

fn resolved(version: Version, params: &str, size: (u32, u32)) -> Result<Resolved, IiifError> {
    let (_, req) = image(version, &format!("x.tif/{params}"));
    resolve(version, &req, size)
}

fn ok(version: Version, params: &str, size: (u32, u32)) -> (Rect, (u32, u32)) {
    let r = resolved(version, params, size).unwrap_or_else(|e| panic!("{params}: {e}"));
    (r.region, r.size)
}

const V3: Version = Version::V3;
const V2: Version = Version::V2;

#[test]
fn paths_are_parsed_anchored_at_the_right() {
    assert_eq!(
        parse_path(V3, "a/b.tif/info.json").unwrap(),
        IiifPath::Info("a/b.tif".into())
    );
    assert_eq!(
        parse_path(V3, "a/b.tif/manifest.json").unwrap(),
        IiifPath::Manifest("a/b.tif".into())
    );
    assert_eq!(
        parse_path(V2, "a/b.tif/manifest.json").unwrap(),
        IiifPath::Base("a/b.tif/manifest.json".into())
    );
    assert_eq!(
        parse_path(V3, "a.tif").unwrap(),
        IiifPath::Base("a.tif".into())
    );
    let (id, req) = image(V3, "a/b/c.png/full/max/!90/gray.webp");
    assert_eq!(id, "a/b/c.png");
    assert_eq!(req.region, Region::Full);
    assert_eq!(
        req.size,
        Size {
            upscale: false,
            kind: SizeKind::Max
        }
    );
    assert!(req.mirror);
    assert_eq!(req.rotation, Rotation::R90);
    assert_eq!(req.quality, QualityName::Gray);
    assert_eq!(req.format, OutputFormat::Webp);
}

#[test]
fn every_region_form_parses() {
    let region = |s: &str| image(V3, &format!("i/{s}/max/0/default.jpg")).1.region;
    assert_eq!(region("full"), Region::Full);
    assert_eq!(region("square"), Region::Square);
    assert_eq!(
        region("1,2,3,4"),
        Region::Pixels {
            x: 1,
            y: 2,
            w: 3,
            h: 4
        }
    );
    assert_eq!(
        region("pct:1.5,0,.5,100"),
        Region::Percent {
            x: 1.5,
            y: 0.0,
            w: 0.5,
            h: 100.0
        }
    );
}

#[test]
fn every_size_form_parses() {
    let size = |v, s: &str| image(v, &format!("i/full/{s}/0/default.jpg")).1.size;
    let plain = |kind| Size {
        upscale: false,
        kind,
    };
    let up = |kind| Size {
        upscale: true,
        kind,
    };
    assert_eq!(size(V3, "max"), plain(SizeKind::Max));
    assert_eq!(size(V3, "^max"), up(SizeKind::Max));
    assert_eq!(size(V3, "12,"), plain(SizeKind::Width(12)));
    assert_eq!(size(V3, "^12,"), up(SizeKind::Width(12)));
    assert_eq!(size(V3, ",7"), plain(SizeKind::Height(7)));
    assert_eq!(size(V3, "^,7"), up(SizeKind::Height(7)));
    assert_eq!(size(V3, "3,4"), plain(SizeKind::Exact(3, 4)));
    assert_eq!(size(V3, "^3,4"), up(SizeKind::Exact(3, 4)));
    assert_eq!(size(V3, "!3,4"), plain(SizeKind::Confined(3, 4)));
    assert_eq!(size(V3, "^!3,4"), up(SizeKind::Confined(3, 4)));
    assert_eq!(size(V3, "pct:50"), plain(SizeKind::Percent(50.0)));
    assert_eq!(size(V3, "^pct:150.5"), up(SizeKind::Percent(150.5)));
    assert_eq!(size(V2, "full"), plain(SizeKind::Max));
    assert_eq!(size(V2, "max"), plain(SizeKind::Max));
    assert_eq!(size(V2, "!3,4"), plain(SizeKind::Confined(3, 4)));
}

#[test]
fn rotations_and_qualities_parse() {
    let rot = |s: &str| {
        let (_, r) = image(V3, &format!("i/full/max/{s}/default.jpg"));
        (r.mirror, r.rotation)
    };
    assert_eq!(rot("0"), (false, Rotation::R0));
    assert_eq!(rot("90"), (false, Rotation::R90));
    assert_eq!(rot("180.0"), (false, Rotation::R180));
    assert_eq!(rot("270"), (false, Rotation::R270));
    assert_eq!(rot("360"), (false, Rotation::R0));
    assert_eq!(rot("!0"), (true, Rotation::R0));
    assert_eq!(rot("!180"), (true, Rotation::R180));
    for (q, name) in [
        ("default", QualityName::Default),
        ("color", QualityName::Color),
        ("gray", QualityName::Gray),
        ("bitonal", QualityName::Bitonal),
    ] {
        let (_, r) = image(V2, &format!("i/full/full/0/{q}.png"));
        assert_eq!(r.quality, name);
        assert_eq!(r.format, OutputFormat::Png);
    }
}

#[test]
fn syntax_errors_are_400() {
    for p in [
        "i/nonsense/max/0/default.jpg",
        "i/1,2,3/max/0/default.jpg",
        "i/-1,2,3,4/max/0/default.jpg",
        "i/1,2,0,4/max/0/default.jpg",
        "i/pct:1,2,3/max/0/default.jpg",
        "i/pct:1,2,0,4/max/0/default.jpg",
        "i/pct:1e2,2,3,4/max/0/default.jpg",
        "i/pct:inf,2,3,4/max/0/default.jpg",
        "i/full/full/0/default.jpg",
        "i/full/abc/0/default.jpg",
        "i/full/,/0/default.jpg",
        "i/full/0,/0/default.jpg",
        "i/full/!3,/0/default.jpg",
        "i/full/pct:0/0/default.jpg",
        "i/full/pct:-5/0/default.jpg",
        "i/full/^^max/0/default.jpg",
        "i/full/max/abcd/default.jpg",
        "i/full/max/-90/default.jpg",
        "i/full/max/361/default.jpg",
        "i/full/max/!!90/default.jpg",
        "i/full/max/0/native.jpg",
        "i/full/max/0/grey.jpg",
        "i/full/max/0/default.xyz",
        "i/full/max/0/default.JPG",
        "../x/full/max/0/default.jpg",
        "a//b/info.json",
    ] {
        assert!(
            matches!(err(V3, p), IiifError::BadRequest(_)),
            "{p} should be a 400"
        );
    }
    // 2.1 has no `^`.
    assert!(matches!(
        err(V2, "i/full/^max/0/default.jpg"),
        IiifError::BadRequest(_)
    ));
}

#[test]
fn unsupported_formats_are_415() {
    for f in ["tif", "gif", "pdf", "jp2"] {
        assert!(matches!(
            err(V3, &format!("i/full/max/0/default.{f}")),
            IiifError::UnsupportedFormat(_)
        ));
    }
}

#[test]
fn arbitrary_rotations_parse_and_grow_the_output() {
    let (_, req) = image(V3, "i/full/max/!22.5/default.jpg");
    assert!(req.mirror);
    assert_eq!(req.rotation, Rotation::Arbitrary(22_500));
    // A 16000-wide image turned 45° no longer fits maxWidth.
    assert!(matches!(
        resolved(V3, "full/max/45/default.jpg", (16000, 100)),
        Err(IiifError::BadRequest(_))
    ));
    let (_, req) = image(V3, "a/full/100,100/45.5/default.png");
    let r = resolve(V3, &req, (1000, 600)).unwrap();
    assert_eq!(
        r.size,
        (100, 100),
        "the size is of the region, before rotating"
    );
    assert_eq!(
        canonical_uri(V3, "http://h", "a", (1000, 600), &req, &r),
        "http://h/iiif/3/a/full/100,100/45.5/default.png"
    );
}

#[test]
fn regions_are_cropped_and_outside_is_400() {
    let img = (1000, 600);
    assert_eq!(
        ok(V3, "full/max/0/default.jpg", img).0,
        Rect::new(0, 0, 1000, 600)
    );
    assert_eq!(
        ok(V3, "square/max/0/default.jpg", img).0,
        Rect::new(200, 0, 600, 600)
    );
    assert_eq!(
        ok(V3, "900,500,300,300/max/0/default.jpg", img).0,
        Rect::new(900, 500, 100, 100)
    );
    // Percentages cover whole pixels: x floored, the far edge ceiled.
    assert_eq!(
        ok(V3, "pct:10.25,50,20,100/max/0/default.jpg", img).0,
        Rect::new(102, 300, 201, 300)
    );
    for params in [
        "1000,0,10,10/max/0/default.jpg",
        "0,600,10,10/max/0/default.jpg",
        "pct:100,0,10,10/max/0/default.jpg",
    ] {
        assert!(matches!(
            resolved(V3, params, img),
            Err(IiifError::BadRequest(_))
        ));
    }
}

#[test]
fn sizes_follow_the_spec() {
    let img = (1000, 600);
    let size = |v, s: &str| ok(v, &format!("full/{s}/0/default.jpg"), img).1;
    assert_eq!(size(V3, "max"), (1000, 600));
    assert_eq!(size(V3, "500,"), (500, 300));
    assert_eq!(size(V3, "333,"), (333, 200));
    assert_eq!(size(V3, ",150"), (250, 150));
    assert_eq!(size(V3, "100,100"), (100, 100));
    assert_eq!(size(V3, "!400,400"), (400, 240));
    assert_eq!(size(V3, "!900,100"), (167, 100));
    assert_eq!(size(V3, "pct:50"), (500, 300));
    assert_eq!(size(V3, "pct:33.3"), (333, 200));
    assert_eq!(size(V3, "^2000,"), (2000, 1200));
    assert_eq!(size(V3, "^,1200"), (2000, 1200));
    assert_eq!(size(V3, "^pct:200"), (2000, 1200));
    assert_eq!(size(V3, "^!2000,3000"), (2000, 1200));
    assert_eq!(size(V3, "^max"), (1000, 600));
    assert_eq!(size(V2, "full"), (1000, 600));
    assert_eq!(size(V2, "2000,"), (2000, 1200));
    assert_eq!(size(V2, "pct:200"), (2000, 1200));
    assert_eq!(size(V2, "!2000,3000"), (2000, 1200));
}

#[test]
fn upscaling_without_caret_is_400_in_3_0() {
    let img = (1000, 600);
    for s in ["1001,", ",601", "1001,600", "pct:101", "!2000,3000"] {
        assert!(
            matches!(
                resolved(V3, &format!("full/{s}/0/default.jpg"), img),
                Err(IiifError::BadRequest(_))
            ),
            "{s}"
        );
    }
}

#[test]
fn sizes_beyond_the_limits_are_400_and_max_shrinks_to_them() {
    let huge = (60000, 40000);
    let (_, size) = ok(V3, "full/max/0/default.jpg", huge);
    assert!(size.0 <= MAX_WIDTH && u64::from(size.0) * u64::from(size.1) <= MAX_AREA);
    assert_eq!(size, (5016, 3344));
    assert!(matches!(
        resolved(V3, "full/20000,/0/default.jpg", huge),
        Err(IiifError::BadRequest(_))
    ));
    assert!(matches!(
        resolved(V3, "full/^4097,4097/0/default.jpg", (10, 10)),
        Err(IiifError::BadRequest(_))
    ));
}

fn request(geometry: &Geometry, params: &str) -> TileRequest {
    let r = resolved(V3, params, (geometry.width, geometry.height)).unwrap();
    let encode = EncodeOptions {
        format: OutputFormat::Jpeg,
        quality: Some(85),
    };
    tile_request(geometry, &r, Transform::NONE, encode, [0; 3])
}

#[test]
fn advertised_tiles_land_on_their_level() {
    let g = Geometry::new(1001, 700); // K = 2
                                      // An interior tile at scale factor 2: level 1, tile (0, 0).
    let t = request(&g, "0,0,512,512/256,/0/default.jpg");
    assert_eq!(t.level, Level(1));
    assert_eq!(t.region, Rect::new(0, 0, 256, 256));
    assert_eq!(t.out_size, (256, 256));
    assert_eq!(t.canvas, None);
    // The same with w,h.
    assert_eq!(request(&g, "0,0,512,512/256,256/0/default.jpg"), t);
    // The bottom-right edge tile at scale 2 (489×188 → 245×94), as `w,` and `w,h`.
    let edge = request(&g, "512,512,489,188/245,/0/default.jpg");
    assert_eq!(edge.level, Level(1));
    assert_eq!(edge.region, Rect::new(256, 256, 245, 94));
    assert_eq!(edge.out_size, (245, 94));
    assert_eq!(request(&g, "512,512,489,188/245,94/0/default.jpg"), edge);
    // A right-edge tile whose `w,` ratio would round the height up.
    let right = request(&g, "512,0,489,512/245,/0/default.jpg");
    assert_eq!((right.level, right.out_size), (Level(1), (245, 256)));
    // The whole image at scale 4 and at full resolution.
    let top = request(&g, "full/251,/0/default.jpg");
    assert_eq!(
        (top.level, top.region),
        (Level(2), Rect::new(0, 0, 251, 175))
    );
    let full = request(&g, "0,0,256,256/max/0/default.jpg");
    assert_eq!(
        (full.level, full.region),
        (Level(0), Rect::new(0, 0, 256, 256))
    );
}

#[test]
fn other_requests_keep_full_resolution_pixels() {
    let g = Geometry::new(1001, 700);
    // Not on any coarser grid: level 0, the exact region.
    let t = request(&g, "13,17,300,200/100,/0/default.jpg");
    assert_eq!(
        (t.level, t.region, t.out_size),
        (Level(0), Rect::new(13, 17, 300, 200), (100, 67))
    );
    // On the scale-2 grid but asking for more than level 1 has: level 0.
    let t = request(&g, "0,0,512,512/300,/0/default.jpg");
    assert_eq!(t.level, Level(0));
    // Upscaled: level 0.
    let t = request(&g, "0,0,4,4/^40,/0/default.jpg");
    assert_eq!((t.level, t.out_size), (Level(0), (40, 40)));
}

#[test]
fn canonical_uris_follow_each_version() {
    let img = (1000, 600);
    let canon = |v, params: &str| {
        let (_, req) = image(v, &format!("a/b.tif/{params}"));
        let r = resolve(v, &req, img).unwrap();
        canonical_uri(v, "http://h", "a/b.tif", img, &req, &r)
    };
    assert_eq!(
        canon(V3, "full/max/0/default.jpg"),
        "http://h/iiif/3/a%2Fb.tif/full/max/0/default.jpg"
    );
    assert_eq!(
        canon(V3, "square/pct:50/!90/gray.png"),
        "http://h/iiif/3/a%2Fb.tif/200,0,600,600/300,300/!90/gray.png"
    );
    assert_eq!(
        canon(V3, "full/^2000,/0/color.jpg"),
        "http://h/iiif/3/a%2Fb.tif/full/^2000,1200/0/color.jpg"
    );
    assert_eq!(
        canon(V2, "full/full/0/default.jpg"),
        "http://h/iiif/2/a%2Fb.tif/full/full/0/default.jpg"
    );
    assert_eq!(
        canon(V2, "pct:0,0,50,50/!250,250/0/default.jpg"),
        "http://h/iiif/2/a%2Fb.tif/0,0,500,300/250,/0/default.jpg"
    );
    assert_eq!(
        canon(V2, "full/100,100/180/bitonal.webp"),
        "http://h/iiif/2/a%2Fb.tif/full/100,100/180/bitonal.webp"
    );
}

#[test]
fn transforms_follow_the_request() {
    let (_, req) = image(V3, "i/full/max/!270/bitonal.png");
    assert_eq!(
        transform(&req),
        Transform {
            mirror: true,
            rotation: Rotation::R270,
            quality: Quality::Bitonal
        }
    );
    let (_, req) = image(V3, "i/full/max/0/color.jpg");
    assert!(transform(&req).is_identity());
}
