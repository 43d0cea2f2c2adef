//! Extension rows: a new Extension with the single create's rules, or the stored one (matched
//! by number) changed with the single update's rules; and, once the User rows have linked
//! theirs, the check that every User has at most one Extension in the Domain.

use std::collections::{HashMap, HashSet};

use sea_orm::ConnectionTrait;
use secrecy::SecretString;
use uuid::Uuid;

use super::write::bounded;
use super::{
    Action, Drafting, ExtensionRow, OnExisting, Report, RowKind, RowResult, action_of,
    changed_fields, duplicates, lookup,
};
use crate::error::DomainResult;
use crate::identity::password::verify_secret;
use crate::services::extensions::{self as rules, NumberingRules};
use crate::store::extensions as extension_store;
use crate::telephony::values::ExtensionNumber;

/// What happens to an Extension's PIN.
#[derive(Debug, Clone)]
pub(super) enum PinChange {
    /// It stays.
    Keep,
    /// A new PIN (hashed before writing).
    Set(SecretString),
    /// It is removed.
    Remove,
}

/// An Extension the import creates or changes.
#[derive(Debug)]
pub(super) struct ExtensionPlan {
    /// Its row; `None` for a stored Extension only a User row links or unlinks.
    pub row: Option<usize>,
    /// The stored Extension it changes.
    pub before: Option<extension_store::Model>,
    /// The Extension as it will be.
    pub model: extension_store::Model,
    /// What happens to its PIN.
    pub pin: PinChange,
    /// Whether its own row gave `user_id`.
    pub user_given: bool,
    /// The User row that links or unlinks it, if one does.
    pub linked_by: Option<usize>,
    /// The PIN the row gives is the one stored already.
    pub pin_unchanged: bool,
    /// The name of the group it joins when that is no stored group: one of the file's, found
    /// once the group rows are checked (see `groups::join`).
    pub group: Option<String>,
}

/// Stored columns that are not the row's to change (or never shown).
const SKIP: &[&str] = &[
    "id",
    "domain_id",
    "created_at",
    "updated_at",
    "pin_hash",
    "sip_secret_encrypted",
];

/// A stored column's name in the Extension body.
fn body_name(column: &str) -> String {
    if let Some(rest) = column.strip_prefix("forward_") {
        for rule in ["always", "busy", "no_answer", "not_registered"] {
            if let Some(part) = rest
                .strip_prefix(rule)
                .and_then(|r| r.strip_prefix('_'))
                .filter(|p| matches!(*p, "enabled" | "destination"))
            {
                return format!("forwarding.{rule}.{part}");
            }
        }
    }
    match column {
        "record_inbound" => "recording.inbound".into(),
        "record_outbound" => "recording.outbound".into(),
        "sip_registration_enabled" => "sip_registration.enabled".into(),
        "max_registrations" => "sip_registration.max_registrations".into(),
        other => other.into(),
    }
}

impl ExtensionPlan {
    /// Whether the stored PIN changes.
    pub(super) fn pin_changes(&self) -> bool {
        match &self.pin {
            PinChange::Keep => false,
            PinChange::Set(_) => !self.pin_unchanged,
            PinChange::Remove => self.before.as_ref().is_none_or(|b| b.pin_hash.is_some()),
        }
    }

    /// The fields an update changes.
    pub(super) fn changed(&self) -> Vec<String> {
        let Some(before) = &self.before else {
            return Vec::new();
        };
        let (Ok(b), Ok(a)) = (
            serde_json::to_value(before),
            serde_json::to_value(&self.model),
        ) else {
            return Vec::new();
        };
        let mut fields = changed_fields(&b, &a, SKIP, body_name);
        if self.pin_changes() {
            fields.push("pin".into());
        }
        fields
    }

    /// Created, updated or unchanged.
    pub(super) fn action(&self) -> Action {
        action_of(self.before.as_ref(), &self.changed())
    }

