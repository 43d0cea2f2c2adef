//! The minijinja environment with the built-in templates: rendering a [`RenderContext`] into a
//! phone's file, and checking a tenant's template by rendering it for a sample phone.
//!
//! Built-in templates live in `templates/` and are registered under their file names; a name
//! ending in `.xml` switches on auto-escaping (XML entities, see [`xml_formatter`]), a `.cfg`
//! (key = value) does not. A tenant template replaces a vendor's main file: it extends the
//! built-in one (`{% extends "yealink.cfg" %}`) and overrides its blocks, and it is rendered in
//! a clone of the environment (the built-ins are shared, the clone costs microseconds) where an
//! undefined variable is an error naming the tenant's line.

use std::fmt::Write as _;
use std::io;

use minijinja::{
    AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior, Value,
};

use super::models::{self, PhoneModel, Vendor};
use super::{Account, DeviceInfo, LineKey, ProvisioningInfo, RenderContext, SipServer, TimeInfo};

/// The built-in templates, by the name [`models::FileSpec::template`] gives them.
const BUILT_INS: [(&str, &str); 6] = [
    ("yealink.cfg", include_str!("templates/yealink.cfg")),
    ("poly-master.xml", include_str!("templates/poly-master.xml")),
    ("poly.xml", include_str!("templates/poly.xml")),
    ("grandstream.xml", include_str!("templates/grandstream.xml")),
    ("snom.xml", include_str!("templates/snom.xml")),
    ("cisco.xml", include_str!("templates/cisco.xml")),
];

/// The most a rendered file may weigh; a phone's configuration is a few KiB, so a template
/// that writes more than this is looping over something it should not.
const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// The fuel a tenant template may burn per render (the built-in ones need a few thousand).
const TENANT_FUEL: u64 = 2_000_000;

/// The source of a built-in template (`yealink.cfg`, `poly.xml` …), for tenants to read.
pub fn built_in_source(name: &str) -> Option<&'static str> {
    BUILT_INS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, source)| *source)
}

/// Which template to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template<'a> {
    /// A built-in template by its name (e.g. `yealink.cfg`, see [`models::FileSpec::template`]).
    BuiltIn(&'a str),
    /// A tenant's template for `vendor`'s main file; usually `{% extends "<main>" %}` + blocks.
    Custom {
        /// The vendor whose main file it replaces (decides XML escaping).
        vendor: Vendor,
        /// The template source.
        body: &'a str,
    },
}

/// A template that does not compile or render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(*.line, .message))]
pub struct TemplateError {
    /// 1-based line in the tenant's template, when the error is in it.
    pub line: Option<usize>,
    /// What is wrong, for a person.
    pub message: String,
}

/// E.g. "line 3: undefined value: `acount.user`"; without a line, the message alone.
fn describe(line: Option<usize>, message: &str) -> String {
    match line {
        Some(line) => format!("line {line}: {message}"),
        None => message.to_owned(),
    }
}

/// Renders phone files from the built-in templates and tenant templates.
#[derive(Debug, Clone)]
pub struct Renderer {
    env: Environment<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

/// The name of the vendor's main built-in template (e.g. `yealink.cfg`).
pub fn main_template(vendor: Vendor) -> &'static str {
    models::main_file(vendor).template
}

/// The name a tenant's template is registered under: its extension decides the escaping.
fn custom_name(vendor: Vendor) -> &'static str {
    if main_template(vendor).ends_with(".xml") {
        "tenant.xml"
    } else {
        "tenant.cfg"
    }
}

impl Renderer {
    /// The environment with every built-in template.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(true);
        env.set_formatter(xml_formatter);
        env.set_debug(false);
        for (name, source) in BUILT_INS {
            if let Err(err) = env.add_template(name, source) {
                // Unit tests render every built-in; this only fires on a broken build.
                tracing::error!(template = name, error = %err, "built-in template does not compile");
            }
        }
        Self { env }
    }

    /// Renders a built-in template, or a tenant template for the vendor's main file.
    pub fn render(
        &self,
        template: Template<'_>,
        ctx: &RenderContext,
    ) -> Result<String, TemplateError> {
        match template {
            Template::BuiltIn(name) => {
                let tmpl = self
                    .env
                    .get_template(name)
                    .map_err(|e| template_error(&e, None))?;
                render_capped(&tmpl, ctx, None)
            }
            Template::Custom { vendor, body } => {
                let name = custom_name(vendor);
                let mut env = self.env.clone();
                // A tenant's loops end: every instruction costs fuel, and a file needs far
                // less than this.
                env.set_fuel(Some(TENANT_FUEL));
                let custom = Some((name, body));
                env.add_template_owned(name, body.to_owned())
                    .map_err(|e| template_error(&e, custom))?;
                let tmpl = env
                    .get_template(name)
                    .map_err(|e| template_error(&e, custom))?;
                render_capped(&tmpl, ctx, custom)
            }
        }
    }

    /// Checks a tenant template for `vendor` by rendering it for [`sample_context`].
    pub fn check(&self, vendor: Vendor, body: &str) -> Result<(), TemplateError> {
        self.render(Template::Custom { vendor, body }, &sample_context(vendor))
            .map(|_| ())
    }
}

/// Renders into a buffer that refuses to grow past [`MAX_OUTPUT_BYTES`].
fn render_capped(
    tmpl: &minijinja::Template<'_, '_>,
    ctx: &RenderContext,
    custom: Option<(&str, &str)>,
) -> Result<String, TemplateError> {
    let mut out = CappedWriter {
        buf: Vec::new(),
        limit: MAX_OUTPUT_BYTES,
    };
    match tmpl.render_captured_to(ctx, &mut out) {
        Ok(_) => String::from_utf8(out.buf).map_err(|_| TemplateError {
            line: None,
            message: "the template wrote something that is not UTF-8".into(),
        }),
        Err(err) if err.kind() == ErrorKind::WriteFailure => Err(TemplateError {
            line: None,
            message: format!(
                "the file would be larger than {} KiB; does a loop run away?",
                MAX_OUTPUT_BYTES / 1024
            ),
        }),
        Err(err) => Err(template_error(&err, custom)),
    }
}

