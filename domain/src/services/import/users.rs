//! User rows: a new dashboard User with the rules of the single create (an invitation without a
//! password, an active account with one), or a member of the Domain (matched by email) whose
//! display name, roles and linked Extension change with the rules of the single update and
//! role replacement. Nobody grants or takes away a role they could not grant themselves, and
//! renaming an account needs control over the whole account, as in a single change.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use secrecy::SecretString;
use uuid::Uuid;

use super::extensions::{ExtensionPlan, number_key};
use super::{
    Action, Drafting, Numbered, OnExisting, Report, RowKind, RowResult, UserRow, action_of,
    duplicates, lookup,
};
use crate::error::{DomainResult, FieldErrors};
use crate::identity::authz::authorize_grant;
use crate::identity::email::Email;
use crate::identity::password::NewPassword;
use crate::identity::permissions::BuiltinRole;
use crate::services::roles::{self, RoleTarget, RoleView, union_of};
use crate::services::users::{AccountStatus, DisplayName, authorize_account_control};
use crate::services::{Context, access};
use crate::store::{extensions as extension_store, roles as role_store, users};

/// A User the import creates or changes.
#[derive(Debug)]
pub(super) struct UserPlan {
    /// Its row.
    pub row: usize,
    /// The stored account it changes (a member of the Domain).
    pub before: Option<users::Model>,
    /// The account as it will be (without its password hash, set when writing).
    pub model: users::Model,
    /// The roles held in the Domain before.
    pub held: Vec<RoleView>,
    /// The roles held in the Domain after.
    pub roles: Vec<RoleView>,
    /// A new User's password, to hash.
    pub password: Option<SecretString>,
    /// Whether its linked Extension changes.
    pub link_changed: bool,
}

impl UserPlan {
    /// Roles it gains.
    pub(super) fn added(&self) -> Vec<RoleView> {
        self.roles
            .iter()
            .filter(|r| !self.held.iter().any(|h| h.key == r.key))
            .cloned()
            .collect()
    }

    /// Roles it loses.
    pub(super) fn removed(&self) -> Vec<RoleView> {
        self.held
            .iter()
            .filter(|h| !self.roles.iter().any(|r| r.key == h.key))
            .cloned()
            .collect()
    }

    /// Whether a stored member's display name changes.
    pub(super) fn renamed(&self) -> bool {
        self.before
            .as_ref()
            .is_some_and(|b| b.display_name != self.model.display_name)
    }

    /// The fields an update changes.
    pub(super) fn changed(&self) -> Vec<String> {
        if self.before.is_none() {
            return Vec::new();
        }
        let mut fields = Vec::new();
        if self.renamed() {
            fields.push("display_name".to_owned());
        }
        if !self.added().is_empty() || !self.removed().is_empty() {
            fields.push("roles".to_owned());
        }
        if self.link_changed {
            fields.push("extension".to_owned());
        }
        fields
    }

    /// Created, updated or unchanged.
    pub(super) fn action(&self) -> Action {
        action_of(self.before.as_ref(), &self.changed())
    }

    /// A new User without a password: invited, with a set-password token.
    pub(super) fn invited(&self) -> bool {
        self.before.is_none() && self.password.is_none()
    }

    /// The row's outcome.
    pub(super) fn result(&self) -> RowResult {
        let changed = self.changed();
        RowResult {
            row: self.row,
            kind: RowKind::User,
            key: self.model.email.clone(),
            action: action_of(self.before.as_ref(), &changed),
            id: Some(self.model.id),
            changed,
            set_password: None,
        }
    }
}

/// The Domain's custom roles by lower-cased name → their key (the id), so that a file may name
/// them as people do.
pub(super) async fn custom_role_keys<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
) -> DomainResult<HashMap<String, String>> {
    Ok(role_store::Entity::find()
        .filter(role_store::Column::DomainId.eq(domain_id))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.name.trim().to_lowercase(), r.id.to_string()))
        .collect())
}

/// The role key a file's role names: a built-in name or a custom role id as they are, a custom
/// role's name as its id; anything else unchanged, for [`roles::resolve_roles`] to refuse.
pub(super) fn role_key(name: &str, custom: &HashMap<String, String>) -> String {
    let name = name.trim();
    if BuiltinRole::parse(name).is_some() || Uuid::try_parse(name).is_ok() {
        return name.to_owned();
    }
    custom
        .get(&name.to_lowercase())
        .cloned()
        .unwrap_or_else(|| name.to_owned())
}