    /// The row's outcome; none for an Extension no row of its own names.
    pub(super) fn result(&self) -> Option<RowResult> {
        let row = self.row?;
        let changed = self.changed();
        Some(RowResult {
            row,
            kind: RowKind::Extension,
            key: self.model.number.clone(),
            action: action_of(self.before.as_ref(), &changed),
            id: Some(self.model.id),
            changed,
            set_password: None,
        })
    }

    /// A stored Extension that only a User row changes (its link).
    pub(super) fn linked(
        model: &extension_store::Model,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        let mut changed = model.clone();
        changed.updated_at = now;
        Self {
            row: None,
            before: Some(model.clone()),
            model: changed,
            pin: PinChange::Keep,
            user_given: false,
            linked_by: None,
            pin_unchanged: false,
            group: None,
        }
    }
}

/// The number a row names, normalised; `None` when missing or invalid (the rules say why).
pub(super) fn number_key(raw: Option<&str>) -> Option<String> {
    raw.and_then(|n| ExtensionNumber::parse(n).ok())
        .map(ExtensionNumber::into_string)
}

/// Builds and checks every Extension row: a match on the number updates the stored Extension
/// (or, with [`OnExisting::Error`], is an `already_exists` error).
pub(super) async fn draft<C: ConnectionTrait>(
    db: &C,
    at: Drafting,
    numbering: &NumberingRules,
    rows: Vec<super::Numbered<ExtensionRow>>,
    report: &mut Report,
) -> DomainResult<Vec<ExtensionPlan>> {
    let Drafting {
        domain_id,
        now,
        on_existing,
    } = at;
    let kind = RowKind::Extension;
    let keys: Vec<Option<String>> = rows
        .iter()
        .map(|r| number_key(r.value.patch.number.as_deref()))
        .collect();
    let group_names: Vec<String> = rows
        .iter()
        .filter_map(|r| r.value.group.as_deref().map(|g| g.trim().to_owned()))
        .collect();
    let groups = lookup::groups_by_name(db, domain_id, &group_names).await?;
    duplicates(
        rows.iter().zip(&keys).map(|(r, k)| (r.row, k.clone())),
        |row, earlier| {
            report.add(
                row,
                kind,
                "number",
                "duplicate_in_file",
                format!("the number is already on row {earlier} of this file"),
            )
        },
    );
    let numbers: Vec<String> = keys.iter().flatten().cloned().collect();
    let stored = lookup::extensions_by_number(db, domain_id, &numbers).await?;
    // A call flow's number is the Domain's too (a ring group's 600 is no Extension's).
    let flow_numbers: std::collections::HashMap<String, String> =
        crate::services::call_flows::load(db, domain_id)
            .await?
            .into_iter()
            .filter_map(|f| {
                let kind = crate::routing::flows::FlowKind::parse(&f.kind)
                    .map_or("call flow", crate::routing::flows::FlowKind::label);
                f.number.map(|n| (n, format!("the {kind} {:?}", f.name)))
            })
            .collect();

    let mut plans = Vec::with_capacity(rows.len());
    for (super::Numbered { row, value }, key) in rows.into_iter().zip(keys) {
        let ExtensionRow { mut patch, group } = value;
        let mut in_file_group = None;
        match (group.filter(|g| !g.trim().is_empty()), &patch.group_id) {
            (Some(_), Some(Some(_))) => {
                report.add(
                    row,
                    kind,
                    "group",
                    "conflicting_fields",
                    "give group or group_id, not both",
                );
            }
            (Some(name), _) => match groups.get(name.trim()) {
                Some(stored) => patch.group_id = Some(Some(stored.id)),
                // Not stored: a group row of the file, or nothing (`groups::join` says which).
                None => in_file_group = Some(name.trim().to_owned()),
            },
            (None, _) => {}
        }
        let user_given = patch.user_id.is_some();
        let found = key.as_ref().and_then(|k| stored.get(k));
        if found.is_none()
            && let Some(owner) = key.as_ref().and_then(|k| flow_numbers.get(k))
        {
            report.add(
                row,
                kind,
                "number",
                "already_exists",
                format!("the number dials {owner} in this Domain"),
            );
        }
        let plan = match found {
            Some(before) if on_existing == OnExisting::Update => {
                let pin = patch.pin.take();
                let mut model = before.clone();
                rules::apply(&mut model, patch);
                model.updated_at = now;
                let new_pin = pin.clone().flatten();
                let mut errors = rules::validate(&mut model, numbering, new_pin.as_ref());
                rules::validate_references(db, &model, &mut errors).await?;
                if before.placeholder
                    && !model.placeholder
                    && rules::placeholder_in_use(db, before).await?
                {
                    errors.add(
                        "placeholder",
                        "in_use",
                        "the Extension is the placeholder of phones or of the Domain's settings",
                    );
                }
                if !before.placeholder
                    && model.placeholder
                    && rules::person_in_use(db, before).await?
                {
                    errors.add(
                        "placeholder",
                        "in_use",
                        "the Extension owns fixed phones or is listed for a Location; a placeholder stands in for nobody",
                    );
                }
                report.extend(row, kind, errors);
                ExtensionPlan {
                    row: Some(row),
                    before: Some(before.clone()),
                    model,
                    pin: match pin {
                        None => PinChange::Keep,
                        Some(None) => PinChange::Remove,
                        Some(Some(p)) => PinChange::Set(p),
                    },
                    user_given,
                    linked_by: None,
                    pin_unchanged: false,
                    group: in_file_group,
                }
            }
            found => {
                if found.is_some() {
                    report.add(
                        row,
                        kind,
                        "number",
                        "already_exists",
                        "an Extension with this number already exists in the Domain (import with on_existing=update to change it)",
                    );
                }
                let (mut model, pin, mut errors) = rules::draft(domain_id, now, patch);
                // Like a single create: a missing required field is reported alone.
                if errors.is_empty() {
                    errors = rules::validate(&mut model, numbering, pin.as_ref());
                    rules::validate_references(db, &model, &mut errors).await?;
                }
                report.extend(row, kind, errors);
                ExtensionPlan {
                    row: Some(row),
                    before: None,
                    model,
                    pin: pin.map_or(PinChange::Keep, PinChange::Set),
                    user_given,
                    linked_by: None,
                    pin_unchanged: false,
                    group: in_file_group,
                }
            }
        };
        plans.push(plan);
    }
    Ok(plans)
}

