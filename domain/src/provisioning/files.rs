//! A requested file name → the MAC it names and which of the vendor's files it is.
//!
//! Phones ask `GET /provision/<file name>`; the name alone says which phone (its MAC) and which
//! shape of file; the Device's model then says whether its vendor asks for that shape at all.

use super::models::{FileSpec, Vendor, files};
use crate::telephony::values::MacAddress;

/// The shapes of file name phones ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// `{mac}.cfg`: Yealink's configuration, Poly's master file.
    MacCfg,
    /// `{mac}-switchboard.cfg`: the Poly configuration the master file names.
    MacSwitchboardCfg,
    /// `cfg{mac}.xml`: Grandstream.
    CfgMacXml,
    /// `{mac}.xml`: Snom.
    MacXml,
    /// `spa{mac}.xml`: Cisco MPP (profile rule `…/spa$MA.xml`).
    SpaMacXml,
}

impl Shape {
    /// Every shape.
    pub const ALL: [Shape; 5] = [
        Shape::MacCfg,
        Shape::MacSwitchboardCfg,
        Shape::CfgMacXml,
        Shape::MacXml,
        Shape::SpaMacXml,
    ];

    /// The [`FileSpec::pattern`] of this shape.
    pub fn pattern(self) -> &'static str {
        match self {
            Shape::MacCfg => "{mac}.cfg",
            Shape::MacSwitchboardCfg => "{mac}-switchboard.cfg",
            Shape::CfgMacXml => "cfg{mac}.xml",
            Shape::MacXml => "{mac}.xml",
            Shape::SpaMacXml => "spa{mac}.xml",
        }
    }

    /// The text before and after `{mac}` in the pattern.
    fn affixes(self) -> (&'static str, &'static str) {
        let (prefix, suffix) = self.pattern().split_once("{mac}").unwrap_or(("", ""));
        (prefix, suffix)
    }
}

/// What a requested file name names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    /// The phone's MAC, 12 lower-case hex digits.
    pub mac: String,
    /// Which pattern the name matched.
    pub shape: Shape,
}

/// A MAC in any case, with `:`, `-` or `.` separators or none, as 12 lower-case hex digits.
/// Refuses anything else, including `000000000000` (the "any phone" file name of Poly and
/// Yealink), broadcast and multicast addresses.
pub fn parse_mac(s: &str) -> Option<String> {
    if s.trim() != s {
        return None;
    }
    MacAddress::parse(s).ok().map(MacAddress::into_string)
}

/// Longest name worth looking at: `spa` + a MAC with separators + `.xml`.
const MAX_FILE_NAME: usize = 64;

/// The MAC and shape a requested file name names, matched case-insensitively; `None` for
/// anything that is not exactly one of the [`Shape`]s around a MAC (paths, `..`, the shared
/// `000000000000.cfg`, Yealink's `y0000000000xx.cfg`, …).
pub fn requested(file: &str) -> Option<Requested> {
    if file.is_empty()
        || file.len() > MAX_FILE_NAME
        || file.contains(['/', '\\'])
        || file.contains("..")
        || !file.is_ascii()
    {
        return None;
    }
    let name = file.to_ascii_lowercase();
    // The most specific shapes first: `{mac}-switchboard.cfg` also ends in `.cfg`, and
    // `spa{mac}.xml` / `cfg{mac}.xml` also end in `.xml`.
    let order = [
        Shape::MacSwitchboardCfg,
        Shape::SpaMacXml,
        Shape::CfgMacXml,
        Shape::MacCfg,
        Shape::MacXml,
    ];
    order.into_iter().find_map(|shape| {
        let (prefix, suffix) = shape.affixes();
        let mac = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
        parse_mac(mac).map(|mac| Requested { mac, shape })
    })
}

/// The vendor's file of this shape, or `None` when the vendor's phones never ask for it (a
/// Yealink asking for `cfg<mac>.xml` gets a 404).
pub fn spec_for(vendor: Vendor, shape: Shape) -> Option<&'static FileSpec> {
    files(vendor).iter().find(|f| f.pattern == shape.pattern())
}

