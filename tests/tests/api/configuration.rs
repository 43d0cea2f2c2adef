//! Configuration: errors name the field, and the documented example cannot drift from the code.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Toml};
use switchboard_api::Config;

fn workspace_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name)
}

/// The fields reported for a TOML configuration that must be rejected.
fn rejected_fields(toml: &str) -> Vec<String> {
    match Config::from_figment(Figment::new().merge(Toml::string(toml))) {
        Ok(_) => panic!("this configuration was accepted:\n{toml}"),
        Err(errors) => errors.0.into_iter().map(|e| e.field).collect(),
    }
}

#[test]
fn a_value_of_the_wrong_type_is_reported_by_its_dotted_name() {
    assert_eq!(
        rejected_fields("[http]\nport = \"notaport\"\n"),
        ["http.port"]
    );
    assert_eq!(
        rejected_fields("[database]\nauto_migrate = \"sometimes\"\n"),
        ["database.auto_migrate"]
    );
}

#[test]
fn an_unknown_key_is_reported_rather_than_ignored() {
    assert_eq!(rejected_fields("[http]\nprot = 8080\n"), ["http.prot"]);
}

#[test]
fn every_broken_rule_is_reported_at_once() {
    let fields = rejected_fields(
        r#"
database_url = "mysql://localhost/switchboard"
[http]
workers = 0
max_body_bytes = 10
cors_allowed_origins = ["https://ok.example.com", "app.example.com"]
trusted_proxies = ["10.0.0.0/8", "not-a-network"]
[auth]
access_token_ttl_secs = 5
[bootstrap]
admin_email = "not-an-email"
[history]
spool_interval_secs = 0
purge_interval_secs = 59
cdr_queue = 0
"#,
    );
    for field in [
        "database_url",
        "http.workers",
        "http.max_body_bytes",
        "http.cors_allowed_origins[1]",
        "http.trusted_proxies[1]",
        "auth.access_token_ttl_secs",
        "bootstrap.admin_email",
        "history.spool_interval_secs",
        "history.purge_interval_secs",
        "history.cdr_queue",
    ] {
        assert!(
            fields.iter().any(|f| f == field),
            "{field} is not reported in {fields:?}"
        );
    }
}

#[test]
fn production_mode_requires_explicit_keys() {
    let fields = rejected_fields("mode = \"production\"\n");
    assert_eq!(
        fields,
        [
            "auth.jwt_secret",
            "secrets.encryption_key",
            "freeswitch.xml_curl.password"
        ]
    );
}

#[test]
fn the_example_file_parses_through_the_layered_loader() {
    let path = workspace_file("switchboard.example.toml");
    if let Err(errors) = Config::from_figment(Config::figment(Some(&path))) {
        panic!("{} does not load: {errors}", path.display());
    }
}

#[test]
fn the_example_file_holds_exactly_the_defaults() {
    let path = workspace_file("switchboard.example.toml");
    let example = Config::from_figment(Figment::new().merge(Toml::file_exact(&path)))
        .unwrap_or_else(|errors| panic!("{} does not load: {errors}", path.display()));
    assert_eq!(format!("{example:#?}"), format!("{:#?}", Config::default()));
}

/// Every field of `Config` as a dotted path, read from its `Debug` output (nested structs are
/// sections, at any depth), so a new field is noticed without anyone updating a list.
fn config_fields() -> Vec<String> {
    let debug = format!("{:#?}", Config::default());
    let mut fields = Vec::new();
    let mut sections: Vec<(usize, String)> = Vec::new();
    for line in debug.lines() {
        let indent = line.len() - line.trim_start().len();
        while sections.last().is_some_and(|(i, _)| *i >= indent) {
            sections.pop();
        }
        let Some((name, value)) = line.trim().split_once(": ") else {
            continue;
        };
        if value.ends_with('{') {
            sections.push((indent, name.to_owned()));
            continue;
        }
        let path: Vec<&str> = sections
            .iter()
            .map(|(_, s)| s.as_str())
            .chain([name])
            .collect();
        fields.push(path.join("."));
    }
    fields
}

#[test]
fn the_example_file_documents_every_field_and_its_environment_variable() {
    let text = std::fs::read_to_string(workspace_file("switchboard.example.toml")).unwrap();
    let fields = config_fields();
    assert!(
        fields.len() > 20,
        "reading the fields went wrong: {fields:?}"
    );
    for field in fields {
        let (section, key) = field.rsplit_once('.').unwrap_or(("", &field));
        let mut current = "";
        let documented = text.lines().any(|line| {
            let line = line.trim();
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = name;
            }
            let setting = line.trim_start_matches('#').trim_start();
            current == section
                && setting
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
        });
        assert!(
            documented,
            "switchboard.example.toml does not show `{key}` in [{section}]"
        );
        let env = format!(
            "SWITCHBOARD_{}",
            field.replace('.', "__").to_ascii_uppercase()
        );
        assert!(
            text.contains(&env),
            "switchboard.example.toml does not mention {env}"
        );
    }
}

#[test]
fn the_readme_lists_every_field() {
    let readme = std::fs::read_to_string(workspace_file("README.md")).unwrap();
    for field in config_fields() {
        assert!(
            readme.contains(&format!("`{field}`")),
            "README.md does not list `{field}`"
        );
    }
}