/// Builds and checks every User row; links and unlinks their Extensions in `exts` (adding the
/// stored Extensions they touch).
pub(super) async fn draft<C: ConnectionTrait>(
    db: &C,
    ctx: &Context,
    at: Drafting,
    rows: Vec<Numbered<UserRow>>,
    exts: &mut Vec<ExtensionPlan>,
    report: &mut Report,
) -> DomainResult<Vec<UserPlan>> {
    let Drafting {
        domain_id,
        now,
        on_existing,
    } = at;
    let kind = RowKind::User;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let custom = custom_role_keys(db, domain_id).await?;
    let emails: Vec<Option<String>> = rows
        .iter()
        .map(|r| {
            r.value
                .email
                .as_deref()
                .and_then(|e| Email::parse(e).ok())
                .map(|e| e.as_str().to_owned())
        })
        .collect();
    duplicates(
        rows.iter().zip(&emails).map(|(r, e)| (r.row, e.clone())),
        |row, earlier| {
            report.add(
                row,
                kind,
                "email",
                "duplicate_in_file",
                format!("the email is already on row {earlier} of this file"),
            )
        },
    );
    let stored =
        lookup::users_by_email(db, &emails.iter().flatten().cloned().collect::<Vec<_>>()).await?;
    let stored_ids: Vec<Uuid> = stored.values().map(|u| u.id).collect();
    let members = lookup::members_of(db, domain_id, &stored_ids).await?;
    let member_ids: Vec<Uuid> = members.iter().copied().collect();
    // The Extension each member is linked to today.
    let linked: HashMap<Uuid, extension_store::Model> =
        lookup::extensions_of_users(db, domain_id, &member_ids)
            .await?
            .into_iter()
            .filter_map(|e| e.user_id.map(|u| (u, e)))
            .collect();
    // Extensions named by number that the file does not hold.
    let in_file: HashMap<String, Uuid> = exts
        .iter()
        .filter(|p| p.row.is_some())
        .map(|p| (p.model.number.clone(), p.model.id))
        .collect();
    let wanted: Vec<String> = rows
        .iter()
        .filter_map(|r| r.value.extension.clone().flatten())
        .filter_map(|n| number_key(Some(&n)))
        .filter(|n| !in_file.contains_key(n))
        .collect();
    let stored_numbers = lookup::extensions_by_number(db, domain_id, &wanted).await?;

    let mut plans = Vec::with_capacity(rows.len());
    for (Numbered { row, value }, email) in rows.into_iter().zip(emails) {
        let UserRow {
            email: raw_email,
            display_name,
            password,
            roles: role_names,
            extension,
        } = value;
        let mut errors = FieldErrors::new();
        if raw_email.is_none() {
            errors.add("email", "required", "a User needs an email");
        } else if email.is_none()
            && let Some(raw) = &raw_email
        {
            errors.check("email", Email::parse(raw));
        }
        let name = match display_name.as_deref() {
            Some(n) => errors.check("display_name", DisplayName::parse(n)),
            None => None,
        };
        let wanted_roles = match role_names {
            None => None,
            Some(names) => {
                if names.is_empty() {
                    errors.add("roles", "required", "a user needs at least one role");
                }
                let keys: Vec<String> = names.iter().map(|n| role_key(n, &custom)).collect();
                Some(
                    roles::resolve_roles(
                        db,
                        RoleTarget::Domain(domain_id),
                        &keys,
                        "roles",
                        &mut errors,
                    )
                    .await?,
                )
            }
        };
        let existing = email.as_deref().and_then(|e| stored.get(e));
        let update = match existing {
            Some(user) if !members.contains(&user.id) => {
                errors.add(
                    "email",
                    "already_exists",
                    "a user with this email exists outside this Domain; give them a role here with PUT …/users/{id}/roles",
                );
                None
            }
            Some(_) if on_existing == OnExisting::Error => {
                errors.add(
                    "email",
                    "already_exists",
                    "a user with this email already exists (import with on_existing=update to change them)",
                );
                None
            }
            Some(user) => Some(user.clone()),
            None => None,
        };
        let plan = match update {
            Some(before) => {
                if password.is_some() {
                    errors.add(
                        "password",
                        "not_updatable",
                        "an import does not change an existing user's password; POST …/users/{id}/reset-password does",
                    );
                }
                let held = roles::held_roles(db, before.id, RoleTarget::Domain(domain_id)).await?;
                let mut model = before.clone();
                if let Some(name) = &name
                    && name.as_str() != model.display_name
                {
                    model.display_name = name.as_str().to_owned();
                    model.updated_at = now;
                    let (platform, domains) = access::user_permissions(db, before.id).await?;
                    if let Err(e) = authorize_account_control(&ctx.actor, platform, &domains) {
                        errors.add(
                            "display_name",
                            "forbidden",
                            format!("you may not rename this user ({e})"),
                        );
                    }
                }
                let roles = wanted_roles.unwrap_or_else(|| held.clone());
                let mut plan = UserPlan {
                    row,
                    before: Some(before),
                    model,
                    held,
                    roles,
                    password: None,
                    link_changed: false,
                };
                let moved = union_of(&plan.added()).union(union_of(&plan.removed()));
                if let Err(e) = authorize_grant(&ctx.actor, moved, Some(domain_id)) {
                    errors.add(
                        "roles",
                        "forbidden",
                        format!("you may not grant or take away these roles: {e}"),
                    );
                }
                if plan.roles.is_empty() {
                    // Only an explicitly empty list gets here, already reported.
                    plan.roles = plan.held.clone();
                }
                plan
            }
            None => {
                if display_name.is_none() {
                    errors.add(
                        "display_name",
                        "required",
                        "a new User needs a display name",
                    );
                }
                if wanted_roles.is_none() {
                    errors.add("roles", "required", "a new User needs at least one role");
                }
                let password = match &password {
                    Some(p) => errors
                        .check("password", NewPassword::parse(p, email.as_deref()))
                        .map(|p| p.secret().clone()),
                    None => None,
                };
                let roles = wanted_roles.unwrap_or_default();
                if let Err(e) = authorize_grant(&ctx.actor, union_of(&roles), Some(domain_id)) {
                    errors.add(
                        "roles",
                        "forbidden",
                        format!("you may not grant these roles: {e}"),
                    );
                }
                let status = if password.is_some() {
                    AccountStatus::Active
                } else {
                    AccountStatus::Invited
                };
                UserPlan {
                    row,
                    before: None,
                    model: users::Model {
                        id: Uuid::now_v7(),
                        email: email.clone().unwrap_or_default(),
                        display_name: name.map(|n| n.as_str().to_owned()).unwrap_or_default(),
                        status: status.as_str().to_owned(),
                        password_hash: None,
                        created_at: now,
                        updated_at: now,
                        last_login_at: None,
                        password_changed_at: password.as_ref().map(|_| now),
                    },
                    held: Vec::new(),
                    roles,
                    password,
                    link_changed: false,
                }
            }
        };
        let mut plan = plan;
        if errors.is_empty()
            && let Some(target) = extension
        {
            let current = plan
                .before
                .as_ref()
                .and_then(|b| linked.get(&b.id))
                .cloned();
            let context = Links {
                exts,
                in_file: &in_file,
                stored_numbers: &stored_numbers,
                now,
                on_existing,
            };
            plan.link_changed = context.relink(
                row,
                plan.model.id,
                current.as_ref(),
                target.as_deref(),
                &mut errors,
            );
        }
        report.extend(row, kind, errors);
        plans.push(plan);
    }
    Ok(plans)
}

