//! Group rows: a new hot-desk group with the single create's rules, or the stored one (matched
//! by name) changed with the single update's rules. The placeholder may be named by number, an
//! Extension of the same file included (checked as it will be); Extension rows may join the
//! groups of the same file by name.

use std::collections::{HashMap, HashSet};

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::extensions::{ExtensionPlan, number_key};
use super::{
    Action, Drafting, GroupRow, Numbered, OnExisting, Report, RowKind, RowResult, action_of,
    changed_fields, lookup, names_in_file,
};
use crate::error::{DomainResult, FieldError, FieldErrors};
use crate::services::extension_groups as rules;
use crate::store::{extension_groups, extensions as extension_store};
use crate::telephony::policy::LoggedOutMode;
use crate::telephony::values::ExtensionNumber;

/// A group the import creates or changes.
#[derive(Debug)]
pub(super) struct GroupPlan {
    /// Its row.
    pub row: usize,
    /// The stored group it changes.
    pub before: Option<extension_groups::Model>,
    /// The group as it will be.
    pub model: extension_groups::Model,
}

/// Stored columns that are not the row's to change.
const SKIP: &[&str] = &["id", "domain_id", "created_at", "updated_at"];

impl GroupPlan {
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
        changed_fields(&b, &a, SKIP, str::to_owned)
    }

    /// Created, updated or unchanged.
    pub(super) fn action(&self) -> Action {
        action_of(self.before.as_ref(), &self.changed())
    }

    /// The row's outcome.
    pub(super) fn result(&self) -> RowResult {
        let changed = self.changed();
        RowResult {
            row: self.row,
            kind: RowKind::Group,
            key: self.model.name.clone(),
            action: action_of(self.before.as_ref(), &changed),
            id: Some(self.model.id),
            changed,
            set_password: None,
        }
    }

    /// Whether the group is new or changes what a member's logout leaves a phone in (as for a
    /// single change, only then do the hot-desk phones re-read their configuration).
    pub(super) fn logout_action_changes(&self) -> bool {
        self.before.as_ref().is_none_or(|b| {
            b.logged_out_mode != self.model.logged_out_mode
                || b.placeholder_extension_id != self.model.placeholder_extension_id
        })
    }
}

/// A new group as the single create starts it: `inherit`, no placeholder.
fn new_row(domain_id: Uuid, now: chrono::DateTime<chrono::Utc>) -> extension_groups::Model {
    extension_groups::Model {
        id: Uuid::now_v7(),
        domain_id,
        name: String::new(),
        description: String::new(),
        logged_out_mode: LoggedOutMode::Inherit.as_str().to_owned(),
        placeholder_extension_id: None,
        created_at: now,
        updated_at: now,
    }
}

/// The single change's placeholder rule, on the Extension as it will be once the file is
/// imported (`None`: neither stored nor in the file).
fn check_placeholder(found: Option<&extension_store::Model>, errors: &mut FieldErrors) {
    crate::services::extensions::check_placeholder_ref(
        found,
        "placeholder_extension_id",
        "no such Extension in this Domain or in this file",
        errors,
    );
}

/// Builds and checks every group row: a match on the name updates the stored group (or, with
/// [`OnExisting::Error`], is an `already_exists` error).
pub(super) async fn draft<C: ConnectionTrait>(
    db: &C,
    at: Drafting,
    rows: Vec<Numbered<GroupRow>>,
    exts: &[ExtensionPlan],
    report: &mut Report,
) -> DomainResult<Vec<GroupPlan>> {
    let Drafting {
        domain_id,
        now,
        on_existing,
    } = at;
    let kind = RowKind::Group;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let names = names_in_file(&rows, |r| r.patch.name.as_deref(), kind, report);
    let stored = lookup::groups_by_name(
        db,
        domain_id,
        &names.iter().flatten().cloned().collect::<Vec<_>>(),
    )
    .await?;

    // The placeholders: the file's Extensions as they will be, then the stored ones.
    let in_file: HashMap<&str, &extension_store::Model> = exts
        .iter()
        .map(|p| (p.model.number.as_str(), &p.model))
        .collect();
    let in_file_ids: HashSet<Uuid> = exts.iter().map(|p| p.model.id).collect();
    let numbers: Vec<String> = rows
        .iter()
        .filter_map(|r| number_key(r.value.placeholder_extension.as_deref()))
        .filter(|n| !in_file.contains_key(n.as_str()))
        .collect();
    let ids: Vec<Uuid> = rows
        .iter()
        .filter_map(|r| r.value.patch.placeholder_extension_id.flatten())
        .filter(|id| !in_file_ids.contains(id))
        .collect();
    let stored_by_number = lookup::extensions_by_number(db, domain_id, &numbers).await?;
    let stored_by_id = lookup::extensions_by_id(db, domain_id, &ids).await?;
    // The file's version of an Extension wins over the stored one.
    let by_id: HashMap<Uuid, &extension_store::Model> = stored_by_id
        .values()
        .chain(stored_by_number.values())
        .chain(in_file.values().copied())
        .map(|m| (m.id, m))
        .collect();
    let resolve = |number: &str| -> Result<Uuid, FieldError> {
        let number = ExtensionNumber::parse(number)?.into_string();
        in_file
            .get(number.as_str())
            .map(|m| m.id)
            .or_else(|| stored_by_number.get(&number).map(|m| m.id))
            .ok_or_else(|| {
                FieldError::new(
                    "",
                    "not_found",
                    format!("no Extension {number} in this Domain or in this file"),
                )
            })
    };

    let mut plans = Vec::with_capacity(rows.len());
    for (Numbered { row, value }, name) in rows.into_iter().zip(names) {
        let GroupRow {
            mut patch,
            placeholder_extension,
        } = value;
        let mut errors = FieldErrors::new();
        if name.is_none() {
            errors.add("name", "required", "a group needs a name");
        }
        // Named by number (the import-only field), and whether that reference already failed.
        let mut by_number = false;
        let mut unresolved = false;
        match (
            placeholder_extension.filter(|n| !n.trim().is_empty()),
            patch.placeholder_extension_id,
        ) {
            (Some(_), Some(Some(_))) => {
                errors.add(
                    "placeholder_extension",
                    "conflicting_fields",
                    "give placeholder_extension or placeholder_extension_id, not both",
                );
                unresolved = true;
            }
            (Some(number), _) => {
                by_number = true;
                match errors.check("placeholder_extension", resolve(&number)) {
                    Some(id) => patch.placeholder_extension_id = Some(Some(id)),
                    None => unresolved = true,
                }
            }
            (None, _) => {}
        }
        let found = name.as_ref().and_then(|n| stored.get(n));
        let (before, mut model) = match found {
            Some(before) if on_existing == OnExisting::Update => {
                let mut model = before.clone();
                rules::apply(&mut model, patch);
                model.updated_at = now;
                (Some(before.clone()), model)
            }
            found => {
                if found.is_some() {
                    errors.add(
                        "name",
                        "already_exists",
                        "a group with this name already exists in the Domain (import with on_existing=update to change it)",
                    );
                }
                let mut model = new_row(domain_id, now);
                rules::apply(&mut model, patch);
                (None, model)
            }
        };
        let mut checks = rules::validate(&mut model);
        // As for a single change, a placeholder the group already has is not checked again.
        if let Some(id) = model.placeholder_extension_id
            && before
                .as_ref()
                .is_none_or(|b| b.placeholder_extension_id != Some(id))
        {
            check_placeholder(by_id.get(&id).copied(), &mut checks);
        }
        for mut e in checks.into_vec() {
            match e.field.as_str() {
                // A missing name is already `required`.
                "name" if name.is_none() => continue,
                // A placeholder that could not be resolved is already reported.
                "placeholder_extension_id" if unresolved => continue,
                // Errors about a placeholder given by number go under the number's field.
                "placeholder_extension_id" if by_number => {
                    e.field = "placeholder_extension".into();
                }
                _ => {}
            }
            errors.push(e);
        }
        report.extend(row, kind, errors);
        plans.push(GroupPlan { row, before, model });
    }
    Ok(plans)
}

