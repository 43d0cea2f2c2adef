//! Device rows: a new Device with the single create's rules, or the stored one (matched by MAC
//! address) changed with the single update's rules. Owner and placeholder Extensions may be
//! named by number and the Location by name, records of the same file included.

use std::collections::{HashMap, HashSet};

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::extensions::{ExtensionPlan, number_key};
use super::locations::LocationPlan;
use super::{
    Action, DeviceRow, Drafting, Numbered, OnExisting, Report, RowKind, RowResult, action_of,
    changed_fields, duplicates, lookup,
};
use crate::error::{DomainResult, FieldError, FieldErrors};
use crate::services::devices as rules;
use crate::store::{devices as device_store, extensions as extension_store};
use crate::telephony::values::{ExtensionNumber, MacAddress};

/// A Device the import creates or changes.
#[derive(Debug)]
pub(super) struct DevicePlan {
    /// Its row.
    pub row: usize,
    /// The stored Device it changes.
    pub before: Option<device_store::Model>,
    /// The Device as it will be (a new one gets its SIP identity when written).
    pub model: device_store::Model,
    /// Whether the row gave a position in the Location (otherwise, joining one puts it at the
    /// end).
    pub position_given: bool,
}

/// Stored columns that are not the row's to change (or are kept by the switch).
const SKIP: &[&str] = &[
    "id",
    "domain_id",
    "sip_username",
    "created_at",
    "updated_at",
    "last_extension_id",
];

impl DevicePlan {
    /// Whether it joins a Location (new, or another one) without a position of its own.
    pub(super) fn needs_position(&self) -> bool {
        self.model.location_id.is_some()
            && !self.position_given
            && self
                .before
                .as_ref()
                .is_none_or(|b| b.location_id != self.model.location_id)
    }

    /// The fields an update changes.
    pub(super) fn changed(&self) -> Vec<String> {
        let Some(before) = &self.before else {
            return Vec::new();
        };
        match (rules::audit_view(before), rules::audit_view(&self.model)) {
            (Some(b), Some(a)) => changed_fields(&b, &a, SKIP, str::to_owned),
            _ => Vec::new(),
        }
    }

    /// Created, updated or unchanged.
    pub(super) fn action(&self) -> Action {
        action_of(self.before.as_ref(), &self.changed())
    }

    /// The row's outcome; the key is the MAC address, or the label of a Device without one.
    pub(super) fn result(&self) -> RowResult {
        let changed = self.changed();
        let key = match self.model.mac_address.as_deref().map(MacAddress::parse) {
            Some(Ok(mac)) => mac.colon_separated(),
            _ => self.model.label.clone(),
        };
        RowResult {
            row: self.row,
            kind: RowKind::Device,
            key,
            action: action_of(self.before.as_ref(), &changed),
            id: Some(self.model.id),
            changed,
            set_password: None,
        }
    }
}

/// The MAC address a row gives, normalised; `None` when it gives none or an invalid one (the
/// rules say why).
fn mac_key(patch: &rules::DevicePatch) -> Option<String> {
    match &patch.mac_address {
        Some(Some(raw)) => MacAddress::parse(raw).ok().map(MacAddress::into_string),
        _ => None,
    }
}