/// What linking a User to an Extension works with.
struct Links<'a> {
    exts: &'a mut Vec<ExtensionPlan>,
    in_file: &'a HashMap<String, Uuid>,
    stored_numbers: &'a HashMap<String, extension_store::Model>,
    now: chrono::DateTime<chrono::Utc>,
    on_existing: OnExisting,
}

impl Links<'_> {
    /// The plan of the Extension `model`, added for a stored one no row names.
    fn plan_of(&mut self, model: &extension_store::Model) -> &mut ExtensionPlan {
        let at = match self.exts.iter().position(|p| p.model.id == model.id) {
            Some(at) => at,
            None => {
                self.exts.push(ExtensionPlan::linked(model, self.now));
                self.exts.len() - 1
            }
        };
        &mut self.exts[at]
    }

    /// Links `user` to the Extension numbered `target` (none: to no Extension), unlinking the
    /// one it had (`current`); returns whether the link changes. Problems go to `errors`
    /// under `extension`, and then nothing changes.
    fn relink(
        mut self,
        row: usize,
        user: Uuid,
        current: Option<&extension_store::Model>,
        target: Option<&str>,
        errors: &mut FieldErrors,
    ) -> bool {
        let Some(number) = target else {
            let Some(current) = current else {
                return false;
            };
            let plan = self.plan_of(current);
            plan.model.user_id = None;
            plan.linked_by = Some(row);
            return true;
        };
        let Some(number) = errors.check(
            "extension",
            crate::telephony::values::ExtensionNumber::parse(number),
        ) else {
            return false;
        };
        let number = number.into_string();
        let target_id = match self.in_file.get(&number) {
            Some(id) => *id,
            None => match self.stored_numbers.get(&number) {
                Some(m) => {
                    let id = m.id;
                    let m = m.clone();
                    self.plan_of(&m);
                    id
                }
                None => {
                    errors.add(
                        "extension",
                        "not_found",
                        format!("no Extension {number} in this Domain or in this file"),
                    );
                    return false;
                }
            },
        };
        if current.is_some_and(|c| c.id == target_id) {
            return false;
        }
        let Some((user_given, linked_user, placeholder)) = self
            .exts
            .iter()
            .find(|p| p.model.id == target_id)
            .map(|p| (p.user_given, p.model.user_id, p.model.placeholder))
        else {
            return false;
        };
        if user_given && linked_user != Some(user) {
            errors.add(
                "extension",
                "conflicting_fields",
                "the Extension's own row sets user_id; give the link in one place",
            );
        } else if placeholder {
            errors.add(
                "extension",
                "placeholder_has_no_user",
                "a placeholder Extension cannot be linked to a User",
            );
        } else if linked_user.is_some_and(|u| u != user) && self.on_existing == OnExisting::Error {
            errors.add(
                "extension",
                "already_linked",
                "the Extension is linked to another User (import with on_existing=update to link it to this one instead)",
            );
        }
        if !errors.is_empty() {
            return false;
        }
        if linked_user == Some(user) {
            return false;
        }
        if let Some(current) = current {
            let old = self.plan_of(current);
            old.model.user_id = None;
            old.linked_by = Some(row);
        }
        if let Some(plan) = self.exts.iter_mut().find(|p| p.model.id == target_id) {
            plan.model.user_id = Some(user);
            plan.linked_by = Some(row);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_name_roles_as_people_do() {
        let id = Uuid::from_u128(7).to_string();
        let custom = HashMap::from([("night shift".to_owned(), id.clone())]);
        assert_eq!(role_key(" manager ", &custom), "manager");
        assert_eq!(role_key("Night Shift", &custom), id);
        assert_eq!(role_key(&id, &custom), id);
        assert_eq!(role_key("nobody", &custom), "nobody");
    }

    fn user(held: &[BuiltinRole], wanted: &[BuiltinRole]) -> UserPlan {
        let views = |rs: &[BuiltinRole]| rs.iter().map(|r| RoleView::builtin(*r)).collect();
        let now = chrono::Utc::now();
        let model = users::Model {
            id: Uuid::nil(),
            email: "ada@example.com".into(),
            display_name: "Ada".into(),
            status: "active".into(),
            password_hash: None,
            created_at: now,
            updated_at: now,
            last_login_at: None,
            password_changed_at: None,
        };
        UserPlan {
            row: 2,
            before: Some(model.clone()),
            model,
            held: views(held),
            roles: views(wanted),
            password: None,
            link_changed: false,
        }
    }

    #[test]
    fn a_user_update_names_what_changes() {
        let same = user(&[BuiltinRole::Member], &[BuiltinRole::Member]);
        assert_eq!(same.action(), Action::Unchanged);
        let mut more = user(&[BuiltinRole::Member], &[BuiltinRole::Manager]);
        more.model.display_name = "Ada L.".into();
        more.link_changed = true;
        assert_eq!(more.changed(), vec!["display_name", "roles", "extension"]);
        assert_eq!(more.added()[0].key, "manager");
        assert_eq!(more.removed()[0].key, "member");
        assert_eq!(more.action(), Action::Updated);
    }
}
