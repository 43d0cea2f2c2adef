//! Which layout and template a phone gets, and its keys resolved against the bindings.
//!
//! A phone that is somebody (a hot-desk session, a fixed owner) gets that person's layout for
//! its model: the one chosen at login if the person may still use it, else the first (by name)
//! of the layouts they may choose — all of the model's person layouts, or only those their
//! Extension group lists. A phone that is nobody gets the Domain's logged-out layout for its
//! model. Without any layout, a person's phone shows its line and a logged-out phone a login
//! key. A BLF key names an Extension by id, so it shows whoever that Extension is now, under
//! its current number and name.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::LineKey;
use super::models::{PhoneModel, Vendor, catalogue, find};
use crate::bindings::identity::{IdentityBinding, calling_identity};
use crate::bindings::snapshot::{Bindings, ExtensionFacts};

/// The login feature code a login key dials.
pub const LOGIN_CODE: &str = "*11";
/// The logout feature code a logout key dials.
pub const LOGOUT_CODE: &str = "*12";
/// The voicemail feature code a voicemail key dials.
pub const VOICEMAIL_CODE: &str = "*97";
/// Call park slots of a Domain's lot; slot N is dialled `*7N`.
pub const PARK_SLOTS: u8 = 9;

/// The code of a park slot (`*71` for slot 1).
pub fn park_code(slot: u8) -> String {
    format!("*7{slot}")
}

/// Longest key label.
pub const MAX_LABEL: usize = 32;
/// Longest speed-dial number.
pub const MAX_NUMBER: usize = 32;