/// Checks the links to Users as they will be: a User has at most one Extension in the Domain.
/// A new link to a User who keeps another Extension is `already_exists`; two new links to one
/// User in the file are `duplicate_in_file` on the later row. Errors go to the row that made
/// the link: the User row (`extension`) or the Extension row (`user_id`).
pub(super) async fn check_links<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    plans: &[ExtensionPlan],
    report: &mut Report,
) -> DomainResult<()> {
    let is_new_link = |p: &ExtensionPlan| {
        p.model.user_id.is_some()
            && p.before
                .as_ref()
                .is_none_or(|b| b.user_id != p.model.user_id)
    };
    let users: Vec<Uuid> = plans
        .iter()
        .filter(|p| is_new_link(p))
        .filter_map(|p| p.model.user_id)
        .collect();
    if users.is_empty() {
        return Ok(());
    }
    let planned: HashSet<Uuid> = plans.iter().map(|p| p.model.id).collect();
    // Stored links that stay as they are.
    let mut kept: HashSet<Uuid> = lookup::extensions_of_users(db, domain_id, &users)
        .await?
        .into_iter()
        .filter(|e| !planned.contains(&e.id))
        .filter_map(|e| e.user_id)
        .collect();
    kept.extend(
        plans
            .iter()
            .filter(|p| !is_new_link(p))
            .filter_map(|p| p.model.user_id),
    );
    let mut first: HashMap<Uuid, usize> = HashMap::new();
    for p in plans.iter().filter(|p| is_new_link(p)) {
        let Some(user) = p.model.user_id else {
            continue;
        };
        let (row, kind, field) = match (p.linked_by, p.row) {
            (Some(row), _) => (row, RowKind::User, "extension"),
            (None, Some(row)) => (row, RowKind::Extension, "user_id"),
            (None, None) => continue,
        };
        if kept.contains(&user) {
            report.add(
                row,
                kind,
                field,
                "already_exists",
                "this User already has an Extension in the Domain",
            );
        } else if let Some(earlier) = first.get(&user) {
            report.add(
                row,
                kind,
                field,
                "duplicate_in_file",
                format!("the User is already linked on row {earlier} of this file"),
            );
        } else {
            first.insert(user, row);
        }
    }
    Ok(())
}

