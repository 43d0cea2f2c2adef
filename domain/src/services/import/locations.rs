//! Location rows: a new Location with the single create's rules, or the stored one (matched by
//! name) changed with the single update's rules. The Extensions allowed to sign in may be named
//! by number, Extensions of the same file included; roles by name or id.

use std::collections::{HashMap, HashSet};

use sea_orm::ConnectionTrait;
use serde_json::json;
use uuid::Uuid;

use super::extensions::{ExtensionPlan, number_key};
use super::users::{custom_role_keys, role_key};
use super::{
    Action, Drafting, LocationRow, Numbered, OnExisting, Report, RowKind, RowResult, action_of,
    changed_fields, duplicates, lookup, names_in_file,
};
use crate::error::{DomainResult, FieldErrors};
use crate::services::locations as rules;
use crate::services::roles::{RoleTarget, resolve_roles};
use crate::store::{extensions as extension_store, locations};

/// A Location the import creates or changes.
#[derive(Debug)]
pub(super) struct LocationPlan {
    /// Its row.
    pub row: usize,
    /// The stored Location it changes.
    pub before: Option<locations::Model>,
    /// The Extensions listed for the stored Location.
    pub before_allowed: Vec<Uuid>,
    /// The Location as it will be.
    pub model: locations::Model,
    /// The Extensions listed as allowed to sign in, as they will be.
    pub allowed: Vec<Uuid>,
    /// Whether the row gave the listing (it is then rewritten).
    pub listing_given: bool,
}

/// Stored columns that are not the row's to change.
const SKIP: &[&str] = &["id", "domain_id", "created_at", "updated_at"];

impl LocationPlan {
    /// Whether the listed Extensions change.
    pub(super) fn listing_changes(&self) -> bool {
        let sorted = |ids: &[Uuid]| {
            let mut ids = ids.to_vec();
            ids.sort();
            ids
        };
        self.listing_given && sorted(&self.allowed) != sorted(&self.before_allowed)
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
        let mut fields = changed_fields(&b, &a, SKIP, str::to_owned);
        if self.listing_changes() {
            fields.push("allowed_extension_ids".to_owned());
        }
        fields
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
            kind: RowKind::Location,
            key: self.model.name.clone(),
            action: action_of(self.before.as_ref(), &changed),
            id: Some(self.model.id),
            changed,
            set_password: None,
        }
    }
}

/// The Extensions a Location row may list: those of the file as they will be, then the stored
/// ones.
struct Listable<'a> {
    by_number: HashMap<String, &'a extension_store::Model>,
    by_id: HashMap<Uuid, &'a extension_store::Model>,
}

impl Listable<'_> {
    /// Checks one listed Extension (`None`: not found) under `field`; its id when it may sign in.
    fn check(
        found: Option<&extension_store::Model>,
        field: String,
        errors: &mut FieldErrors,
    ) -> Option<Uuid> {
        match found {
            None => {
                errors.add(
                    field,
                    "not_found",
                    "no such Extension in this Domain or in this file",
                );
                None
            }
            Some(ext) if ext.placeholder => {
                errors.add(
                    field,
                    "is_placeholder",
                    "a placeholder Extension never signs in",
                );
                None
            }
            Some(ext) => Some(ext.id),
        }
    }
}