/// One key of a stored layout (its position in the list is its slot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeySpec {
    /// The phone's account.
    Line {
        /// Label (default: the account's label).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// Busy lamp of an Extension (it follows the person: whoever that Extension is).
    Blf {
        /// The Extension watched.
        extension_id: Uuid,
        /// Label (default: "<number> <name>").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// Dials a number.
    SpeedDial {
        /// The number (digits, `*`, `#`, a leading `+`).
        number: String,
        /// Label.
        label: String,
    },
    /// Dials the voicemail (`*97`).
    Voicemail {
        /// Label (default "Voicemail").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// A call park slot of the Domain's lot (`*71` … `*79`): pressed during a call it parks
    /// the call there, pressed when the slot holds a call it picks it up.
    Park {
        /// The slot, 1 to 9.
        slot: u8,
        /// Label (default "Park <slot>").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// The phone's own do-not-disturb.
    Dnd {
        /// Label (default "DND").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// Dials the login code (`*11`).
    Login {
        /// Label (default "Log in").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// Dials the logout code (`*12`).
    Logout {
        /// Label (default "Log out").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// Nothing on this slot.
    Empty,
}

impl KeySpec {
    /// The Extension a BLF key watches.
    pub fn blf_extension(&self) -> Option<Uuid> {
        match self {
            Self::Blf { extension_id, .. } => Some(*extension_id),
            _ => None,
        }
    }

    fn label(&self) -> Option<&str> {
        match self {
            Self::Line { label }
            | Self::Blf { label, .. }
            | Self::Voicemail { label }
            | Self::Park { label, .. }
            | Self::Dnd { label }
            | Self::Login { label }
            | Self::Logout { label } => label.as_deref(),
            Self::SpeedDial { label, .. } => Some(label),
            Self::Empty => None,
        }
    }
}

/// Why a layout's keys are refused, with the 0-based index of the key (none: the list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProblem {
    /// Index of the key in the list, if one key is at fault.
    pub index: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// Checks a layout's keys for a model: no more keys than the model (with its expansion
/// modules) has, labels and numbers of a sensible size and alphabet, no duplicate line key.
pub fn check_keys(model: &PhoneModel, keys: &[KeySpec]) -> Vec<KeyProblem> {
    let mut problems = Vec::new();
    let max = model.max_keys() as usize;
    if keys.len() > max {
        problems.push(KeyProblem {
            index: None,
            message: format!(
                "has {} keys; a {} has {} ({} on the phone, {} expansion modules of {})",
                keys.len(),
                model.name,
                max,
                model.line_keys,
                model.expansion_modules,
                model.keys_per_module
            ),
        });
    }
    for (i, key) in keys.iter().enumerate() {
        if let Some(label) = key.label() {
            let label = label.trim();
            if label.chars().count() > MAX_LABEL || label.chars().any(char::is_control) {
                problems.push(KeyProblem {
                    index: Some(i),
                    message: format!("label must be at most {MAX_LABEL} printable characters"),
                });
            }
            if matches!(key, KeySpec::SpeedDial { .. }) && label.is_empty() {
                problems.push(KeyProblem {
                    index: Some(i),
                    message: "a speed dial needs a label".into(),
                });
            }
        }
        if let KeySpec::Park { slot, .. } = key
            && !(1..=PARK_SLOTS).contains(slot)
        {
            problems.push(KeyProblem {
                index: Some(i),
                message: format!("a park slot is 1 to {PARK_SLOTS}"),
            });
        }
        if let KeySpec::SpeedDial { number, .. } = key
            && !valid_number(number)
        {
            problems.push(KeyProblem {
                index: Some(i),
                message: format!(
                    "number must be 1 to {MAX_NUMBER} digits, `*` or `#` (a leading `+` allowed)"
                ),
            });
        }
    }
    problems
}

fn valid_number(n: &str) -> bool {
    let digits = n.strip_prefix('+').unwrap_or(n);
    !digits.is_empty()
        && n.len() <= MAX_NUMBER
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
}

/// A phone model by the Device's vendor and model fields: the catalogue id in `model` (e.g.
/// `yealink-t54w`), or the vendor and the model's name (`Yealink` + `T54W`, spaces and dashes
/// ignored).
pub fn phone_model(vendor: Option<&str>, model: Option<&str>) -> Option<&'static PhoneModel> {
    let model = model?.trim();
    if let Some(m) = find(model) {
        return Some(m);
    }
    let vendor = Vendor::parse(&vendor?.trim().to_ascii_lowercase())?;
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '-' && *c != '_')
            .flat_map(char::to_lowercase)
            .collect()
    };
    let wanted = squash(model);
    catalogue()
        .iter()
        .find(|m| m.vendor == vendor && squash(m.name) == wanted)
}

/// A stored layout, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutFacts {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Catalogue id of its model.
    pub model: String,
    /// Its keys.
    pub keys: Vec<KeySpec>,
    /// The Domain's logged-out layout for the model.
    pub logged_out: bool,
}

/// A stored tenant template (without its body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFacts {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Vendor family.
    pub vendor: Vendor,
}

/// What a Domain's people may choose, and its layouts and templates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalogue {
    /// Layouts, by name.
    pub layouts: Vec<LayoutFacts>,
    /// Templates, by name.
    pub templates: Vec<TemplateFacts>,
    /// Layouts each Extension group lists (groups that list none are absent).
    pub group_layouts: BTreeMap<Uuid, BTreeSet<Uuid>>,
    /// Templates each Extension group lists (groups that list none are absent).
    pub group_templates: BTreeMap<Uuid, BTreeSet<Uuid>>,
}

/// A choice made at login.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginChoice {
    /// The layout chosen.
    pub layout_id: Option<Uuid>,
    /// The template chosen.
    pub template_id: Option<Uuid>,
}

/// Where a phone's layout came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutSource {
    /// Chosen by the person at login.
    Chosen,
    /// The person's (the only or first one they may choose).
    Person,
    /// The Domain's logged-out layout for the model.
    LoggedOut,
    /// No layout: the default keys (a line for a person, a login key when logged out).
    Default,
}

/// The layouts a person may choose for a model, by name.
pub fn allowed_layouts<'a>(
    cat: &'a Catalogue,
    person: &ExtensionFacts,
    model: &str,
) -> Vec<&'a LayoutFacts> {
    let granted = person.group_id.and_then(|g| cat.group_layouts.get(&g));
    cat.layouts
        .iter()
        .filter(|l| !l.logged_out && l.model.eq_ignore_ascii_case(model))
        .filter(|l| granted.is_none_or(|g| g.contains(&l.id)))
        .collect()
}