/// Resolves the natural-key references of every Device row, builds the rows with the single
/// create or update rules and checks their references.
pub(super) async fn draft<C: ConnectionTrait>(
    db: &C,
    at: Drafting,
    rows: Vec<Numbered<DeviceRow>>,
    exts: &[ExtensionPlan],
    locs: &[LocationPlan],
    report: &mut Report,
) -> DomainResult<Vec<DevicePlan>> {
    let Drafting {
        domain_id,
        now,
        on_existing,
    } = at;
    let kind = RowKind::Device;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    // The Extensions Devices may point at: the file's own as they will be, then the stored
    // ones.
    let in_file: HashMap<&str, &extension_store::Model> = exts
        .iter()
        .map(|p| (p.model.number.as_str(), &p.model))
        .collect();
    let wanted_numbers: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            [
                &r.value.owner_extension,
                &r.value.placeholder_extension,
                &r.value.home_extension,
            ]
        })
        .flatten()
        .filter_map(|n| number_key(Some(n)))
        .filter(|n| !in_file.contains_key(n.as_str()))
        .collect();
    let stored_by_number = lookup::extensions_by_number(db, domain_id, &wanted_numbers).await?;
    let in_file_ids: HashSet<Uuid> = exts.iter().map(|p| p.model.id).collect();
    let wanted_ids: Vec<Uuid> = rows
        .iter()
        .flat_map(|r| {
            [
                r.value.patch.owner_extension_id.flatten(),
                r.value.patch.placeholder_extension_id.flatten(),
                r.value.patch.home_extension_id.flatten(),
            ]
        })
        .flatten()
        .filter(|id| !in_file_ids.contains(id))
        .collect();
    let stored_by_id = lookup::extensions_by_id(db, domain_id, &wanted_ids).await?;
    let by_id: HashMap<Uuid, &extension_store::Model> = in_file
        .values()
        .map(|m| (m.id, *m))
        .chain(stored_by_id.values().map(|m| (m.id, m)))
        .chain(stored_by_number.values().map(|m| (m.id, m)))
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

    // The Locations: the file's own, then the stored ones.
    let file_locations: HashMap<String, Uuid> = locs
        .iter()
        .map(|p| (p.model.name.clone(), p.model.id))
        .collect();
    let names: Vec<String> = rows
        .iter()
        .filter_map(|r| r.value.location.as_deref().map(|n| n.trim().to_owned()))
        .filter(|n| !file_locations.contains_key(n))
        .collect();
    let stored_locations: HashMap<String, Uuid> = lookup::locations_by_name(db, domain_id, &names)
        .await?
        .into_iter()
        .map(|(name, l)| (name, l.id))
        .collect();
    let location_ids: Vec<Uuid> = rows
        .iter()
        .filter_map(|r| r.value.patch.location_id.flatten())
        .collect();
    let mut known_locations = lookup::known_locations(db, domain_id, &location_ids).await?;
    known_locations.extend(file_locations.values().copied());
    // The Domain's provisioning templates a row names, with their vendors.
    let template_ids: Vec<Uuid> = rows
        .iter()
        .filter_map(|r| r.value.patch.template_id.flatten())
        .collect();
    let templates = lookup::template_vendors(db, domain_id, &template_ids).await?;

    // MAC addresses: repeated in the file, a Device of this Domain (the match), or another's.
    let macs: Vec<Option<String>> = rows.iter().map(|r| mac_key(&r.value.patch)).collect();
    duplicates(
        rows.iter().zip(&macs).map(|(r, m)| (r.row, m.clone())),
        |row, earlier| {
            report.add(
                row,
                kind,
                "mac_address",
                "duplicate_in_file",
                format!("the MAC address is already on row {earlier} of this file"),
            )
        },
    );
    let all_macs: Vec<String> = macs.iter().flatten().cloned().collect();
    let used = lookup::mac_domains(db, &all_macs).await?;
    let here: Vec<String> = used
        .iter()
        .filter(|(_, d)| **d == domain_id)
        .map(|(m, _)| m.clone())
        .collect();
    let stored_here = lookup::devices_by_mac(db, domain_id, &here).await?;

    let mut plans = Vec::with_capacity(rows.len());
    for (Numbered { row, value }, mac) in rows.into_iter().zip(macs) {
        let DeviceRow {
            mut patch,
            owner_extension,
            placeholder_extension,
            location,
            home_extension,
        } = value;
        let mut errors = FieldErrors::new();
        // Whether the owner / placeholder / home was named by number (import-only field).
        let mut owner_by_number = false;
        let mut placeholder_by_number = false;
        let mut home_by_number = false;
        for (number, id_field, key_field, target, by_number) in [
            (
                owner_extension,
                "owner_extension_id",
                "owner_extension",
                &mut patch.owner_extension_id,
                &mut owner_by_number,
            ),
            (
                placeholder_extension,
                "placeholder_extension_id",
                "placeholder_extension",
                &mut patch.placeholder_extension_id,
                &mut placeholder_by_number,
            ),
            (
                home_extension,
                "home_extension_id",
                "home_extension",
                &mut patch.home_extension_id,
                &mut home_by_number,
            ),
        ] {
            match (number.filter(|n| !n.trim().is_empty()), *target) {
                (Some(_), Some(Some(_))) => errors.add(
                    key_field,
                    "conflicting_fields",
                    format!("give {key_field} or {id_field}, not both"),
                ),
                (Some(number), _) => {
                    *by_number = true;
                    if let Some(id) = errors.check(key_field, resolve(&number)) {
                        *target = Some(Some(id));
                    }
                }
                (None, _) => {}
            }
        }
        let mut location_found = true;
        match (location.filter(|n| !n.trim().is_empty()), patch.location_id) {
            (Some(_), Some(Some(_))) => errors.add(
                "location",
                "conflicting_fields",
                "give location or location_id, not both",
            ),
            (Some(name), _) => {
                let name = name.trim();
                match file_locations
                    .get(name)
                    .or_else(|| stored_locations.get(name))
                {
                    Some(id) => patch.location_id = Some(Some(*id)),
                    None => errors.add(
                        "location",
                        "not_found",
                        format!("no Location named {name:?} in this Domain or in this file"),
                    ),
                }
            }
            (None, Some(Some(id))) => location_found = known_locations.contains(&id),
            (None, _) => {}
        }
        let position_given = patch.location_position.is_some();
        if let Some(m) = &mac
            && used.get(m).is_some_and(|d| *d != domain_id)
        {
            report.add(
                row,
                kind,
                "mac_address",
                "already_exists",
                "a Device with this MAC address already exists",
            );
        }
        let found = mac.as_ref().and_then(|m| stored_here.get(m));
        let (before, mut model, draft_errors) = match found {
            Some(before) if on_existing == OnExisting::Update => {
                let mut model = before.clone();
                rules::apply(&mut model, patch);
                model.updated_at = now;
                (Some(before.clone()), model, FieldErrors::new())
            }
            found => {
                if found.is_some() {
                    report.add(
                        row,
                        kind,
                        "mac_address",
                        "already_exists",
                        "a Device with this MAC address already exists (import with on_existing=update to change it)",
                    );
                }
                let (model, draft_errors) = rules::draft(domain_id, now, patch);
                (None, model, draft_errors)
            }
        };
        if draft_errors.is_empty() && errors.is_empty() {
            let mut checks = rules::validate(&mut model);
            let owner = model
                .owner_extension_id
                .and_then(|id| by_id.get(&id).copied());
            let placeholder = model
                .placeholder_extension_id
                .and_then(|id| by_id.get(&id).copied());
            rules::check_references(
                &model,
                before.as_ref(),
                owner,
                placeholder,
                location_found,
                &mut checks,
            );
            if let Some(id) = model.home_extension_id
                && before
                    .as_ref()
                    .is_none_or(|b| b.home_extension_id != Some(id))
            {
                rules::check_home(by_id.get(&id).copied(), &mut checks);
            }
            if let Some(id) = model.template_id
                && before.as_ref().is_none_or(|b| b.template_id != Some(id))
            {
                rules::template_fits(templates.get(&id).map(String::as_str), &model, &mut checks);
            }
            // Errors about a reference given by number are reported under the number's field.
            for mut e in checks.into_vec() {
                if owner_by_number && e.field == "owner_extension_id" {
                    e.field = "owner_extension".into();
                }
                if placeholder_by_number && e.field == "placeholder_extension_id" {
                    e.field = "placeholder_extension".into();
                }
                if home_by_number && e.field == "home_extension_id" {
                    e.field = "home_extension".into();
                }
                errors.push(e);
            }
        } else {
            for e in draft_errors.into_vec() {
                errors.push(e);
            }
        }
        report.extend(row, kind, errors);
        plans.push(DevicePlan {
            row,
            before,
            model,
            position_given,
        });
    }
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(before: Option<device_store::Model>, model: device_store::Model) -> DevicePlan {
        DevicePlan {
            row: 3,
            before,
            model,
            position_given: false,
        }
    }

    #[test]
    fn a_device_update_names_its_changes_and_keys_by_mac() {
        let now = chrono::Utc::now();
        let mut stored = rules::new_row(Uuid::nil(), now);
        stored.label = "Desk".into();
        stored.mac_address = Some("001565abcdef".into());
        stored.sip_username = "d123".into();
        let mut model = stored.clone();
        model.updated_at = now + chrono::Duration::seconds(1);
        assert_eq!(
            plan(Some(stored.clone()), model.clone()).action(),
            Action::Unchanged
        );
        model.label = "Reception".into();
        model.location_id = Some(Uuid::from_u128(4));
        let changed = plan(Some(stored.clone()), model);
        assert_eq!(changed.changed(), vec!["label", "location_id"]);
        assert!(changed.needs_position());
        assert_eq!(changed.result().key, "00:15:65:ab:cd:ef");
        let mut softphone = stored;
        softphone.mac_address = None;
        assert_eq!(plan(None, softphone).result().key, "Desk");
    }
}