/// Puts the Extensions whose row names a group that is not stored into the group of the file
/// with that name (the first row of it); a name that is neither is an error of the Extension
/// row.
pub(super) fn join(groups: &[GroupPlan], exts: &mut [ExtensionPlan], report: &mut Report) {
    let mut by_name: HashMap<&str, Uuid> = HashMap::new();
    for g in groups {
        by_name.entry(g.model.name.as_str()).or_insert(g.model.id);
    }
    for ext in exts.iter_mut() {
        let Some(name) = ext.group.as_deref() else {
            continue;
        };
        match by_name.get(name) {
            Some(id) => ext.model.group_id = Some(*id),
            None => {
                if let Some(row) = ext.row {
                    report.add(
                        row,
                        RowKind::Extension,
                        "group",
                        "not_found",
                        format!("no hot-desk group named {name:?} in this Domain or in this file"),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored_group() -> extension_groups::Model {
        let mut g = new_row(Uuid::nil(), chrono::Utc::now());
        g.name = "Visitors".into();
        g
    }

    #[test]
    fn an_update_names_the_changed_fields_and_only_a_new_logout_action_refreshes_phones() {
        let stored = stored_group();
        let mut model = stored.clone();
        model.updated_at = stored.updated_at + chrono::Duration::seconds(1);
        let mut plan = GroupPlan {
            row: 2,
            before: Some(stored.clone()),
            model,
        };
        assert_eq!(plan.action(), Action::Unchanged);
        plan.model.description = "Guests".into();
        assert_eq!(plan.changed(), vec!["description".to_owned()]);
        assert_eq!(plan.action(), Action::Updated);
        assert!(!plan.logout_action_changes(), "a description is no logout");
        plan.model.logged_out_mode = "placeholder".into();
        plan.model.placeholder_extension_id = Some(Uuid::from_u128(7));
        assert_eq!(
            plan.changed(),
            vec![
                "description".to_owned(),
                "logged_out_mode".to_owned(),
                "placeholder_extension_id".to_owned()
            ]
        );
        assert!(plan.logout_action_changes());
        let new = GroupPlan {
            row: 3,
            before: None,
            model: stored,
        };
        assert_eq!(new.action(), Action::Created);
        assert!(new.logout_action_changes());
        assert_eq!(new.result().key, "Visitors");
    }

    #[test]
    fn a_placeholder_must_exist_and_be_one() {
        let (mut ext, _, _) = crate::services::extensions::draft(
            Uuid::nil(),
            chrono::Utc::now(),
            crate::services::extensions::ExtensionPatch {
                number: Some("299".into()),
                display_name: Some("Lobby".into()),
                ..Default::default()
            },
        );
        let codes = |found: Option<&extension_store::Model>| {
            let mut errors = FieldErrors::new();
            check_placeholder(found, &mut errors);
            errors
                .into_vec()
                .into_iter()
                .map(|e| (e.field, e.code))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            codes(None),
            vec![("placeholder_extension_id".into(), "not_found".into())]
        );
        assert_eq!(
            codes(Some(&ext)),
            vec![(
                "placeholder_extension_id".into(),
                "not_a_placeholder".into()
            )]
        );
        ext.placeholder = true;
        assert_eq!(codes(Some(&ext)), vec![]);
    }
}