/// The templates a person may choose for a vendor, by name (empty when their group lists none:
/// the phone's own template applies).
pub fn allowed_templates<'a>(
    cat: &'a Catalogue,
    person: &ExtensionFacts,
    vendor: Vendor,
) -> Vec<&'a TemplateFacts> {
    let Some(granted) = person.group_id.and_then(|g| cat.group_templates.get(&g)) else {
        return Vec::new();
    };
    cat.templates
        .iter()
        .filter(|t| t.vendor == vendor && granted.contains(&t.id))
        .collect()
}

/// What one phone gets: its person (if any), layout, template and resolved keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhonePlan {
    /// The Extension the phone is now, for a person.
    pub person: Option<Uuid>,
    /// The layout used, if any.
    pub layout: Option<(Uuid, String)>,
    /// Where it came from.
    pub layout_source: LayoutSource,
    /// The tenant template used for the main file (none: the built-in one).
    pub template: Option<(Uuid, String)>,
    /// The keys, in slot order.
    pub keys: Vec<LineKey>,
}

/// Plans one phone: `device_template` is the template set on the Device itself.
pub fn plan(
    b: &Bindings,
    cat: &Catalogue,
    device_id: Uuid,
    model: &PhoneModel,
    choice: LoginChoice,
    device_template: Option<Uuid>,
) -> PhonePlan {
    let identity = calling_identity(b, device_id);
    let person = identity
        .as_ref()
        .filter(|i| {
            matches!(
                i.binding,
                IdentityBinding::Fixed | IdentityBinding::HotdeskSession { .. }
            )
        })
        .and_then(|i| i.effective_extension.as_ref())
        .and_then(|e| b.extensions.get(&e.id));
    let (layout, layout_source) = match person {
        Some(p) => {
            let allowed = allowed_layouts(cat, p, model.id);
            match choice
                .layout_id
                .and_then(|id| allowed.iter().find(|l| l.id == id))
            {
                Some(l) => (Some(*l), LayoutSource::Chosen),
                None => match allowed.first() {
                    Some(l) => (Some(*l), LayoutSource::Person),
                    None => (None, LayoutSource::Default),
                },
            }
        }
        None => match cat
            .layouts
            .iter()
            .find(|l| l.logged_out && l.model.eq_ignore_ascii_case(model.id))
        {
            Some(l) => (Some(l), LayoutSource::LoggedOut),
            None => (None, LayoutSource::Default),
        },
    };
    let specs: Vec<KeySpec> = match (layout, person) {
        (Some(l), _) => l.keys.clone(),
        (None, Some(_)) => vec![KeySpec::Line { label: None }],
        (None, None) => vec![KeySpec::Login { label: None }],
    };
    let template = template_for(cat, person, model.vendor, choice, device_template);
    PhonePlan {
        person: person.map(|p| p.id),
        layout: layout.map(|l| (l.id, l.name.clone())),
        layout_source,
        template: template.map(|t| (t.id, t.name.clone())),
        keys: resolve(b, model, &specs, person),
    }
}

fn template_for<'a>(
    cat: &'a Catalogue,
    person: Option<&ExtensionFacts>,
    vendor: Vendor,
    choice: LoginChoice,
    device_template: Option<Uuid>,
) -> Option<&'a TemplateFacts> {
    if let Some(p) = person {
        let allowed = allowed_templates(cat, p, vendor);
        if let Some(t) = choice
            .template_id
            .and_then(|id| allowed.iter().find(|t| t.id == id))
        {
            return Some(t);
        }
        if let Some(t) = allowed.first() {
            return Some(t);
        }
    }
    device_template.and_then(|id| {
        cat.templates
            .iter()
            .find(|t| t.id == id && t.vendor == vendor)
    })
}