/// Finds out, for every updated Extension given a PIN, whether it is the stored one: then
/// nothing changes and nothing is hashed. argon2id makes each check slow, so they run in
/// parallel on the blocking pool.
pub(super) async fn compare_pins(plans: &mut [ExtensionPlan]) -> DomainResult<()> {
    let checks: Vec<(usize, SecretString, String)> = plans
        .iter()
        .enumerate()
        .filter_map(
            |(i, p)| match (&p.pin, p.before.as_ref().and_then(|b| b.pin_hash.clone())) {
                (PinChange::Set(pin), Some(hash)) => Some((i, pin.clone(), hash)),
                _ => None,
            },
        )
        .collect();
    if checks.is_empty() {
        return Ok(());
    }
    let (indexes, jobs): (Vec<usize>, Vec<_>) = checks
        .into_iter()
        .map(|(i, pin, hash)| (i, verify_secret(pin, Some(hash))))
        .unzip();
    let same = bounded(jobs, None).await?;
    for (i, same) in indexes.into_iter().zip(same) {
        if let Some(p) = plans.get_mut(i) {
            p.pin_unchanged = same;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::extensions::ExtensionPatch;

    #[test]
    fn stored_columns_are_named_as_in_the_body() {
        assert_eq!(
            body_name("forward_no_answer_destination"),
            "forwarding.no_answer.destination"
        );
        assert_eq!(body_name("forward_busy_enabled"), "forwarding.busy.enabled");
        assert_eq!(body_name("record_inbound"), "recording.inbound");
        assert_eq!(
            body_name("max_registrations"),
            "sip_registration.max_registrations"
        );
        assert_eq!(body_name("display_name"), "display_name");
    }

    fn plan(
        before: Option<extension_store::Model>,
        model: extension_store::Model,
    ) -> ExtensionPlan {
        ExtensionPlan {
            row: Some(2),
            before,
            model,
            pin: PinChange::Keep,
            user_given: false,
            linked_by: None,
            pin_unchanged: false,
            group: None,
        }
    }

    #[test]
    fn an_update_names_the_fields_it_changes_and_nothing_else() {
        let (mut stored, _, _) = rules::draft(
            Uuid::nil(),
            chrono::Utc::now(),
            ExtensionPatch {
                number: Some("201".into()),
                display_name: Some("Ada".into()),
                ..Default::default()
            },
        );
        stored.pin_hash = Some("$argon2id$…".into());
        let mut model = stored.clone();
        model.updated_at = chrono::Utc::now() + chrono::Duration::seconds(5);
        let same = plan(Some(stored.clone()), model.clone());
        assert_eq!(same.changed(), Vec::<String>::new());
        assert_eq!(same.action(), Action::Unchanged);

        model.dnd = true;
        model.forward_busy_destination = Some("202".into());
        let mut changed = plan(Some(stored.clone()), model);
        changed.pin = PinChange::Remove;
        assert_eq!(
            changed.changed(),
            vec!["dnd", "forwarding.busy.destination", "pin"]
        );
        assert_eq!(changed.action(), Action::Updated);

        let mut same_pin = plan(Some(stored.clone()), stored.clone());
        same_pin.pin = PinChange::Set(SecretString::from("2580"));
        same_pin.pin_unchanged = true;
        assert!(!same_pin.pin_changes());
        assert_eq!(plan(None, stored).action(), Action::Created);
    }
}