struct CappedWriter {
    buf: Vec<u8>,
    limit: usize,
}

impl io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            return Err(io::Error::other("output limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A minijinja error as a [`TemplateError`]: the line when the error is in the tenant's
/// template `custom` (its name and body), the kind and detail without minijinja's
/// `(in name:line)` suffix — or, when minijinja gives no detail (an undefined value), the
/// expression at fault — and the built-in template's name and line when the error is in one of
/// those.
fn template_error(err: &Error, custom: Option<(&str, &str)>) -> TemplateError {
    // An error inside an included or extended template can come wrapped; the innermost
    // minijinja error is the one that says where.
    let mut innermost = err;
    while let Some(inner) =
        std::error::Error::source(innermost).and_then(|s| s.downcast_ref::<Error>())
    {
        innermost = inner;
    }
    let in_custom = custom.filter(|(name, _)| innermost.name() == Some(*name));
    let mut message = match innermost.detail() {
        Some(detail) => format!("{}: {detail}", innermost.kind()),
        None => {
            let culprit = in_custom
                .zip(innermost.range())
                .and_then(|((_, body), range)| body.get(range))
                .filter(|text| text.len() <= 80 && !text.contains('\n'));
            match culprit {
                Some(text) => format!("{}: `{text}`", innermost.kind()),
                None => innermost.kind().to_string(),
            }
        }
    };
    let line = match (innermost.name(), innermost.line()) {
        (Some(_), line) if in_custom.is_some() => line,
        (Some(name), Some(line)) => {
            let _ = write!(message, " (in the built-in template {name}, line {line})");
            None
        }
        _ => None,
    };
    TemplateError { line, message }
}

/// The default formatter, except that `.xml` templates escape as XML (`&amp;`, `&lt;`, `&gt;`,
/// `&quot;`, `&apos;`) rather than HTML, which also turns `/` into `&#x2f;` — valid XML, but
/// not what an embedded parser on a phone expects in a URL.
fn xml_formatter(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    if state.auto_escape() != AutoEscape::Html || value.is_safe() || value.is_undefined() {
        return minijinja::escape_formatter(out, state, value);
    }
    let text = value.to_string();
    let mut rest = text.as_str();
    while let Some(pos) = rest.find(['&', '<', '>', '"', '\'']) {
        let entity = match rest.as_bytes()[pos] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&apos;",
        };
        write_str(out, &rest[..pos])?;
        write_str(out, entity)?;
        rest = &rest[pos + 1..];
    }
    write_str(out, rest)
}

fn write_str(out: &mut Output, s: &str) -> Result<(), Error> {
    out.write_str(s)
        .map_err(|_| Error::new(ErrorKind::WriteFailure, "could not write the output"))
}

/// A plausible phone of the vendor's first catalogue model with a key of every kind, for
/// previews and for [`Renderer::check`].
pub fn sample_context(vendor: Vendor) -> RenderContext {
    let first = models::of_vendor(vendor).next().copied();
    sample_context_for(&first.unwrap_or(PhoneModel {
        id: "sample",
        vendor,
        name: "Sample",
        line_keys: 8,
        expansion_modules: 0,
        keys_per_module: 0,
    }))
}

/// A plausible phone of `model`: the phone's keys hold one key of every kind (a line, two BLFs,
/// a speed dial, voicemail, DND, log in, log out) as far as they go, and each expansion module
/// it takes holds a BLF on its first key and a speed dial on its last.
pub fn sample_context_for(model: &PhoneModel) -> RenderContext {
    let mac = match model.vendor {
        Vendor::Yealink => "001565a1b2c3",
        Vendor::Poly => "0004f2a1b2c3",
        Vendor::Grandstream => "000b82a1b2c3",
        Vendor::Snom => "000413a1b2c3",
        Vendor::Cisco => "6c710da1b2c3",
    };
    let phone_keys: [(&str, &str, &str); 9] = [
        ("line", "", "201 Alice"),
        ("blf", "202", "Bob"),
        ("blf", "203", "Carol"),
        ("speed_dial", "+493012345678", "Front desk"),
        ("voicemail", "*97", "Voicemail"),
        ("park", "*71", "Park 1"),
        ("dnd", "", "DND"),
        ("login", "*11", "Log in"),
        ("logout", "*12", "Log out"),
    ];
    let mut keys = Vec::new();
    let key = |module: u32, index: u32, (kind, value, label): (&str, &str, &str)| LineKey {
        slot: if module == 0 {
            index
        } else {
            model.line_keys + (module - 1) * model.keys_per_module + index
        },
        module,
        index,
        kind: kind.to_owned(),
        value: value.to_owned(),
        label: label.to_owned(),
        line: 1,
    };
    for (index, k) in (1..=model.line_keys).zip(phone_keys) {
        keys.push(key(0, index, k));
    }
    for module in 1..=model.expansion_modules {
        keys.push(key(module, 1, ("blf", "210", "Dan")));
        if model.keys_per_module > 1 {
            keys.push(key(
                module,
                model.keys_per_module,
                ("speed_dial", "0800123456", "Hotline"),
            ));
        }
    }
    RenderContext {
        device: DeviceInfo {
            mac: mac.to_owned(),
            label: "Reception 2F".to_owned(),
        },
        model: model.info(),
        server: SipServer {
            domain: "acme.pbx.example.net".to_owned(),
            proxy: "sip.example.net".to_owned(),
            port: 5061,
            transport: "tls".to_owned(),
            register_expires: 600,
        },
        account: Account {
            user: "d7kq2mxr9tbw".to_owned(),
            password: Some("sip-secret-1".to_owned()),
            display_name: "Alice Martin".to_owned(),
            label: "201 Alice".to_owned(),
            extension: Some("201".to_owned()),
            mailbox: Some("201".to_owned()),
            voicemail_code: "*97".to_owned(),
            mwi: true,
        },
        time: TimeInfo {
            timezone: "Europe/Berlin".to_owned(),
            utc_offset_minutes: 60,
            ntp_server: "pool.ntp.org".to_owned(),
        },
        language: "en".to_owned(),
        codecs: ["G722", "PCMA", "PCMU", "opus"].map(str::to_owned).to_vec(),
        provisioning: ProvisioningInfo {
            url: "https://pbx.example.net/provision".to_owned(),
            resync_secs: 86_400,
            username: format!("prov-{mac}"),
            password: Some("prov-secret-1".to_owned()),
        },
        keys,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::provisioning::models::{catalogue, files, find};

    fn built_in(template: &str, ctx: &RenderContext) -> String {
        Renderer::new()
            .render(Template::BuiltIn(template), ctx)
            .unwrap_or_else(|e| panic!("{template} for {}: {e}", ctx.model.id))
    }

    fn main_file(ctx: &RenderContext) -> String {
        let vendor = Vendor::parse(&ctx.model.vendor).unwrap();
        built_in(main_template(vendor), ctx)
    }

    fn ctx_for(id: &str) -> RenderContext {
        sample_context_for(find(id).unwrap())
    }

    /// A few models per vendor: the largest, one with modules, the smallest.
    fn sample_models() -> Vec<&'static PhoneModel> {
        [
            "yealink-t58w",
            "yealink-t54w",
            "yealink-t46u",
            "yealink-t42u",
            "poly-vvx450",
            "poly-vvx250",
            "poly-edge-e350",
            "grandstream-gxp2170",
            "grandstream-gxp2160",
            "grandstream-grp2614",
            "grandstream-grp2615",
            "snom-d785",
            "snom-d717",
            "cisco-8861",
            "cisco-8851",
            "cisco-7841",
        ]
        .into_iter()
        .map(|id| find(id).unwrap())
        .collect()
    }

    /// Checks a Yealink file line by line: the version header, then `key = value` lines.
    fn assert_yealink_format(out: &str) {
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("#!version:1.0.0.1"));
        for line in lines {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, _value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not key = value: {line:?}"));
            let key = key.trim_end();
            assert!(
                !key.is_empty()
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.'),
                "bad key in {line:?}"
            );
        }
    }

    fn xml(out: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(out).unwrap_or_else(|e| panic!("{e}\n{out}"))
    }

    /// `key = value` lines as pairs.
    fn yealink_pairs(out: &str) -> Vec<(&str, &str)> {
        out.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect()
    }

    fn yealink_value<'a>(out: &'a str, key: &str) -> Option<&'a str> {
        yealink_pairs(out)
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// Every attribute of every element of a Poly file, as (name, value).
    fn poly_attributes(doc: &roxmltree::Document<'_>) -> Vec<(String, String)> {
        doc.descendants()
            .flat_map(|n| {
                n.attributes()
                    .map(|a| (a.name().to_owned(), a.value().to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn poly_value(doc: &roxmltree::Document<'_>, name: &str) -> Option<String> {
        poly_attributes(doc)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Grandstream `<item name>` → text.
    fn gs_items(doc: &roxmltree::Document<'_>) -> Vec<(String, String)> {
        doc.descendants()
            .filter(|n| n.has_tag_name("item"))
            .map(|n| {
                (
                    n.attribute("name").unwrap_or_default().to_owned(),
                    n.text().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    fn gs_value(doc: &roxmltree::Document<'_>, name: &str) -> Option<String> {
        gs_items(doc)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Text of the first element with this tag name (Snom settings, Cisco parameters).
    fn element_text(doc: &roxmltree::Document<'_>, tag: &str) -> Option<String> {
        doc.descendants()
            .find(|n| n.has_tag_name(tag))
            .map(|n| n.text().unwrap_or_default().to_owned())
    }

    fn phone_keys(ctx: &RenderContext) -> Vec<&LineKey> {
        ctx.keys.iter().filter(|k| k.module == 0).collect()
    }

    fn module_keys(ctx: &RenderContext) -> Vec<&LineKey> {
        ctx.keys.iter().filter(|k| k.module > 0).collect()
    }

    #[test]
    fn every_built_in_template_compiles_and_every_file_spec_names_one() {
        let renderer = Renderer::new();
        for (name, _) in BUILT_INS {
            assert!(renderer.env.get_template(name).is_ok(), "{name}");
        }
        for vendor in Vendor::ALL {
            for spec in files(vendor) {
                assert!(
                    BUILT_INS.iter().any(|(n, _)| *n == spec.template),
                    "{}",
                    spec.template
                );
            }
            let main = main_template(vendor);
            assert!(main.starts_with(vendor.as_str()), "{main}");
        }
        assert_eq!(main_template(Vendor::Yealink), "yealink.cfg");
        assert_eq!(main_template(Vendor::Poly), "poly.xml");
    }

    #[test]
    fn every_file_of_every_catalogue_model_renders_in_its_format() {
        for model in catalogue() {
            let ctx = sample_context_for(model);
            for spec in files(model.vendor) {
                let out = built_in(spec.template, &ctx);
                if spec.template.ends_with(".xml") {
                    xml(&out);
                } else {
                    assert_yealink_format(&out);
                }
                assert!(
                    !out.contains("none"),
                    "{} {}: none leaked",
                    model.id,
                    spec.template
                );
                assert!(
                    !out.contains("&#x"),
                    "{} {}: HTML escaping",
                    model.id,
                    spec.template
                );
            }
        }
    }

    #[test]
    fn the_sample_phone_has_a_key_of_every_kind_on_each_vendors_first_model() {
        for vendor in Vendor::ALL {
            let ctx = sample_context(vendor);
            assert_eq!(ctx.model.vendor, vendor.as_str());
            for kind in [
                "line",
                "blf",
                "speed_dial",
                "voicemail",
                "park",
                "dnd",
                "login",
                "logout",
            ] {
                assert!(
                    ctx.keys.iter().any(|k| k.kind == kind),
                    "{vendor}: no {kind}"
                );
            }
            let slots: Vec<u32> = ctx.keys.iter().map(|k| k.slot).collect();
            assert!(
                slots.windows(2).all(|w| w[0] < w[1]),
                "{vendor}: slots not in order"
            );
            assert!(
                ctx.keys
                    .iter()
                    .all(|k| k.slot <= find(&ctx.model.id).unwrap().max_keys())
            );
        }
    }

    #[test]
    fn each_vendors_main_file_holds_the_account_the_display_name_and_the_sip_domain() {
        for model in sample_models() {
            let ctx = sample_context_for(model);
            let out = main_file(&ctx);
            for needle in [
                ctx.account.user.as_str(),
                ctx.account.display_name.as_str(),
                ctx.server.domain.as_str(),
                ctx.server.proxy.as_str(),
                ctx.time.ntp_server.as_str(),
            ] {
                assert!(out.contains(needle), "{}: {needle} missing", model.id);
            }
        }
    }

    #[test]
    fn yealink_writes_phone_keys_as_linekeys_and_module_keys_as_expansion_module_keys() {
        for id in [
            "yealink-t58w",
            "yealink-t54w",
            "yealink-t46u",
            "yealink-t42u",
        ] {
            let ctx = ctx_for(id);
            let out = main_file(&ctx);
            let pairs = yealink_pairs(&out);
            let linekeys = pairs
                .iter()
                .filter(|(k, _)| k.starts_with("linekey.") && k.ends_with(".type"))
                .count();
            let module_types = pairs
                .iter()
                .filter(|(k, _)| k.starts_with("expansion_module.") && k.ends_with(".type"))
                .count();
            assert_eq!(linekeys, phone_keys(&ctx).len(), "{id}");
            assert_eq!(module_types, module_keys(&ctx).len(), "{id}");
            for key in &ctx.keys {
                let p = if key.module == 0 {
                    format!("linekey.{}", key.index)
                } else {
                    format!("expansion_module.{}.key.{}", key.module, key.index)
                };
                let want = match key.kind.as_str() {
                    "line" => "15",
                    "blf" => "16",
                    "dnd" => "5",
                    "park" => "10",
                    _ => "13",
                };
                assert_eq!(
                    yealink_value(&out, &format!("{p}.type")),
                    Some(want),
                    "{id} {p}"
                );
                assert_eq!(
                    yealink_value(&out, &format!("{p}.label")),
                    Some(key.label.as_str())
                );
                if key.kind != "line" {
                    assert_eq!(
                        yealink_value(&out, &format!("{p}.value")),
                        Some(key.value.as_str())
                    );
                }
            }
        }
        let t54w = main_file(&ctx_for("yealink-t54w"));
        assert_eq!(
            yealink_value(&t54w, "expansion_module.3.key.60.type"),
            Some("13")
        );
        assert_eq!(yealink_value(&t54w, "expansion_module.4.key.1.type"), None);
    }

    #[test]
    fn yealink_writes_the_account_time_codecs_and_provisioning_in_its_own_terms() {
        let ctx = ctx_for("yealink-t54w");
        let out = main_file(&ctx);
        for (key, want) in [
            ("account.1.user_name", "d7kq2mxr9tbw"),
            ("account.1.auth_name", "d7kq2mxr9tbw"),
            ("account.1.password", "sip-secret-1"),
            ("account.1.display_name", "Alice Martin"),
            ("account.1.label", "201 Alice"),
            ("account.1.sip_server.1.address", "acme.pbx.example.net"),
            ("account.1.sip_server.1.port", "5061"),
            ("account.1.sip_server.1.transport_type", "2"),
            ("account.1.outbound_proxy.1.address", "sip.example.net"),
            ("account.1.subscribe_mwi", "1"),
            ("voice_mail.number.1", "*97"),
            ("account.1.codec.g722.priority", "1"),
            ("account.1.codec.pcma.priority", "2"),
            ("account.1.codec.pcmu.priority", "3"),
            ("account.1.codec.opus.priority", "4"),
            ("account.1.codec.g729.enable", "0"),
            ("local_time.time_zone", "+1"),
            ("local_time.ntp_server1", "pool.ntp.org"),
            ("lang.gui", "English"),
            (
                "static.auto_provision.server.url",
                "https://pbx.example.net/provision/",
            ),
            ("static.auto_provision.server.username", "prov-001565a1b2c3"),
            ("static.auto_provision.server.password", "prov-secret-1"),
            ("static.auto_provision.repeat.minutes", "1440"),
        ] {
            assert_eq!(yealink_value(&out, key), Some(want), "{key}");
        }

        let mut other = ctx.clone();
        other.account.mwi = false;
        other.server.transport = "udp".into();
        other.language = "de".into();
        for (offset, want) in [(0, "0"), (-210, "-3:30"), (345, "+5:45"), (-300, "-5")] {
            other.time.utc_offset_minutes = offset;
            let out = main_file(&other);
            assert_eq!(yealink_value(&out, "local_time.time_zone"), Some(want));
            assert_eq!(yealink_value(&out, "account.1.subscribe_mwi"), Some("0"));
            assert_eq!(
                yealink_value(&out, "account.1.sip_server.1.transport_type"),
                Some("0")
            );
            assert_eq!(yealink_value(&out, "lang.gui"), Some("German"));
        }
    }

    #[test]
    fn poly_numbers_module_keys_after_the_phones_and_binds_blfs_and_speed_dials() {
        for id in [
            "poly-vvx450",
            "poly-vvx350",
            "poly-vvx250",
            "poly-edge-e450",
        ] {
            let ctx = ctx_for(id);
            let out = main_file(&ctx);
            let doc = xml(&out);
            let attrs = poly_attributes(&doc);
            let categories: Vec<&(String, String)> = attrs
                .iter()
                .filter(|(n, _)| n.starts_with("lineKey.") && n.ends_with(".category"))
                .collect();
            assert_eq!(categories.len(), ctx.keys.len(), "{id}");
            let model = find(id).unwrap();
            for key in &ctx.keys {
                let n = if key.module == 0 {
                    key.index
                } else {
                    model.line_keys + (key.module - 1) * model.keys_per_module + key.index
                };
                assert_eq!(n, key.slot);
                let want = match key.kind.as_str() {
                    "line" => "Line",
                    "blf" => "BLF",
                    "dnd" => "Unassigned",
                    _ => "EFK",
                };
                assert_eq!(
                    poly_value(&doc, &format!("lineKey.{n}.category")).as_deref(),
                    Some(want),
                    "{id} key {n}"
                );
            }
            let blfs: Vec<&LineKey> = ctx.keys.iter().filter(|k| k.kind == "blf").collect();
            for (i, key) in blfs.iter().enumerate() {
                assert_eq!(
                    poly_value(&doc, &format!("attendant.resourceList.{}.address", i + 1)),
                    Some(format!("{}@acme.pbx.example.net", key.value))
                );
            }
            assert_eq!(
                poly_value(
                    &doc,
                    &format!("attendant.resourceList.{}.address", blfs.len() + 1)
                ),
                None
            );
            let efks = attrs
                .iter()
                .filter(|(n, _)| n.starts_with("efk.efklist.") && n.ends_with(".action.string"))
                .count();
            let dialled = ctx
                .keys
                .iter()
                .filter(|k| {
                    ["speed_dial", "voicemail", "park", "login", "logout"]
                        .contains(&k.kind.as_str())
                })
                .count();
            assert_eq!(efks, dialled, "{id}");
        }
        let doc_src = main_file(&ctx_for("poly-vvx450"));
        let doc = xml(&doc_src);
        // Module 1 key 1 follows the 12 phone keys; module 3's last key is 12 + 3 × 84.
        assert_eq!(
            poly_value(&doc, "lineKey.13.category").as_deref(),
            Some("BLF")
        );
        assert_eq!(
            poly_value(&doc, "lineKey.264.category").as_deref(),
            Some("EFK")
        );
        assert_eq!(
            poly_value(&doc, "efk.efklist.1.action.string").as_deref(),
            Some("+493012345678$Tinvite$")
        );
    }

    #[test]
    fn poly_writes_the_master_file_and_the_account_time_and_provisioning() {
        let ctx = ctx_for("poly-vvx450");
        let master = built_in("poly-master.xml", &ctx);
        let doc = xml(&master);
        let app = doc.root_element();
        assert_eq!(app.tag_name().name(), "APPLICATION");
        assert_eq!(
            app.attribute("CONFIG_FILES"),
            Some("0004f2a1b2c3-switchboard.cfg")
        );

        let out = main_file(&ctx);
        let doc = xml(&out);
        for (name, want) in [
            ("reg.1.address", "d7kq2mxr9tbw"),
            ("reg.1.auth.userId", "d7kq2mxr9tbw"),
            ("reg.1.auth.password", "sip-secret-1"),
            ("reg.1.displayName", "Alice Martin"),
            ("reg.1.server.1.address", "acme.pbx.example.net"),
            ("reg.1.server.1.transport", "TLS"),
            ("reg.1.outboundProxy.address", "sip.example.net"),
            ("msg.mwi.1.subscribe", "201@acme.pbx.example.net"),
            ("msg.mwi.1.callBack", "*97"),
            ("voice.codecPref.G722", "1"),
            ("voice.codecPref.G711_A", "2"),
            ("voice.codecPref.G711_Mu", "3"),
            ("voice.codecPref.G729_AB", "0"),
            ("tcpIpApp.sntp.gmtOffset", "3600"),
            ("tcpIpApp.sntp.address", "pool.ntp.org"),
            ("lcl.ml.lang", "English_United_States"),
            ("device.prov.serverType", "3"),
            ("device.prov.serverName", "pbx.example.net/provision/"),
            ("device.prov.user", "prov-0004f2a1b2c3"),
            ("device.prov.password", "prov-secret-1"),
            ("prov.polling.period", "86400"),
        ] {
            assert_eq!(poly_value(&doc, name).as_deref(), Some(want), "{name}");
        }
        let mut quiet = ctx.clone();
        quiet.account.mwi = false;
        let out = main_file(&quiet);
        assert_eq!(
            poly_value(&xml(&out), "msg.mwi.1.subscribe").as_deref(),
            Some("")
        );
    }

    #[test]
    fn grandstream_writes_virtual_multi_purpose_and_module_keys_in_their_families() {
        for (id, vpks) in [
            ("grandstream-gxp2170", 48),
            ("grandstream-gxp2160", 24),
            ("grandstream-grp2614", 16),
            ("grandstream-grp2615", 40),
        ] {
            let ctx = ctx_for(id);
            let out = main_file(&ctx);
            let doc = xml(&out);
            let items = gs_items(&doc);
            let modes = |family: &str| {
                items
                    .iter()
                    .filter(|(n, _)| n.starts_with(family) && n.ends_with(".keyMode"))
                    .count()
            };
            let phone: Vec<&LineKey> = phone_keys(&ctx);
            let on_vpk = phone.iter().filter(|k| k.index <= vpks).count();
            assert_eq!(modes("pks.vpk."), on_vpk, "{id}");
            assert_eq!(modes("pks.mpk."), phone.len() - on_vpk, "{id}");
            assert_eq!(modes("pks.ext."), module_keys(&ctx).len(), "{id}");
            for key in &ctx.keys {
                let p = if key.module == 0 && key.index <= vpks {
                    format!("pks.vpk.{}", key.index)
                } else if key.module == 0 {
                    format!("pks.mpk.{}", key.index - vpks)
                } else {
                    format!("pks.ext.{}", (key.module - 1) * 40 + key.index)
                };
                let want = match key.kind.as_str() {
                    "line" => "Line",
                    "blf" => "BLF",
                    "dnd" => "DND",
                    _ => "SpeedDial",
                };
                assert_eq!(
                    gs_value(&doc, &format!("{p}.keyMode")).as_deref(),
                    Some(want),
                    "{id} {p}"
                );
                assert_eq!(
                    gs_value(&doc, &format!("{p}.value")).as_deref(),
                    Some(key.value.as_str())
                );
            }
        }
        let doc_src = main_file(&ctx_for("grandstream-gxp2170"));
        let doc = xml(&doc_src);
        assert_eq!(
            gs_value(&doc, "pks.ext.160.keyMode").as_deref(),
            Some("SpeedDial")
        );
        assert_eq!(
            gs_value(&doc, "pks.ext.121.keyMode").as_deref(),
            Some("BLF")
        );
    }

    #[test]
    fn grandstream_writes_the_account_time_and_provisioning() {
        let ctx = ctx_for("grandstream-grp2614");
        let out = main_file(&ctx);
        let doc = xml(&out);
        assert_eq!(element_text(&doc, "mac").as_deref(), Some("000b82a1b2c3"));
        for (name, want) in [
            (
                "account.1.sip.server.1.address",
                "acme.pbx.example.net:5061",
            ),
            (
                "account.1.sip.outboundProxy.1.address",
                "sip.example.net:5061",
            ),
            ("account.1.sip.userid", "d7kq2mxr9tbw"),
            ("account.1.sip.subscriber.userid", "d7kq2mxr9tbw"),
            ("account.1.sip.subscriber.password", "sip-secret-1"),
            ("account.1.sip.subscriber.name", "Alice Martin"),
            ("account.1.sip.transport", "TlsOrTcp"),
            ("account.1.sip.registerExpiration", "10"),
            ("account.1.sip.subscribe.forMwi", "Yes"),
            ("account.1.codec.choice.1", "G.722"),
            ("account.1.codec.choice.2", "PCMA"),
            ("account.1.codec.choice.3", "PCMU"),
            ("account.1.codec.choice.4", "OPUS"),
            ("account.1.codec.choice.5", "G.722"),
            ("account.1.codec.choice.8", "G.722"),
            ("dateTime.timezone", "customize"),
            ("dateTime.timezone.custom", "UTC-1"),
            ("language.gui", "en"),
            ("provisioning.config.protocol", "HTTPS"),
            (
                "provisioning.config.serverPath",
                "pbx.example.net/provision",
            ),
            ("provisioning.config.username", "prov-000b82a1b2c3"),
            ("provisioning.auto.minute", "1440"),
        ] {
            assert_eq!(gs_value(&doc, name).as_deref(), Some(want), "{name}");
        }
        let mut west = ctx.clone();
        west.time.utc_offset_minutes = -210;
        let out = main_file(&west);
        assert_eq!(
            gs_value(&xml(&out), "dateTime.timezone.custom").as_deref(),
            Some("UTC+3:30")
        );
    }

    #[test]
    fn snom_numbers_function_keys_from_zero_and_continues_on_the_modules() {
        for id in ["snom-d785", "snom-d735", "snom-d717"] {
            let ctx = ctx_for(id);
            let model = find(id).unwrap();
            let out = main_file(&ctx);
            let doc = xml(&out);
            let fkeys: Vec<roxmltree::Node<'_, '_>> = doc
                .descendants()
                .filter(|n| n.has_tag_name("fkey"))
                .collect();
            assert_eq!(fkeys.len(), ctx.keys.len(), "{id}");
            for key in &ctx.keys {
                let idx = key.slot - 1;
                let node = fkeys
                    .iter()
                    .find(|n| n.attribute("idx") == Some(idx.to_string().as_str()))
                    .unwrap_or_else(|| panic!("{id}: no fkey {idx}"));
                let text = node.text().unwrap_or_default();
                let want = match key.kind.as_str() {
                    "line" => "line".to_owned(),
                    "blf" => format!("blf <sip:{}@acme.pbx.example.net>", key.value),
                    "dnd" => "keyevent F_DND".to_owned(),
                    _ => format!("speed {}", key.value),
                };
                assert_eq!(text, want, "{id} idx {idx}");
                assert_eq!(node.attribute("label"), Some(key.label.as_str()));
                if key.module > 0 {
                    assert!(idx >= model.line_keys);
                }
            }
        }
        let out = main_file(&ctx_for("snom-d785"));
        let doc = xml(&out);
        for (tag, want) in [
            ("user_name", "d7kq2mxr9tbw"),
            ("user_pname", "d7kq2mxr9tbw"),
            ("user_pass", "sip-secret-1"),
            ("user_realname", "Alice Martin"),
            ("user_host", "acme.pbx.example.net"),
            ("user_outbound", "sip.example.net:5061;transport=tls"),
            ("user_mailbox", "*97"),
            ("codec_priority_list", "g722,pcma,pcmu,opus,telephone-event"),
            ("utc_offset", "3600"),
            ("language", "English"),
            (
                "setting_server",
                "https://pbx.example.net/provision/000413a1b2c3.xml",
            ),
            ("settings_refresh_timer", "86400"),
            ("http_client_user", "prov-000413a1b2c3"),
        ] {
            assert_eq!(element_text(&doc, tag).as_deref(), Some(want), "{tag}");
        }
    }

    #[test]
    fn cisco_writes_line_keys_and_kem_keys_in_their_families() {
        for id in ["cisco-8861", "cisco-8851", "cisco-8841", "cisco-7841"] {
            let ctx = ctx_for(id);
            let out = main_file(&ctx);
            let doc = xml(&out);
            let count = |prefix: &str| {
                doc.descendants()
                    .filter(|n| n.tag_name().name().starts_with(prefix))
                    .count()
            };
            assert_eq!(count("Extended_Function_"), phone_keys(&ctx).len(), "{id}");
            assert_eq!(count("Unit_"), module_keys(&ctx).len(), "{id}");
            for key in &ctx.keys {
                if key.module == 0 {
                    let ext = element_text(&doc, &format!("Extension_{}_", key.index));
                    let want = if key.kind == "line" { "1" } else { "Disabled" };
                    assert_eq!(ext.as_deref(), Some(want), "{id} {}", key.index);
                    let function = element_text(&doc, &format!("Extended_Function_{}_", key.index))
                        .unwrap_or_default();
                    match key.kind.as_str() {
                        "line" => assert_eq!(function, ""),
                        "blf" => assert_eq!(
                            function,
                            format!(
                                "fnc=blf+sd+cp;sub={}@acme.pbx.example.net;nme={}",
                                key.value, key.label
                            )
                        ),
                        "dnd" => assert!(function.starts_with("fnc=dnd;")),
                        _ => assert!(function.starts_with(&format!("fnc=sd;ext={}@", key.value))),
                    }
                } else {
                    let unit =
                        element_text(&doc, &format!("Unit_{}_Key_{}_", key.module, key.index))
                            .unwrap_or_default();
                    assert!(unit.starts_with("fnc="), "{id}: {unit}");
                }
            }
            let kem = element_text(&doc, "PoE_Power_Required");
            assert_eq!(kem.is_some(), !module_keys(&ctx).is_empty(), "{id}");
        }
    }

    #[test]
    fn cisco_writes_the_account_time_and_profile_rule() {
        let ctx = ctx_for("cisco-8851");
        let out = main_file(&ctx);
        let doc = xml(&out);
        for (tag, want) in [
            ("User_ID_1_", "d7kq2mxr9tbw"),
            ("Auth_ID_1_", "d7kq2mxr9tbw"),
            ("Password_1_", "sip-secret-1"),
            ("Display_Name_1_", "Alice Martin"),
            ("Proxy_1_", "acme.pbx.example.net:5061"),
            ("Outbound_Proxy_1_", "sip.example.net:5061"),
            ("SIP_Transport_1_", "TLS"),
            ("Mailbox_ID_1_", "201"),
            ("Voice_Mail_Number", "*97"),
            ("Preferred_Codec_1_", "G722"),
            ("Second_Preferred_Codec_1_", "G711a"),
            ("Third_Preferred_Codec_1_", "G711u"),
            ("G729a_Enable_1_", "No"),
            ("OPUS_Enable_1_", "Yes"),
            ("Time_Zone", "GMT+01:00"),
            ("Primary_NTP_Server", "pool.ntp.org"),
            ("Locale", "en-US"),
            ("Resync_Periodic", "86400"),
            (
                "Profile_Rule",
                "[--uid prov-6c710da1b2c3 --pwd prov-secret-1] https://pbx.example.net/provision/spa$MA.xml",
            ),
        ] {
            assert_eq!(element_text(&doc, tag).as_deref(), Some(want), "{tag}");
        }
        let mut west = ctx.clone();
        west.time.utc_offset_minutes = -210;
        let out = main_file(&west);
        assert_eq!(
            element_text(&xml(&out), "Time_Zone").as_deref(),
            Some("GMT-03:30")
        );
    }

    #[test]
    fn a_display_name_with_markup_stays_well_formed_xml_and_verbatim_in_key_value() {
        let nasty = r#"Tom & Jerry <"Q&A"> 'x'"#;
        for model in sample_models() {
            let mut ctx = sample_context_for(model);
            ctx.account.display_name = nasty.into();
            ctx.account.label = nasty.into();
            ctx.device.label = nasty.into();
            for key in &mut ctx.keys {
                key.label = nasty.into();
            }
            for spec in files(model.vendor) {
                let out = built_in(spec.template, &ctx);
                if spec.template.ends_with(".xml") {
                    let doc = xml(&out);
                    let found = doc.descendants().any(|n| {
                        n.text() == Some(nasty) || n.attributes().any(|a| a.value() == nasty)
                    });
                    assert!(
                        found || spec.template == "poly-master.xml",
                        "{} {}: name lost",
                        model.id,
                        spec.template
                    );
                } else {
                    assert_yealink_format(&out);
                    assert_eq!(yealink_value(&out, "account.1.display_name"), Some(nasty));
                }
            }
        }
    }

    #[test]
    fn a_preview_without_passwords_writes_no_secret() {
        for model in sample_models() {
            let mut ctx = sample_context_for(model);
            ctx.account.password = None;
            ctx.provisioning.password = None;
            for spec in files(model.vendor) {
                let out = built_in(spec.template, &ctx);
                assert!(!out.contains("secret"), "{} {}", model.id, spec.template);
                assert!(!out.contains("none"), "{} {}", model.id, spec.template);
            }
            let out = main_file(&ctx);
            match model.vendor {
                Vendor::Yealink => {
                    assert_eq!(yealink_value(&out, "account.1.password"), Some(""));
                    assert_eq!(
                        yealink_value(&out, "static.auto_provision.server.password"),
                        Some("")
                    );
                }
                Vendor::Poly => {
                    let doc = xml(&out);
                    assert_eq!(poly_value(&doc, "reg.1.auth.password").as_deref(), Some(""));
                    assert_eq!(poly_value(&doc, "device.prov.password"), None);
                }
                Vendor::Grandstream => {
                    let doc = xml(&out);
                    assert_eq!(
                        gs_value(&doc, "account.1.sip.subscriber.password").as_deref(),
                        Some("")
                    );
                    assert_eq!(
                        gs_value(&doc, "provisioning.config.password").as_deref(),
                        Some("")
                    );
                }
                Vendor::Snom => {
                    let doc = xml(&out);
                    assert_eq!(element_text(&doc, "user_pass").as_deref(), Some(""));
                    assert_eq!(element_text(&doc, "http_client_pass").as_deref(), Some(""));
                }
                Vendor::Cisco => {
                    let doc = xml(&out);
                    assert_eq!(element_text(&doc, "Password_1_").as_deref(), Some(""));
                    assert_eq!(
                        element_text(&doc, "Profile_Rule").as_deref(),
                        Some("https://pbx.example.net/provision/spa$MA.xml")
                    );
                }
            }
        }
    }

    #[test]
    fn no_key_is_written_beyond_the_keys_given() {
        for model in sample_models() {
            let mut ctx = sample_context_for(model);
            ctx.keys.truncate(2);
            let out = main_file(&ctx);
            let count = match model.vendor {
                Vendor::Yealink => yealink_pairs(&out)
                    .iter()
                    .filter(|(k, _)| k.ends_with(".type"))
                    .count(),
                Vendor::Poly => poly_attributes(&xml(&out))
                    .iter()
                    .filter(|(n, _)| n.starts_with("lineKey.") && n.ends_with(".category"))
                    .count(),
                Vendor::Grandstream => gs_items(&xml(&out))
                    .iter()
                    .filter(|(n, _)| n.ends_with(".keyMode"))
                    .count(),
                Vendor::Snom => xml(&out)
                    .descendants()
                    .filter(|n| n.has_tag_name("fkey"))
                    .count(),
                Vendor::Cisco => xml(&out)
                    .descendants()
                    .filter(|n| {
                        let t = n.tag_name().name();
                        t.starts_with("Extended_Function_") || t.starts_with("Unit_")
                    })
                    .count(),
            };
            assert_eq!(count, 2, "{}", model.id);
            ctx.keys.clear();
            let out = main_file(&ctx);
            if model.vendor == Vendor::Yealink {
                assert!(!out.contains("linekey."), "{}", model.id);
            }
        }
    }

    #[test]
    fn a_tenant_template_extends_the_built_in_one_and_adds_its_lines() {
        let renderer = Renderer::new();
        let ctx = sample_context(Vendor::Yealink);
        let body =
            r#"{% extends "yealink.cfg" %}{% block extra %}features.dnd.enable = 1{% endblock %}"#;
        let out = renderer
            .render(
                Template::Custom {
                    vendor: Vendor::Yealink,
                    body,
                },
                &ctx,
            )
            .unwrap();
        assert_yealink_format(&out);
        assert_eq!(yealink_value(&out, "features.dnd.enable"), Some("1"));
        assert_eq!(
            yealink_value(&out, "account.1.user_name"),
            Some("d7kq2mxr9tbw")
        );
        assert!(renderer.check(Vendor::Yealink, body).is_ok());

        // Replacing a block, keeping the built-in lines with super().
        let body = "{% extends \"yealink.cfg\" %}\n{% block time %}{{ super() }}local_time.time_format = 1\n{% endblock %}";
        let out = renderer
            .render(
                Template::Custom {
                    vendor: Vendor::Yealink,
                    body,
                },
                &ctx,
            )
            .unwrap();
        assert_eq!(yealink_value(&out, "local_time.time_format"), Some("1"));
        assert_eq!(
            yealink_value(&out, "local_time.ntp_server1"),
            Some("pool.ntp.org")
        );
    }

    #[test]
    fn a_tenant_template_of_every_vendor_checks_and_stays_escaped() {
        let renderer = Renderer::new();
        for vendor in Vendor::ALL {
            let main = main_template(vendor);
            let body = format!(
                "{{% extends \"{main}\" %}}\n{{% block extra %}}{{{{ account.display_name }}}}{{% endblock %}}"
            );
            renderer
                .check(vendor, &body)
                .unwrap_or_else(|e| panic!("{vendor}: {e}"));
            let mut ctx = sample_context(vendor);
            ctx.account.display_name = "A&B <C>".into();
            let out = renderer
                .render(
                    Template::Custom {
                        vendor,
                        body: &body,
                    },
                    &ctx,
                )
                .unwrap();
            if main.ends_with(".xml") {
                assert!(out.contains("A&amp;B &lt;C&gt;"), "{vendor}");
            } else {
                assert!(out.contains("A&B <C>"), "{vendor}");
            }
        }
    }

    #[test]
    fn a_syntax_error_names_the_tenants_line() {
        let body = "{% extends \"yealink.cfg\" %}\n{% block extra %}\nfeatures.x = {{ account.user }\n{% endblock %}";
        let err = Renderer::new().check(Vendor::Yealink, body).unwrap_err();
        assert_eq!(err.line, Some(3), "{err:?}");
        assert!(err.message.starts_with("syntax error"), "{}", err.message);
        assert!(!err.message.contains("tenant."), "{}", err.message);
        assert_eq!(err.to_string(), format!("line 3: {}", err.message));
    }

    #[test]
    fn an_undefined_variable_is_an_error_on_the_tenants_line() {
        for vendor in Vendor::ALL {
            let main = main_template(vendor);
            let body = format!(
                "{{% extends \"{main}\" %}}\n{{% block extra %}}\n{{{{ acount.user }}}}\n{{% endblock %}}"
            );
            let err = Renderer::new().check(vendor, &body).unwrap_err();
            assert_eq!(err.line, Some(3), "{vendor}: {err:?}");
            assert_eq!(err.message, "undefined value: `acount.user`");
        }
        // A missing attribute as well, in a template that extends nothing.
        let err = Renderer::new()
            .check(
                Vendor::Snom,
                "<settings>\n\n{{ account.nickname }}</settings>",
            )
            .unwrap_err();
        assert_eq!(err.line, Some(3), "{err:?}");
    }

    #[test]
    fn extending_an_unknown_template_is_a_readable_error() {
        let err = Renderer::new()
            .check(Vendor::Yealink, "{% extends \"yealnk.cfg\" %}")
            .unwrap_err();
        assert!(
            err.message.contains("template not found"),
            "{}",
            err.message
        );
        let err = Renderer::new()
            .render(
                Template::BuiltIn("nope.cfg"),
                &sample_context(Vendor::Yealink),
            )
            .unwrap_err();
        assert_eq!(err.line, None);
    }

    #[test]
    fn a_loop_that_writes_nothing_runs_out_of_fuel() {
        let body = "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}";
        let err = Renderer::new().check(Vendor::Yealink, body).unwrap_err();
        assert!(err.message.contains("fuel"), "{}", err.message);
        // The built-in templates of the largest models render well within it.
        for vendor in Vendor::ALL {
            let body = format!("{{% extends \"{}\" %}}", main_template(vendor));
            assert!(Renderer::new().check(vendor, &body).is_ok(), "{vendor}");
        }
    }

    #[test]
    fn every_built_in_has_its_source() {
        for vendor in Vendor::ALL {
            for f in models::files(vendor) {
                assert!(
                    built_in_source(f.template).is_some_and(|s| !s.is_empty()),
                    "{}",
                    f.template
                );
            }
        }
        assert_eq!(built_in_source("nope.cfg"), None);
    }

    #[test]
    fn a_runaway_template_is_stopped_by_the_output_limit() {
        let body = "{% for a in range(10000) %}{% for b in range(100) %}0123456789{% endfor %}{% endfor %}";
        let err = Renderer::new().check(Vendor::Yealink, body).unwrap_err();
        assert!(err.message.contains("larger than"), "{}", err.message);
    }
}