/// Resolves keys to what the phone shows: a BLF of a deleted or disabled Extension and an
/// `empty` slot leave the slot free; nothing beyond the model's keys is kept.
pub fn resolve(
    b: &Bindings,
    model: &PhoneModel,
    specs: &[KeySpec],
    person: Option<&ExtensionFacts>,
) -> Vec<LineKey> {
    let account_label = person
        .map(|p| format!("{} {}", p.number, p.display_name))
        .unwrap_or_else(|| "Logged out".to_owned());
    let max = model.max_keys() as usize;
    let mut out = Vec::new();
    for (i, spec) in specs.iter().enumerate().take(max) {
        let slot = i as u32 + 1;
        let own = |default: &str| {
            spec.label()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .unwrap_or(default)
                .to_owned()
        };
        let (kind, value, label) = match spec {
            KeySpec::Empty => continue,
            KeySpec::Line { .. } => ("line", String::new(), own(&account_label)),
            KeySpec::Blf { extension_id, .. } => {
                let Some(e) = b.extensions.get(extension_id).filter(|e| e.enabled) else {
                    continue;
                };
                let default = format!("{} {}", e.number, e.display_name);
                ("blf", e.number.clone(), own(&default))
            }
            KeySpec::SpeedDial { number, .. } => ("speed_dial", number.clone(), own(number)),
            KeySpec::Voicemail { .. } => ("voicemail", VOICEMAIL_CODE.to_owned(), own("Voicemail")),
            KeySpec::Park { slot, .. } => ("park", park_code(*slot), own(&format!("Park {slot}"))),
            KeySpec::Dnd { .. } => ("dnd", String::new(), own("DND")),
            KeySpec::Login { .. } => ("login", LOGIN_CODE.to_owned(), own("Log in")),
            KeySpec::Logout { .. } => ("logout", LOGOUT_CODE.to_owned(), own("Log out")),
        };
        let (module, index) = if slot <= model.line_keys {
            (0, slot)
        } else {
            let rest = slot - model.line_keys - 1;
            let per = model.keys_per_module.max(1);
            (rest / per + 1, rest % per + 1)
        };
        out.push(LineKey {
            slot,
            module,
            index,
            kind: kind.to_owned(),
            value,
            label,
            line: 1,
        });
    }
    out
}

