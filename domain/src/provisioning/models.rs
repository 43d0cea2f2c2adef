//! The built-in catalogue of phone models and the file names each vendor's phones ask for.
//!
//! Key counts are what the vendor's configuration addresses, pages included (`linekey.1` …
//! `linekey.27` on a Yealink T54W, whose 10 physical keys page through them). An expansion
//! module likewise counts the keys its vendor's parameters address (Yealink
//! `expansion_module.M.key.1` … `.60`: 20 keys on 3 pages).

use serde::{Serialize, Serializer};

use super::ModelInfo;

/// A phone vendor whose phones switchboard provisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Vendor {
    /// Yealink T4x/T5x.
    Yealink,
    /// Poly (Polycom) VVX and Edge E, UC Software.
    Poly,
    /// Grandstream GXP21xx and GRP26xx.
    Grandstream,
    /// Snom D7xx.
    Snom,
    /// Cisco 78xx/88xx with multiplatform (MPP) firmware.
    Cisco,
}

impl Vendor {
    /// Every vendor, in catalogue order.
    pub const ALL: [Vendor; 5] = [
        Vendor::Yealink,
        Vendor::Poly,
        Vendor::Grandstream,
        Vendor::Snom,
        Vendor::Cisco,
    ];

    /// The vendor id used in URLs, the API and templates (`yealink`, `poly`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Yealink => "yealink",
            Vendor::Poly => "poly",
            Vendor::Grandstream => "grandstream",
            Vendor::Snom => "snom",
            Vendor::Cisco => "cisco",
        }
    }

    /// The vendor with this id (case-insensitive), if any.
    pub fn parse(s: &str) -> Option<Vendor> {
        Vendor::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl std::fmt::Display for Vendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Vendor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A phone model of the built-in catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PhoneModel {
    /// Catalogue id, `<vendor>-<model>` in lower case, e.g. `yealink-t54w`.
    pub id: &'static str,
    /// Its vendor.
    pub vendor: Vendor,
    /// Model name as printed on the phone, e.g. `T54W`.
    pub name: &'static str,
    /// Programmable keys on the phone itself, pages included, as its configuration numbers them.
    pub line_keys: u32,
    /// Expansion modules it can take (0 when it takes none).
    pub expansion_modules: u32,
    /// Keys per expansion module, as the vendor's configuration numbers them.
    pub keys_per_module: u32,
}

impl PhoneModel {
    /// Keys on the phone and on the most expansion modules it takes.
    pub fn max_keys(&self) -> u32 {
        self.line_keys + self.expansion_modules * self.keys_per_module
    }

    /// The model as templates see it.
    pub fn info(&self) -> ModelInfo {
        ModelInfo {
            id: self.id.to_owned(),
            vendor: self.vendor.as_str().to_owned(),
            name: self.name.to_owned(),
            line_keys: self.line_keys,
            expansion_modules: self.expansion_modules,
            keys_per_module: self.keys_per_module,
        }
    }
}

const fn model(
    id: &'static str,
    vendor: Vendor,
    name: &'static str,
    line_keys: u32,
    (expansion_modules, keys_per_module): (u32, u32),
) -> PhoneModel {
    PhoneModel {
        id,
        vendor,
        name,
        line_keys,
        expansion_modules,
        keys_per_module,
    }
}

/// No expansion module.
const NONE: (u32, u32) = (0, 0);
/// Yealink EXP50 (T5x) and EXP43 (T4xU): 20 keys on 3 pages, up to 3 modules.
const YEALINK_EXP: (u32, u32) = (3, 60);
/// Poly VVX Color Expansion Module: 28 keys on 3 pages, up to 3 modules; its keys continue the
/// phone's `lineKey` numbering.
const POLY_VVX_EM: (u32, u32) = (3, 84);
/// Grandstream GXP2200EXT / GBX20: 20 keys on 2 pages, up to 4 modules.
const GRANDSTREAM_EXT: (u32, u32) = (4, 40);
/// Snom D7: 18 keys, up to 3 modules.
const SNOM_D7: (u32, u32) = (3, 18);

/// Vendor by vendor, family by family, the largest model first: [`super::render::sample_context`]
/// previews a vendor's first model, which thereby has room for a key of every kind.
static CATALOGUE: [PhoneModel; 27] = [
    // Yealink T5x (EXP50) and T4xU (EXP43; the T42U takes none). Line keys incl. pages.
    model("yealink-t58w", Vendor::Yealink, "T58W", 27, YEALINK_EXP),
    model("yealink-t57w", Vendor::Yealink, "T57W", 29, YEALINK_EXP),
    model("yealink-t54w", Vendor::Yealink, "T54W", 27, YEALINK_EXP),
    model("yealink-t53w", Vendor::Yealink, "T53W", 21, YEALINK_EXP),
    model("yealink-t48u", Vendor::Yealink, "T48U", 29, YEALINK_EXP),
    model("yealink-t46u", Vendor::Yealink, "T46U", 27, YEALINK_EXP),
    model("yealink-t43u", Vendor::Yealink, "T43U", 15, YEALINK_EXP),
    model("yealink-t42u", Vendor::Yealink, "T42U", 15, NONE),
    // Poly VVX x50 and Edge E (UC Software; line keys as `lineKey.N`).
    model("poly-vvx450", Vendor::Poly, "VVX 450", 12, POLY_VVX_EM),
    model("poly-vvx350", Vendor::Poly, "VVX 350", 6, POLY_VVX_EM),
    model("poly-vvx250", Vendor::Poly, "VVX 250", 4, NONE),
    model("poly-edge-e450", Vendor::Poly, "Edge E450", 12, NONE),
    model("poly-edge-e350", Vendor::Poly, "Edge E350", 8, NONE),
    model("poly-edge-e220", Vendor::Poly, "Edge E220", 4, NONE),
    // Grandstream: virtual keys (VPK, pages included) then the physical multi-purpose keys
    // (MPK) of the models that have them (GXP2160 24+24, GRP2614/GRP2616 16+24).
    model(
        "grandstream-gxp2170",
        Vendor::Grandstream,
        "GXP2170",
        48,
        GRANDSTREAM_EXT,
    ),
    model(
        "grandstream-gxp2160",
        Vendor::Grandstream,
        "GXP2160",
        48,
        GRANDSTREAM_EXT,
    ),
    model(
        "grandstream-grp2616",
        Vendor::Grandstream,
        "GRP2616",
        40,
        NONE,
    ),
    model(
        "grandstream-grp2615",
        Vendor::Grandstream,
        "GRP2615",
        40,
        GRANDSTREAM_EXT,
    ),
    model(
        "grandstream-grp2614",
        Vendor::Grandstream,
        "GRP2614",
        40,
        NONE,
    ),
    // Snom D7xx: self-labelling keys times pages.
    model("snom-d785", Vendor::Snom, "D785", 48, SNOM_D7),
    model("snom-d735", Vendor::Snom, "D735", 32, SNOM_D7),
    model("snom-d717", Vendor::Snom, "D717", 18, SNOM_D7),
    // Cisco MPP: 8800 KEM (18 keys, page 1), 2 on the 8851, 3 on the 8861; the 8841 and the
    // 78xx take none.
    model("cisco-8861", Vendor::Cisco, "8861", 10, (3, 18)),
    model("cisco-8851", Vendor::Cisco, "8851", 10, (2, 18)),
    model("cisco-8841", Vendor::Cisco, "8841", 10, NONE),
    model("cisco-7861", Vendor::Cisco, "7861", 16, NONE),
    model("cisco-7841", Vendor::Cisco, "7841", 4, NONE),
];

/// The built-in catalogue, vendor by vendor, the largest model of a family first.
pub fn catalogue() -> &'static [PhoneModel] {
    &CATALOGUE
}