/// Builds and checks every Location row.
pub(super) async fn draft<C: ConnectionTrait>(
    db: &C,
    at: Drafting,
    rows: Vec<Numbered<LocationRow>>,
    exts: &[ExtensionPlan],
    report: &mut Report,
) -> DomainResult<Vec<LocationPlan>> {
    let Drafting {
        domain_id,
        now,
        on_existing,
    } = at;
    let kind = RowKind::Location;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let names = names_in_file(&rows, |r| r.patch.name.as_deref(), kind, report);
    let stored = lookup::locations_by_name(
        db,
        domain_id,
        &names.iter().flatten().cloned().collect::<Vec<_>>(),
    )
    .await?;
    let stored_ids: Vec<Uuid> = stored.values().map(|l| l.id).collect();
    let listed = lookup::listings(db, domain_id, &stored_ids).await?;
    let custom = custom_role_keys(db, domain_id).await?;

    // The Extensions the rows list that the file does not hold.
    let in_file_numbers: HashSet<&str> = exts.iter().map(|p| p.model.number.as_str()).collect();
    let in_file_ids: HashSet<Uuid> = exts.iter().map(|p| p.model.id).collect();
    let numbers: Vec<String> = rows
        .iter()
        .filter_map(|r| r.value.allowed_extensions.as_ref())
        .flatten()
        .filter_map(|n| number_key(Some(n)))
        .filter(|n| !in_file_numbers.contains(n.as_str()))
        .collect();
    let ids: Vec<Uuid> = rows
        .iter()
        .filter_map(|r| r.value.patch.allowed_extension_ids.as_ref())
        .flatten()
        .copied()
        .filter(|id| !in_file_ids.contains(id))
        .collect();
    let stored_by_number = lookup::extensions_by_number(db, domain_id, &numbers).await?;
    let stored_by_id = lookup::extensions_by_id(db, domain_id, &ids).await?;
    let listable = Listable {
        by_number: exts
            .iter()
            .map(|p| (p.model.number.clone(), &p.model))
            .chain(stored_by_number.iter().map(|(n, m)| (n.clone(), m)))
            .collect(),
        by_id: exts
            .iter()
            .map(|p| (p.model.id, &p.model))
            .chain(stored_by_id.iter().map(|(id, m)| (*id, m)))
            .collect(),
    };

    let mut plans = Vec::with_capacity(rows.len());
    for (Numbered { row, value }, name) in rows.into_iter().zip(names) {
        let LocationRow {
            mut patch,
            allowed_extensions,
        } = value;
        let mut errors = FieldErrors::new();
        if name.is_none() {
            errors.add("name", "required", "a Location needs a name");
        }
        let listing = match (allowed_extensions, patch.allowed_extension_ids.take()) {
            (Some(_), Some(_)) => {
                errors.add(
                    "allowed_extensions",
                    "conflicting_fields",
                    "give allowed_extensions or allowed_extension_ids, not both",
                );
                None
            }
            (Some(numbers), None) => Some(
                numbers
                    .iter()
                    .enumerate()
                    .filter_map(|(i, n)| {
                        let field = format!("allowed_extensions[{i}]");
                        let found =
                            number_key(Some(n)).and_then(|n| listable.by_number.get(&n).copied());
                        Listable::check(found, field, &mut errors)
                    })
                    .collect::<Vec<_>>(),
            ),
            (None, Some(ids)) => Some(
                ids.iter()
                    .enumerate()
                    .filter_map(|(i, id)| {
                        let field = format!("allowed_extension_ids[{i}]");
                        Listable::check(listable.by_id.get(id).copied(), field, &mut errors)
                    })
                    .collect::<Vec<_>>(),
            ),
            (None, None) => None,
        };
        if let Some(names) = patch.allowed_roles.take() {
            patch.allowed_roles = Some(names.iter().map(|n| role_key(n, &custom)).collect());
        }
        let found = name.as_ref().and_then(|n| stored.get(n));
        let (before, mut model) = match found {
            Some(before) if on_existing == OnExisting::Update => {
                let mut model = before.clone();
                rules::apply(&mut model, &patch);
                model.updated_at = now;
                (Some(before.clone()), model)
            }
            found => {
                if found.is_some() {
                    errors.add(
                        "name",
                        "already_exists",
                        "a Location with this name already exists in the Domain (import with on_existing=update to change it)",
                    );
                }
                let mut model = rules::new_row(domain_id, now);
                rules::apply(&mut model, &patch);
                (None, model)
            }
        };
        let before_allowed = before
            .as_ref()
            .and_then(|b| listed.get(&b.id).cloned())
            .unwrap_or_default();
        let listing_given = listing.is_some();
        let mut allowed = listing.unwrap_or_else(|| before_allowed.clone());
        let mut seen = HashSet::new();
        allowed.retain(|id| seen.insert(*id));
        for e in rules::validate(&mut model, &allowed).into_vec() {
            errors.push(e);
        }
        if let Some(keys) = &patch.allowed_roles {
            let views = resolve_roles(
                db,
                RoleTarget::Domain(domain_id),
                keys,
                "allowed_roles",
                &mut errors,
            )
            .await?;
            model.allowed_roles = json!(views.into_iter().map(|v| v.key).collect::<Vec<_>>());
        }
        report.extend(row, kind, errors);
        plans.push(LocationPlan {
            row,
            before,
            before_allowed,
            model,
            allowed,
            listing_given,
        });
    }
    check_short_codes(db, domain_id, &plans, report).await?;
    Ok(plans)
}

/// A short code is unique in the Domain, as the Locations will be: repeated in the file, or
/// held by a stored Location the file does not change, is an error.
async fn check_short_codes<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    plans: &[LocationPlan],
    report: &mut Report,
) -> DomainResult<()> {
    let kind = RowKind::Location;
    duplicates(
        plans.iter().map(|p| (p.row, p.model.short_code.clone())),
        |row, earlier| {
            report.add(
                row,
                kind,
                "short_code",
                "duplicate_in_file",
                format!("the short code is already on row {earlier} of this file"),
            )
        },
    );
    let codes: Vec<String> = plans
        .iter()
        .filter_map(|p| p.model.short_code.clone())
        .collect();
    if codes.is_empty() {
        return Ok(());
    }
    let planned: HashSet<Uuid> = plans.iter().map(|p| p.model.id).collect();
    let held: HashSet<String> = lookup::locations_by_short_code(db, domain_id, &codes)
        .await?
        .into_iter()
        .filter(|l| !planned.contains(&l.id))
        .filter_map(|l| l.short_code)
        .collect();
    for p in plans {
        if p.model
            .short_code
            .as_ref()
            .is_some_and(|c| held.contains(c))
        {
            report.add(
                p.row,
                kind,
                "short_code",
                "already_exists",
                "another Location of the Domain has this short code",
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_names_changed_columns_and_a_changed_listing() {
        let now = chrono::Utc::now();
        let mut stored = rules::new_row(Uuid::nil(), now);
        stored.name = "HQ".into();
        let mut model = stored.clone();
        model.updated_at = now + chrono::Duration::seconds(1);
        let mut plan = LocationPlan {
            row: 2,
            before: Some(stored.clone()),
            before_allowed: vec![Uuid::from_u128(1), Uuid::from_u128(2)],
            model: model.clone(),
            allowed: vec![Uuid::from_u128(2), Uuid::from_u128(1)],
            listing_given: true,
        };
        assert_eq!(
            plan.action(),
            Action::Unchanged,
            "the same listing in another order"
        );
        plan.model.ring_strategy = "sequential".into();
        plan.allowed.pop();
        assert_eq!(
            plan.changed(),
            vec![
                "ring_strategy".to_owned(),
                "allowed_extension_ids".to_owned()
            ]
        );
        assert_eq!(plan.action(), Action::Updated);
    }
}