/// The file name of `spec` for the phone with this MAC (12 lower-case hex digits).
pub fn file_name(spec: &FileSpec, mac: &str) -> String {
    spec.pattern.replace("{mac}", mac)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MAC: &str = "001565aabbcc";

    #[test]
    fn macs_are_accepted_in_any_case_with_or_without_separators() {
        for ok in [
            "00:15:65:AA:BB:CC",
            "00:15:65:aa:bb:cc",
            "00-15-65-AA-BB-CC",
            "0015.65aa.bbcc",
            "001565AABBCC",
            "001565aabbcc",
        ] {
            assert_eq!(parse_mac(ok).as_deref(), Some(MAC), "{ok}");
        }
    }

    #[test]
    fn anything_that_is_not_a_phones_mac_is_refused() {
        for bad in [
            "",
            "001565aabbc",
            "001565aabbccd",
            "001565aabbcg",
            "00 15 65 aa bb cc",
            "00;15;65;aa;bb;cc",
            " 001565aabbcc",
            "000000000000",
            "00:00:00:00:00:00",
            "ffffffffffff",
            "FF-FF-FF-FF-FF-FF",
            "y00000000096",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn each_file_name_shape_is_recognised_with_its_mac() {
        let cases = [
            ("001565aabbcc.cfg", Shape::MacCfg),
            ("001565AABBCC.CFG", Shape::MacCfg),
            ("001565aabbcc-switchboard.cfg", Shape::MacSwitchboardCfg),
            ("001565aabbcc-SWITCHBOARD.cfg", Shape::MacSwitchboardCfg),
            ("cfg001565aabbcc.xml", Shape::CfgMacXml),
            ("CFG001565AABBCC.xml", Shape::CfgMacXml),
            ("001565aabbcc.xml", Shape::MacXml),
            ("spa001565aabbcc.xml", Shape::SpaMacXml),
            ("SPA001565AABBCC.XML", Shape::SpaMacXml),
            ("00-15-65-aa-bb-cc.cfg", Shape::MacCfg),
            ("00:15:65:aa:bb:cc.xml", Shape::MacXml),
            ("0015.65aa.bbcc.cfg", Shape::MacCfg),
        ];
        for (file, shape) in cases {
            assert_eq!(
                requested(file),
                Some(Requested {
                    mac: MAC.into(),
                    shape
                }),
                "{file}"
            );
        }
    }

    #[test]
    fn paths_shared_files_and_strangers_are_not_requests() {
        for bad in [
            "",
            "000000000000.cfg",
            "y000000000096.cfg",
            "y000000000000.boot",
            "sip.ld",
            "001565aabbcc.boot",
            "001565aabbcc-phone.cfg",
            "001565aabbcc-directory.xml",
            "../001565aabbcc.cfg",
            "x/001565aabbcc.cfg",
            "..\\001565aabbcc.cfg",
            "001565aabbcc..cfg",
            "001565aabbcc.cfg.bak",
            "cfg001565aabbcc.cfg",
            "spa001565aabbcc.cfg",
            "001565aabbcc",
            "001565aabbcc.cfg\u{0}",
            "ǅ01565aabbcc.cfg",
        ] {
            assert_eq!(requested(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn each_vendor_answers_only_the_shapes_its_phones_ask_for() {
        let expected: [(Vendor, &[(Shape, &str)]); 5] = [
            (Vendor::Yealink, &[(Shape::MacCfg, "yealink.cfg")]),
            (
                Vendor::Poly,
                &[
                    (Shape::MacCfg, "poly-master.xml"),
                    (Shape::MacSwitchboardCfg, "poly.xml"),
                ],
            ),
            (
                Vendor::Grandstream,
                &[(Shape::CfgMacXml, "grandstream.xml")],
            ),
            (Vendor::Snom, &[(Shape::MacXml, "snom.xml")]),
            (Vendor::Cisco, &[(Shape::SpaMacXml, "cisco.xml")]),
        ];
        for (vendor, answered) in expected {
            for shape in Shape::ALL {
                let want = answered.iter().find(|(s, _)| *s == shape).map(|(_, t)| *t);
                assert_eq!(
                    spec_for(vendor, shape).map(|f| f.template),
                    want,
                    "{vendor} {shape:?}"
                );
            }
        }
    }

    #[test]
    fn a_requested_name_leads_to_the_vendors_file_and_back() {
        for vendor in Vendor::ALL {
            for spec in files(vendor) {
                let name = file_name(spec, MAC);
                let req = requested(&name).unwrap();
                assert_eq!(req.mac, MAC);
                assert_eq!(spec_for(vendor, req.shape), Some(spec), "{name}");
            }
        }
        let yealink = requested("cfg001565aabbcc.xml").unwrap();
        assert_eq!(spec_for(Vendor::Yealink, yealink.shape), None);
        assert_eq!(
            file_name(&files(Vendor::Cisco)[0], MAC),
            "spa001565aabbcc.xml"
        );
    }
}