/// The catalogue model with this id (case-insensitive).
pub fn find(id: &str) -> Option<&'static PhoneModel> {
    let id = id.trim();
    catalogue().iter().find(|m| m.id.eq_ignore_ascii_case(id))
}

/// The catalogue models of one vendor, in catalogue order.
pub fn of_vendor(vendor: Vendor) -> impl Iterator<Item = &'static PhoneModel> {
    catalogue().iter().filter(move |m| m.vendor == vendor)
}

/// One file a vendor's phones ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FileSpec {
    /// File name pattern; `{mac}` stands for the 12 lower-case hex digits, e.g. `{mac}.cfg`.
    pub pattern: &'static str,
    /// Name of the built-in template that renders it (see [`super::render`]).
    pub template: &'static str,
    /// Content type to serve it with.
    pub content_type: &'static str,
}

impl FileSpec {
    /// True for the vendor's main file, the one a tenant template replaces.
    pub fn is_main(&self, vendor: Vendor) -> bool {
        template_id(self.template) == vendor.as_str()
    }
}

/// The template name without its extension (`yealink.cfg` → `yealink`).
fn template_id(template: &str) -> &str {
    template.split_once('.').map_or(template, |(id, _)| id)
}

const TEXT: &str = "text/plain; charset=utf-8";
const XML: &str = "application/xml; charset=utf-8";

static YEALINK_FILES: [FileSpec; 1] = [FileSpec {
    pattern: "{mac}.cfg",
    template: "yealink.cfg",
    content_type: TEXT,
}];

static POLY_FILES: [FileSpec; 2] = [
    FileSpec {
        pattern: "{mac}.cfg",
        template: "poly-master.xml",
        content_type: XML,
    },
    FileSpec {
        pattern: "{mac}-switchboard.cfg",
        template: "poly.xml",
        content_type: XML,
    },
];