/// The Extensions a layout's BLF keys watch.
pub fn watched(keys: &[KeySpec]) -> BTreeSet<Uuid> {
    keys.iter().filter_map(KeySpec::blf_extension).collect()
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use crate::bindings::snapshot::SessionOrigin;
    use crate::bindings::testkit::Kit;

    fn t54w() -> &'static PhoneModel {
        find("yealink-t54w").expect("in the catalogue")
    }

    fn layout(
        id: u128,
        name: &str,
        model: &str,
        keys: Vec<KeySpec>,
        logged_out: bool,
    ) -> LayoutFacts {
        LayoutFacts {
            id: Uuid::from_u128(id),
            name: name.into(),
            model: model.into(),
            keys,
            logged_out,
        }
    }

    #[test]
    fn a_model_is_found_by_id_or_by_vendor_and_name() {
        assert_eq!(
            phone_model(None, Some("yealink-t54w")).map(|m| m.id),
            Some("yealink-t54w")
        );
        assert_eq!(
            phone_model(Some("Yealink"), Some("T54W")).map(|m| m.id),
            Some("yealink-t54w")
        );
        assert_eq!(
            phone_model(Some("yealink"), Some("t-54 w")).map(|m| m.id),
            Some("yealink-t54w")
        );
        assert_eq!(phone_model(Some("Yealink"), None), None);
        assert_eq!(phone_model(Some("Nokia"), Some("3310")), None);
        assert_eq!(
            phone_model(None, Some("T54W")),
            None,
            "a name alone is ambiguous"
        );
    }

    #[test]
    fn keys_beyond_the_model_and_bad_keys_are_named() {
        let m = t54w();
        let ok = vec![KeySpec::Line { label: None }; m.max_keys() as usize];
        assert!(check_keys(m, &ok).is_empty());
        let too_many = vec![KeySpec::Dnd { label: None }; m.max_keys() as usize + 1];
        let p = check_keys(m, &too_many);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].index, None);
        assert!(p[0].message.contains(m.name), "{}", p[0].message);
        let bad = vec![
            KeySpec::SpeedDial {
                number: "12a".into(),
                label: "x".into(),
            },
            KeySpec::SpeedDial {
                number: "+4930".into(),
                label: " ".into(),
            },
            KeySpec::Line {
                label: Some("x".repeat(MAX_LABEL + 1)),
            },
            KeySpec::SpeedDial {
                number: "*97#".into(),
                label: "ok".into(),
            },
        ];
        let idx: Vec<Option<usize>> = check_keys(m, &bad).iter().map(|p| p.index).collect();
        assert_eq!(idx, vec![Some(0), Some(1), Some(2)]);
    }

    #[test]
    fn a_logged_out_phone_gets_the_logged_out_layout_and_a_person_theirs() {
        let mut k = Kit::new();
        let alice = k.ext("201", "Alice");
        let bob = k.ext("202", "Bob");
        let phone = k.hotdesk("Desk 1", "d-1");
        let cat = Catalogue {
            layouts: vec![
                layout(
                    1,
                    "A",
                    "yealink-t54w",
                    vec![
                        KeySpec::Line { label: None },
                        KeySpec::Blf {
                            extension_id: bob,
                            label: None,
                        },
                        KeySpec::Logout { label: None },
                    ],
                    false,
                ),
                layout(
                    2,
                    "Out",
                    "yealink-t54w",
                    vec![
                        KeySpec::Empty,
                        KeySpec::Login {
                            label: Some("Sign in".into()),
                        },
                    ],
                    true,
                ),
                layout(
                    3,
                    "Other model",
                    "yealink-t42u",
                    vec![KeySpec::Dnd { label: None }],
                    false,
                ),
            ],
            ..Catalogue::default()
        };
        let out = plan(&k.b, &cat, phone, t54w(), LoginChoice::default(), None);
        assert_eq!(out.person, None);
        assert_eq!(out.layout_source, LayoutSource::LoggedOut);
        // The empty slot stays empty: the login key is on slot 2.
        assert_eq!(out.keys.len(), 1);
        assert_eq!(
            (
                out.keys[0].slot,
                out.keys[0].kind.as_str(),
                out.keys[0].value.as_str(),
                out.keys[0].label.as_str()
            ),
            (2, "login", LOGIN_CODE, "Sign in")
        );

        k.login(
            phone,
            alice,
            "2025-03-28T09:00:00Z",
            SessionOrigin::FeatureCode,
        );
        let p = plan(&k.b, &cat, phone, t54w(), LoginChoice::default(), None);
        assert_eq!(p.person, Some(alice));
        assert_eq!(p.layout.as_ref().map(|l| l.1.as_str()), Some("A"));
        let kinds: Vec<(&str, &str, &str)> = p
            .keys
            .iter()
            .map(|k| (k.kind.as_str(), k.value.as_str(), k.label.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("line", "", "201 Alice"),
                ("blf", "202", "202 Bob"),
                ("logout", LOGOUT_CODE, "Log out")
            ]
        );

        // The BLF follows the Extension: renamed, renumbered, disabled.
        k.ext_mut(bob).display_name = "Robert".into();
        k.ext_mut(bob).number = "212".into();
        let p = plan(&k.b, &cat, phone, t54w(), LoginChoice::default(), None);
        assert_eq!(
            (p.keys[1].value.as_str(), p.keys[1].label.as_str()),
            ("212", "212 Robert")
        );
        k.ext_mut(bob).enabled = false;
        let p = plan(&k.b, &cat, phone, t54w(), LoginChoice::default(), None);
        assert_eq!(
            p.keys.iter().map(|k| k.slot).collect::<Vec<_>>(),
            vec![1, 3]
        );
    }

    #[test]
    fn without_a_layout_a_person_gets_a_line_and_a_logged_out_phone_a_login_key() {
        let mut k = Kit::new();
        let alice = k.ext("201", "Alice");
        let phone = k.fixed("Desk", "d-1", alice);
        let desk = k.hotdesk("Desk 2", "d-2");
        let cat = Catalogue::default();
        let p = plan(&k.b, &cat, phone, t54w(), LoginChoice::default(), None);
        assert_eq!(p.layout_source, LayoutSource::Default);
        assert_eq!(p.keys[0].kind, "line");
        let p = plan(&k.b, &cat, desk, t54w(), LoginChoice::default(), None);
        assert_eq!(p.keys[0].kind, "login");
    }

    #[test]
    fn a_group_limits_the_choice_and_a_choice_outside_it_is_ignored() {
        let mut k = Kit::new();
        let alice = k.ext("201", "Alice");
        let group = k.group(
            "Support",
            crate::telephony::policy::LoggedOutMode::Inherit,
            None,
        );
        k.ext_mut(alice).group_id = Some(group);
        let phone = k.hotdesk("Desk", "d-1");
        k.login(phone, alice, "2025-03-28T09:00:00Z", SessionOrigin::Api);
        let mut cat = Catalogue {
            layouts: vec![
                layout(1, "A", "yealink-t54w", vec![], false),
                layout(2, "B", "yealink-t54w", vec![], false),
                layout(3, "C", "yealink-t54w", vec![], false),
            ],
            templates: vec![
                TemplateFacts {
                    id: Uuid::from_u128(10),
                    name: "Cisco one".into(),
                    vendor: Vendor::Cisco,
                },
                TemplateFacts {
                    id: Uuid::from_u128(11),
                    name: "Yealink one".into(),
                    vendor: Vendor::Yealink,
                },
            ],
            ..Catalogue::default()
        };
        let person = k.b.extensions.get(&alice).expect("alice").clone();
        assert_eq!(allowed_layouts(&cat, &person, "yealink-t54w").len(), 3);
        assert!(allowed_templates(&cat, &person, Vendor::Yealink).is_empty());
        cat.group_layouts
            .insert(group, [Uuid::from_u128(2), Uuid::from_u128(3)].into());
        cat.group_templates
            .insert(group, [Uuid::from_u128(10), Uuid::from_u128(11)].into());
        let names: Vec<&str> = allowed_layouts(&cat, &person, "yealink-t54w")
            .iter()
            .map(|l| l.name.as_str())
            .collect();
        assert_eq!(names, vec!["B", "C"]);
        let chosen = |layout: u128| LoginChoice {
            layout_id: Some(Uuid::from_u128(layout)),
            template_id: None,
        };
        let p = plan(&k.b, &cat, phone, t54w(), chosen(3), None);
        assert_eq!(
            (p.layout.map(|l| l.1), p.layout_source),
            (Some("C".to_owned()), LayoutSource::Chosen)
        );
        let p = plan(&k.b, &cat, phone, t54w(), chosen(1), None);
        assert_eq!(
            (p.layout.map(|l| l.1), p.layout_source),
            (Some("B".to_owned()), LayoutSource::Person)
        );
        // Only the template of the phone's vendor applies, even if the group lists others.
        assert_eq!(p.template.map(|t| t.1), Some("Yealink one".to_owned()));
    }

    #[test]
    fn keys_past_the_phone_go_to_the_expansion_modules() {
        let m = catalogue()
            .iter()
            .find(|m| m.expansion_modules > 0 && m.keys_per_module > 0)
            .expect("a model with modules");
        let k = Kit::new();
        let specs = vec![KeySpec::Dnd { label: None }; m.max_keys() as usize + 3];
        let keys = resolve(&k.b, m, &specs, None);
        assert_eq!(
            keys.len(),
            m.max_keys() as usize,
            "nothing beyond the model's keys"
        );
        let first_module = &keys[m.line_keys as usize];
        assert_eq!((first_module.module, first_module.index), (1, 1));
        let last = keys.last().expect("keys");
        assert_eq!(
            (last.module, last.index),
            (m.expansion_modules, m.keys_per_module)
        );
        assert!(
            keys.iter()
                .take(m.line_keys as usize)
                .all(|k| k.module == 0)
        );
    }

    #[test]
    fn stored_keys_round_trip_and_unknown_fields_are_refused() {
        let keys: Vec<KeySpec> = serde_json::from_str(
            r#"[{"kind":"blf","extension_id":"00000000-0000-0000-0000-000000000001"},{"kind":"speed_dial","number":"100","label":"Reception"},{"kind":"empty"}]"#,
        )
        .expect("keys");
        assert_eq!(
            serde_json::from_str::<Vec<KeySpec>>(&serde_json::to_string(&keys).expect("json"))
                .expect("again"),
            keys
        );
        assert!(serde_json::from_str::<KeySpec>(r#"{"kind":"line","colour":"red"}"#).is_err());
        assert!(
            serde_json::from_str::<KeySpec>(r#"{"kind":"park"}"#).is_err(),
            "a slot is needed"
        );
        assert!(serde_json::from_str::<KeySpec>(r#"{"kind":"transfer"}"#).is_err());
    }
}