static GRANDSTREAM_FILES: [FileSpec; 1] = [FileSpec {
    pattern: "cfg{mac}.xml",
    template: "grandstream.xml",
    content_type: XML,
}];

static SNOM_FILES: [FileSpec; 1] = [FileSpec {
    pattern: "{mac}.xml",
    template: "snom.xml",
    content_type: XML,
}];

static CISCO_FILES: [FileSpec; 1] = [FileSpec {
    pattern: "spa{mac}.xml",
    template: "cisco.xml",
    content_type: XML,
}];

/// The files a vendor's phones ask for, given the provisioning URL the README tells operators
/// to set (Yealink, Poly, Grandstream: the directory; Snom `…/{mac}.xml`; Cisco
/// `…/spa$MA.xml`).
pub fn files(vendor: Vendor) -> &'static [FileSpec] {
    match vendor {
        Vendor::Yealink => &YEALINK_FILES,
        Vendor::Poly => &POLY_FILES,
        Vendor::Grandstream => &GRANDSTREAM_FILES,
        Vendor::Snom => &SNOM_FILES,
        Vendor::Cisco => &CISCO_FILES,
    }
}

/// The vendor's main file: the one whose template is named after the vendor.
pub fn main_file(vendor: Vendor) -> &'static FileSpec {
    let files = files(vendor);
    files
        .iter()
        .find(|f| f.is_main(vendor))
        .unwrap_or(&files[0])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn vendors_round_trip_through_their_ids() {
        for v in Vendor::ALL {
            assert_eq!(Vendor::parse(v.as_str()), Some(v));
            assert_eq!(Vendor::parse(&v.as_str().to_uppercase()), Some(v));
            assert_eq!(
                serde_json::to_string(&v).unwrap(),
                format!("\"{}\"", v.as_str())
            );
        }
        assert_eq!(Vendor::parse("polycom"), None);
        assert_eq!(Vendor::parse(""), None);
    }

    #[test]
    fn the_catalogue_has_the_promised_models_with_unique_ids() {
        let ids: Vec<&str> = catalogue().iter().map(|m| m.id).collect();
        for id in [
            "yealink-t42u",
            "yealink-t43u",
            "yealink-t46u",
            "yealink-t48u",
            "yealink-t53w",
            "yealink-t54w",
            "yealink-t57w",
            "yealink-t58w",
            "poly-vvx250",
            "poly-vvx350",
            "poly-vvx450",
            "poly-edge-e220",
            "poly-edge-e350",
            "poly-edge-e450",
            "grandstream-gxp2160",
            "grandstream-gxp2170",
            "grandstream-grp2614",
            "grandstream-grp2615",
            "grandstream-grp2616",
            "snom-d717",
            "snom-d735",
            "snom-d785",
            "cisco-7841",
            "cisco-7861",
            "cisco-8841",
            "cisco-8851",
            "cisco-8861",
        ] {
            assert!(ids.contains(&id), "{id} missing");
        }
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "duplicate ids");
        for m in catalogue() {
            assert!(
                m.id.starts_with(&format!("{}-", m.vendor.as_str())),
                "{}",
                m.id
            );
            assert_eq!(m.id, m.id.to_lowercase());
            assert!(m.line_keys > 0);
            assert_eq!(m.expansion_modules == 0, m.keys_per_module == 0, "{}", m.id);
        }
    }

    #[test]
    fn models_are_found_by_id_in_any_case() {
        let m = find("Yealink-T54W").unwrap();
        assert_eq!(m.name, "T54W");
        assert_eq!(m.max_keys(), 27 + 3 * 60);
        assert_eq!(find(" cisco-7841 ").unwrap().max_keys(), 4);
        assert!(find("yealink-t99").is_none());
    }

    #[test]
    fn model_info_carries_the_catalogue_numbers() {
        let info = find("poly-vvx450").unwrap().info();
        assert_eq!(info.id, "poly-vvx450");
        assert_eq!(info.vendor, "poly");
        assert_eq!(info.name, "VVX 450");
        assert_eq!(
            (info.line_keys, info.expansion_modules, info.keys_per_module),
            (12, 3, 84)
        );
    }

    #[test]
    fn every_vendor_has_one_main_file_named_after_it() {
        for v in Vendor::ALL {
            let mains: Vec<_> = files(v).iter().filter(|f| f.is_main(v)).collect();
            assert_eq!(mains.len(), 1, "{v}");
            assert_eq!(main_file(v), mains[0]);
            assert!(main_file(v).pattern.contains("{mac}"));
        }
        assert_eq!(main_file(Vendor::Poly).pattern, "{mac}-switchboard.cfg");
        assert_eq!(main_file(Vendor::Cisco).pattern, "spa{mac}.xml");
    }
}
