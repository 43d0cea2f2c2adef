//! Writing a checked import: hash the PINs and passwords, generate the SIP identities, then
//! everything in one transaction (Users, groups, Extensions, Locations, Devices, every row's
//! audit entry and one `import.completed`), then publish.
//!
//! References decide the order: groups are written before the Extensions that join them, and a
//! group's placeholder that the import itself creates (a foreign key) is set once the
//! Extensions are written.
//!
//! A stored record is only updated if it is still as it was when the rows were checked (its
//! `updated_at` unchanged): otherwise the whole import is a 409 `concurrent_change` and nothing
//! is written. On PostgreSQL imports into one Domain take a transaction-scoped lock first, so
//! two of them never wait for each other crosswise; SQLite's write lock does the same.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;

use chrono::Duration;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter,
};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::extensions::{ExtensionPlan, PinChange};
use super::{Action, ImportReport, Plan, Progress, RowKind, Stage, lookup};
use crate::bindings::hotdesk::ChangeCause;
use crate::error::{DomainError, DomainResult};
use crate::events::{ChangeEvent, ChangeKind};
use crate::identity::password::hash_secret;
use crate::services::ending::{Ending, end_for_change};
use crate::services::extensions::{self as extension_rules, Deps};
use crate::services::users::{self as user_rules, PURPOSE_INVITATION, PasswordToken};
use crate::services::{
    Context, audit, auth, devices as device_rules, extension_groups as group_rules,
    locations as location_rules,
};
use crate::store::{
    audit_log, devices as device_store, domains, extension_groups, extensions as extension_store,
    location_extensions, locations, role_assignments, users,
};
use crate::telephony::secrets::{generate_sip_secret, generate_sip_username};

/// What writing an import produced.
#[derive(Debug)]
pub(super) struct Written {
    /// The id of the `import.completed` audit entry and event.
    pub import_id: Uuid,
    /// The set-password tokens of the invited Users, by row.
    pub tokens: HashMap<usize, PasswordToken>,
    /// How long hashing the PINs and passwords took.
    pub hashing: std::time::Duration,
}

/// Runs `jobs` with at most one per core at a time (argon2id is deliberately slow: tens of ms
/// and 19 MiB each, so an unbounded fan-out would only trade time for memory); the results come
/// back in the order of the jobs.
pub(super) async fn bounded<T, F>(
    jobs: Vec<F>,
    progress: Option<&dyn Progress>,
) -> DomainResult<Vec<T>>
where
    T: Send + 'static,
    F: Future<Output = DomainResult<T>> + Send + 'static,
{
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let mut results: Vec<Option<T>> = std::iter::repeat_with(|| None).take(jobs.len()).collect();
    let mut queue = jobs.into_iter().enumerate();
    let mut running = JoinSet::new();
    loop {
        while running.len() < workers {
            match queue.next() {
                Some((i, job)) => {
                    running.spawn(async move { (i, job.await) });
                }
                None => break,
            }
        }
        match running.join_next().await {
            Some(joined) => {
                let (i, result) =
                    joined.map_err(|e| DomainError::Internal(format!("hashing task: {e}")))?;
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(result?);
                }
                if let Some(p) = progress {
                    p.advance(1);
                }
            }
            None => break,
        }
    }
    Ok(results.into_iter().flatten().collect())
}

/// The 409 of a record that changed between the checks and the write.
fn changed_meanwhile(what: &str) -> DomainError {
    DomainError::Conflict {
        code: "concurrent_change",
        message: format!(
            "{what} changed while the import was being checked; nothing was imported, run it again"
        ),
        field: None,
    }
}

/// Writes `model` over the stored row that `condition` selects (its id, its Domain and the
/// `updated_at` the checks saw); none selected means someone changed it meanwhile.
async fn update_unchanged<E, C>(
    db: &C,
    model: E::Model,
    condition: Condition,
    what: &str,
) -> DomainResult<()>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    C: ConnectionTrait,
{
    let result = E::update_many()
        .set(model.into_active_model().reset_all())
        .filter(condition)
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Err(changed_meanwhile(what));
    }
    Ok(())
}

/// Hashes the new PINs and passwords on the blocking pool.
async fn hash_secrets(plan: &mut Plan, progress: &dyn Progress) -> DomainResult<()> {
    let mut pins = Vec::new();
    for (i, ext) in plan.extensions.iter_mut().enumerate() {
        match &ext.pin {
            PinChange::Set(pin) if !ext.pin_unchanged => pins.push((i, pin.clone())),
            PinChange::Remove => ext.model.pin_hash = None,
            _ => {}
        }
    }
    let passwords: Vec<(usize, secrecy::SecretString)> = plan
        .users
        .iter()
        .enumerate()
        .filter_map(|(i, u)| u.password.clone().map(|p| (i, p)))
        .collect();
    let total = pins.len() + passwords.len();
    if total == 0 {
        return Ok(());
    }
    progress.start(Stage::Hashing, total as u64);
    let (pin_at, pin_jobs): (Vec<usize>, Vec<_>) =
        pins.into_iter().map(|(i, p)| (i, hash_secret(p))).unzip();
    let (user_at, user_jobs): (Vec<usize>, Vec<_>) = passwords
        .into_iter()
        .map(|(i, p)| (i, hash_secret(p)))
        .unzip();
    let mut hashes = bounded(
        pin_jobs.into_iter().chain(user_jobs).collect(),
        Some(progress),
    )
    .await?
    .into_iter();
    for i in pin_at {
        if let (Some(ext), Some(hash)) = (plan.extensions.get_mut(i), hashes.next()) {
            ext.model.pin_hash = Some(hash);
        }
    }
    for i in user_at {
        if let (Some(user), Some(hash)) = (plan.users.get_mut(i), hashes.next()) {
            user.model.password_hash = Some(hash);
        }
    }
    Ok(())
}

/// Devices that join a Location without a position go to its end, in file order (as a single
/// create or move puts them).
async fn assign_positions<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    plan: &mut Plan,
) -> DomainResult<()> {
    let mut next: HashMap<Uuid, i32> = HashMap::new();
    for dev in plan.devices.iter_mut().filter(|d| d.needs_position()) {
        let Some(location) = dev.model.location_id else {
            continue;
        };
        let position = match next.get(&location) {
            Some(p) => *p,
            None => device_rules::end_of_location(db, domain_id, location).await?,
        };
        dev.model.location_position = position;
        next.insert(
            location,
            Ord::min(
                position.saturating_add(1),
                device_rules::MAX_LOCATION_POSITION,
            ),
        );
    }
    Ok(())
}

/// Gives every new Device a generated SIP user name, unique in the file and in the Domain (a
/// clash of two random names is improbable, but cheap to rule out), and a generated secret.
async fn assign_sip_identities<C: ConnectionTrait>(
    db: &C,
    deps: Deps<'_>,
    domain_id: Uuid,
    plan: &mut Plan,
) -> DomainResult<()> {
    let mut todo: Vec<usize> = plan
        .devices
        .iter()
        .enumerate()
        .filter(|(_, d)| d.before.is_none())
        .map(|(i, _)| i)
        .collect();
    let mut seen: HashSet<String> = HashSet::with_capacity(todo.len());
    for &i in &todo {
        if let Some(dev) = plan.devices.get_mut(i) {
            dev.model.sip_secret_encrypted = deps.cipher.encrypt(
                generate_sip_secret().expose_secret(),
                &device_rules::secret_context(dev.model.id),
            );
            dev.model.provisioning_password_encrypted = Some(
                crate::services::provisioning::new_password(deps.cipher, dev.model.id),
            );
        }
    }
    while !todo.is_empty() {
        for &i in &todo {
            if let Some(dev) = plan.devices.get_mut(i) {
                let mut name = generate_sip_username();
                while !seen.insert(name.clone()) {
                    name = generate_sip_username();
                }
                dev.model.sip_username = name;
            }
        }
        let names: Vec<String> = todo
            .iter()
            .filter_map(|&i| plan.devices.get(i).map(|d| d.model.sip_username.clone()))
            .collect();
        let taken = lookup::taken_sip_usernames(db, domain_id, &names).await?;
        todo.retain(|&i| {
            plan.devices
                .get(i)
                .is_some_and(|d| taken.contains(&d.model.sip_username))
        });
    }
    Ok(())
}

/// What FreeSWITCH must be told once the import committed.
#[derive(Debug, Default)]
struct Effects {
    /// SIP users to re-read.
    refresh: BTreeSet<String>,
    /// SIP users whose registrations are dropped.
    drop: BTreeSet<String>,
    /// Registered phones asked to re-read their configuration.
    sync: BTreeSet<String>,
    /// The events of the hot-desk sessions and sign-ins the changes ended.
    ended: Vec<ChangeEvent>,
}

/// Adds `import_id` to an audit view.
fn with_import(view: Option<Value>, import_id: Uuid) -> Option<Value> {
    view.map(|mut v| {
        if let Some(map) = v.as_object_mut() {
            map.insert("import_id".into(), json!(import_id));
        }
        v
    })
}

/// The keys of some roles, as the audit log shows them.
fn role_keys(roles: &[crate::services::roles::RoleView]) -> Vec<String> {
    roles.iter().map(|r| r.key.clone()).collect()
}

/// Writes everything that changes, audits it and publishes one event. Rows left unchanged are
/// not written.
pub(super) async fn write(
    deps: Deps<'_>,
    ctx: &Context,
    domain: &domains::Model,
    mut plan: Plan,
    report: &ImportReport,
    token_ttl: Duration,
    progress: &dyn Progress,
) -> DomainResult<Written> {
    let domain_id = domain.id;
    plan.extensions.retain(|p| p.action() != Action::Unchanged);
    plan.users.retain(|p| p.action() != Action::Unchanged);
    plan.locations.retain(|p| p.action() != Action::Unchanged);
    plan.devices.retain(|p| p.action() != Action::Unchanged);
    plan.groups.retain(|p| p.action() != Action::Unchanged);

    let hashing = std::time::Instant::now();
    hash_secrets(&mut plan, progress).await?;
    let hashing = hashing.elapsed();
    // A first secret: nothing can be registered with it yet, so no registration is dropped.
    for ext in &mut plan.extensions {
        if ext.model.sip_registration_enabled && ext.model.sip_secret_encrypted.is_none() {
            ext.model.sip_secret_encrypted = Some(deps.cipher.encrypt(
                generate_sip_secret().expose_secret(),
                &extension_rules::secret_context(ext.model.id),
            ));
        }
    }
    let reads = lookup::lookups(deps.db).await?;
    assign_positions(&reads, domain_id, &mut plan).await?;
    assign_sip_identities(&reads, deps, domain_id, &mut plan).await?;
    // The numbers of the stored owners the import does not change, for the owners' dial
    // strings (they include their fixed devices).
    let planned: HashSet<Uuid> = plan.extensions.iter().map(|p| p.model.id).collect();
    let owner_ids: Vec<Uuid> = plan
        .devices
        .iter()
        .flat_map(|d| {
            [
                d.model.owner_extension_id,
                d.before.as_ref().and_then(|b| b.owner_extension_id),
            ]
        })
        .flatten()
        .filter(|id| !planned.contains(id))
        .collect();
    let owners = lookup::extensions_by_id(&reads, domain_id, &owner_ids).await?;
    reads.rollback().await?;

    let import_id = Uuid::now_v7();
    let steps = plan.extensions.len()
        + plan.devices.len()
        + plan.users.len()
        + plan.locations.len()
        + plan.groups.len();
    progress.start(Stage::Inserting, steps as u64);
    let txn = crate::db::begin_write(deps.db).await?;
    let written = async {
        crate::db::lock_keys(&txn, &[format!("import:{domain_id}")]).await?;
        let mut writer = Writer {
            txn: &txn,
            ctx,
            domain,
            import_id,
            progress,
            audits: Vec::new(),
            effects: Effects::default(),
        };
        let tokens = writer.users(&plan, token_ttl).await?;
        writer.groups(&plan).await?;
        writer.extensions(&plan).await?;
        writer.group_placeholders(&plan).await?;
        writer.locations(&plan).await?;
        writer.devices(&plan, &owners).await?;
        writer.group_effects(&plan).await?;
        let Writer {
            audits, effects, ..
        } = writer;
        lookup::insert_all::<audit_log::Entity, _>(&txn, &audits).await?;
        audit::record(
            &txn,
            ctx,
            audit::Entry {
                domain_id: Some(domain_id),
                action: "import.completed",
                target_kind: "import",
                target_id: Some(import_id.to_string()),
                before: None,
                after: Some(summary(report, &plan)),
            },
        )
        .await?;
        Ok::<_, DomainError>((tokens, effects))
    }
    .await;
    let (tokens, effects) = match written {
        Ok(done) => done,
        Err(e) => return Err(settle(e)),
    };
    txn.commit().await.map_err(|e| settle(e.into()))?;

    let drop: Vec<String> = effects.drop.iter().cloned().collect();
    let sync: Vec<String> = effects.sync.difference(&effects.drop).cloned().collect();
    let mut refresh = effects.refresh;
    refresh.extend(drop.iter().cloned());
    refresh.extend(sync.iter().cloned());
    let mut event = ChangeEvent::new(
        domain_id,
        &domain.sip_domain,
        ChangeKind::ImportCompleted,
        import_id,
        ctx.now,
    );
    event.sip_users = refresh.into_iter().collect();
    event.drop_registrations = drop;
    event.check_sync = sync;
    deps.bus.publish(effects.ended.into_iter().chain([event]));
    Ok(Written {
        import_id,
        tokens,
        hashing,
    })
}

/// A deadlock or serialization failure between concurrent writers is the same conflict as a
/// record changed meanwhile: nothing was written, running it again settles it.
fn settle(e: DomainError) -> DomainError {
    let crossed = |db: &sea_orm::DbErr| match db {
        sea_orm::DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e))
        | sea_orm::DbErr::Query(sea_orm::RuntimeErr::SqlxError(e)) => matches!(
            e.as_database_error().and_then(|d| d.code()).as_deref(),
            // PostgreSQL: deadlock detected, serialization failure.
            Some("40P01" | "40001")
        ),
        _ => false,
    };
    match e {
        DomainError::Database(db) if crossed(&db) => changed_meanwhile("a record"),
        other => other,
    }
}

/// The counts of the `import.completed` entry.
fn summary(report: &ImportReport, plan: &Plan) -> Value {
    let by_kind = |pick: fn(&super::ActionCounts) -> usize| {
        let mut m = serde_json::Map::new();
        for kind in RowKind::ALL {
            let name = format!("{}s", kind.as_str());
            m.insert(name, json!(pick(&report.counts(Some(kind)))));
        }
        Value::Object(m)
    };
    let new_pins = plan
        .extensions
        .iter()
        .filter(|e| e.pin_changes() && e.model.pin_hash.is_some())
        .count();
    json!({
        "rows": report.rows,
        "on_existing": report.on_existing.as_str(),
        "created": by_kind(|c| c.created),
        "updated": by_kind(|c| c.updated),
        "unchanged": by_kind(|c| c.unchanged),
        "extensions_with_new_pin": new_pins,
    })
}

/// Writes the plan inside the import's transaction, collecting the audit entries (written in
/// batches at the end) and what FreeSWITCH must be told.
struct Writer<'a> {
    txn: &'a DatabaseTransaction,
    ctx: &'a Context,
    domain: &'a domains::Model,
    import_id: Uuid,
    progress: &'a dyn Progress,
    audits: Vec<audit_log::Model>,
    effects: Effects,
}

impl Writer<'_> {
    /// Records an audit entry about a record of the Domain, tied to the import.
    fn audit(
        &mut self,
        action: &str,
        target_kind: &str,
        target: Uuid,
        before: Option<Value>,
        after: Option<Value>,
    ) {
        self.audits.push(audit::row(
            self.ctx,
            audit::Entry {
                domain_id: Some(self.domain.id),
                action,
                target_kind,
                target_id: Some(target.to_string()),
                before,
                after: with_import(after, self.import_id),
            },
        ));
    }

    /// New Users with their roles (invited ones get a set-password token), renamed members and
    /// changed role sets.
    async fn users(
        &mut self,
        plan: &Plan,
        token_ttl: Duration,
    ) -> DomainResult<HashMap<usize, PasswordToken>> {
        let (txn, ctx, domain_id) = (self.txn, self.ctx, self.domain.id);
        let mut tokens = HashMap::new();
        if plan.users.is_empty() {
            return Ok(tokens);
        }
        let created: Vec<users::Model> = plan
            .users
            .iter()
            .filter(|u| u.before.is_none())
            .map(|u| u.model.clone())
            .collect();
        lookup::insert_all::<users::Entity, _>(txn, &created).await?;
        let scope_key = domain_id.to_string();
        let mut assignments = Vec::new();
        for user in &plan.users {
            let removed = user.removed();
            if user.before.is_some() && !removed.is_empty() {
                let keys = role_keys(&removed);
                let gone = role_assignments::Entity::delete_many()
                    .filter(role_assignments::Column::UserId.eq(user.model.id))
                    .filter(role_assignments::Column::ScopeKey.eq(scope_key.clone()))
                    .filter(role_assignments::Column::RoleKey.is_in(keys))
                    .exec(txn)
                    .await?;
                if gone.rows_affected != removed.len() as u64 {
                    return Err(changed_meanwhile(&format!(
                        "the roles of {}",
                        user.model.email
                    )));
                }
            }
            assignments.extend(
                user.added()
                    .iter()
                    .map(|r| user_rules::assignment_row(ctx, user.model.id, Some(domain_id), r)),
            );
        }
        lookup::insert_all::<role_assignments::Entity, _>(txn, &assignments).await?;

        for user in &plan.users {
            let id = user.model.id;
            match &user.before {
                None => {
                    if user.invited() {
                        let (token, expires_at) = auth::issue_password_token(
                            txn,
                            id,
                            PURPOSE_INVITATION,
                            token_ttl,
                            ctx.now,
                        )
                        .await?;
                        tokens.insert(user.row, PasswordToken { token, expires_at });
                    }
                    let mut after = user_rules::snapshot(&user.model);
                    after["roles"] = json!(role_keys(&user.roles));
                    self.audit(
                        if user.invited() {
                            "user.invite"
                        } else {
                            "user.create"
                        },
                        "user",
                        id,
                        None,
                        Some(after),
                    );
                }
                Some(before) => {
                    if user.renamed() {
                        update_unchanged::<users::Entity, _>(
                            txn,
                            user.model.clone(),
                            Condition::all()
                                .add(users::Column::Id.eq(id))
                                .add(users::Column::UpdatedAt.eq(before.updated_at)),
                            &format!("the user {}", before.email),
                        )
                        .await?;
                        self.audit(
                            "user.update",
                            "user",
                            id,
                            Some(user_rules::snapshot(before)),
                            Some(user_rules::snapshot(&user.model)),
                        );
                    }
                    if !user.added().is_empty() || !user.removed().is_empty() {
                        self.audit(
                            "user.roles_replace",
                            "user",
                            id,
                            Some(json!({"roles": role_keys(&user.held)})),
                            Some(json!({"roles": role_keys(&user.roles)})),
                        );
                    }
                }
            }
        }
        Ok(tokens)
    }

    /// New Extensions in batches, changed ones one by one (if unchanged since the checks).
    async fn extensions(&mut self, plan: &Plan) -> DomainResult<()> {
        let (txn, ctx, domain) = (self.txn, self.ctx, self.domain);
        let (domain_id, progress) = (domain.id, self.progress);
        // Links that move are cleared first, so that "one Extension per User" holds after every
        // statement, whatever the order of the rows.
        for p in &plan.extensions {
            if let Some(before) = &p.before
                && before.user_id.is_some()
                && before.user_id != p.model.user_id
            {
                extension_store::Entity::update_many()
                    .col_expr(
                        extension_store::Column::UserId,
                        Expr::value(Option::<Uuid>::None),
                    )
                    .filter(extension_store::Column::Id.eq(p.model.id))
                    .filter(extension_store::Column::DomainId.eq(domain_id))
                    .exec(txn)
                    .await?;
            }
        }
        let created: Vec<extension_store::Model> = plan
            .extensions
            .iter()
            .filter(|p| p.before.is_none())
            .map(|p| p.model.clone())
            .collect();
        lookup::insert_chunked::<extension_store::Entity, _>(txn, &created, progress).await?;
        for m in &created {
            self.effects.refresh.insert(m.number.clone());
            self.audit(
                "extension.create",
                "extension",
                m.id,
                None,
                serde_json::to_value(m).ok(),
            );
        }
        for p in &plan.extensions {
            let Some(before) = &p.before else {
                continue;
            };
            if let Some(cause) = extension_cause(p) {
                let ids = [p.model.id];
                let ending = Ending {
                    extensions: &ids,
                    // Not being allowed to hot-desk still lets it sign in to Locations.
                    signed_in: if cause == ChangeCause::HotdeskNotAllowed {
                        &[]
                    } else {
                        &ids
                    },
                    ..Ending::default()
                };
                self.effects.ended.extend(
                    end_for_change(txn, ctx, domain_id, &domain.sip_domain, ending, cause).await?,
                );
            }
            update_unchanged::<extension_store::Entity, _>(
                txn,
                p.model.clone(),
                Condition::all()
                    .add(extension_store::Column::Id.eq(p.model.id))
                    .add(extension_store::Column::DomainId.eq(domain_id))
                    .add(extension_store::Column::UpdatedAt.eq(before.updated_at)),
                &format!("the Extension {}", before.number),
            )
            .await?;
            progress.advance(1);
            self.audit(
                "extension.update",
                "extension",
                p.model.id,
                serde_json::to_value(before).ok(),
                serde_json::to_value(&p.model).ok(),
            );
            self.effects
                .refresh
                .extend(extension_rules::dependent_sip_users(txn, &p.model).await?);
            // The phones that show its name re-read their configuration (not for any other
            // setting: a re-sync may restart a phone).
            if before.display_name != p.model.display_name {
                self.effects
                    .sync
                    .extend(lookup::devices_showing(txn, domain_id, p.model.id).await?);
            }
            if before.sip_registration_enabled
                && (!p.model.sip_registration_enabled || !p.model.enabled)
            {
                self.effects.drop.insert(before.number.clone());
            }
        }
        Ok(())
    }

    /// New groups in batches, changed ones one by one (if unchanged since the checks). A
    /// placeholder that the import creates is left out here: the Extension is not written yet,
    /// and [`Self::group_placeholders`] sets it once it is.
    async fn groups(&mut self, plan: &Plan) -> DomainResult<()> {
        let (txn, domain_id, progress) = (self.txn, self.domain.id, self.progress);
        if plan.groups.is_empty() {
            return Ok(());
        }
        let new_extensions = created_extensions(plan);
        let for_now = |model: &extension_groups::Model| {
            let mut model = model.clone();
            if model
                .placeholder_extension_id
                .is_some_and(|id| new_extensions.contains(&id))
            {
                model.placeholder_extension_id = None;
            }
            model
        };
        let created: Vec<extension_groups::Model> = plan
            .groups
            .iter()
            .filter(|p| p.before.is_none())
            .map(|p| for_now(&p.model))
            .collect();
        lookup::insert_chunked::<extension_groups::Entity, _>(txn, &created, progress).await?;
        for p in &plan.groups {
            let id = p.model.id;
            match &p.before {
                None => self.audit(
                    "extension_group.create",
                    "extension_group",
                    id,
                    None,
                    serde_json::to_value(&p.model).ok(),
                ),
                Some(before) => {
                    update_unchanged::<extension_groups::Entity, _>(
                        txn,
                        for_now(&p.model),
                        Condition::all()
                            .add(extension_groups::Column::Id.eq(id))
                            .add(extension_groups::Column::DomainId.eq(domain_id))
                            .add(extension_groups::Column::UpdatedAt.eq(before.updated_at)),
                        &format!("the group {}", before.name),
                    )
                    .await?;
                    progress.advance(1);
                    self.audit(
                        "extension_group.update",
                        "extension_group",
                        id,
                        serde_json::to_value(before).ok(),
                        serde_json::to_value(&p.model).ok(),
                    );
                }
            }
        }
        Ok(())
    }

    /// Sets the groups' placeholders that are Extensions the import created, now written.
    async fn group_placeholders(&mut self, plan: &Plan) -> DomainResult<()> {
        let (txn, domain_id) = (self.txn, self.domain.id);
        let new_extensions = created_extensions(plan);
        for p in &plan.groups {
            if let Some(placeholder) = p.model.placeholder_extension_id
                && new_extensions.contains(&placeholder)
            {
                extension_groups::Entity::update_many()
                    .col_expr(
                        extension_groups::Column::PlaceholderExtensionId,
                        Expr::value(Some(placeholder)),
                    )
                    .filter(extension_groups::Column::Id.eq(p.model.id))
                    .filter(extension_groups::Column::DomainId.eq(domain_id))
                    .exec(txn)
                    .await?;
            }
        }
        Ok(())
    }

    /// As a single change of a group tells them: when a group is new or its logout action
    /// changes, every hot-desk phone of the Domain (its logged-out identity may follow the
    /// group) and the placeholders, old and new, re-read.
    async fn group_effects(&mut self, plan: &Plan) -> DomainResult<()> {
        let changed: Vec<_> = plan
            .groups
            .iter()
            .filter(|p| p.logout_action_changes())
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let placeholders: BTreeSet<Uuid> = changed
            .iter()
            .flat_map(|p| {
                [
                    p.model.placeholder_extension_id,
                    p.before.as_ref().and_then(|b| b.placeholder_extension_id),
                ]
            })
            .flatten()
            .collect();
        let placeholders: Vec<Option<Uuid>> = placeholders.into_iter().map(Some).collect();
        self.effects
            .refresh
            .extend(group_rules::affected(self.txn, self.domain.id, &placeholders).await?);
        Ok(())
    }

    /// New Locations in batches, changed ones one by one, and their listed Extensions.
    async fn locations(&mut self, plan: &Plan) -> DomainResult<()> {
        let (txn, domain_id) = (self.txn, self.domain.id);
        if plan.locations.is_empty() {
            return Ok(());
        }
        let created: Vec<locations::Model> = plan
            .locations
            .iter()
            .filter(|p| p.before.is_none())
            .map(|p| p.model.clone())
            .collect();
        lookup::insert_all::<locations::Entity, _>(txn, &created).await?;
        let mut listings = Vec::new();
        for p in &plan.locations {
            let id = p.model.id;
            if let Some(before) = &p.before {
                update_unchanged::<locations::Entity, _>(
                    txn,
                    p.model.clone(),
                    Condition::all()
                        .add(locations::Column::Id.eq(id))
                        .add(locations::Column::DomainId.eq(domain_id))
                        .add(locations::Column::UpdatedAt.eq(before.updated_at)),
                    &format!("the Location {}", before.name),
                )
                .await?;
                if p.listing_changes() {
                    location_extensions::Entity::delete_many()
                        .filter(location_extensions::Column::DomainId.eq(domain_id))
                        .filter(location_extensions::Column::LocationId.eq(id))
                        .exec(txn)
                        .await?;
                }
            }
            if p.before.is_none() || p.listing_changes() {
                listings.extend(p.allowed.iter().map(|ext| location_extensions::Model {
                    domain_id,
                    location_id: id,
                    extension_id: *ext,
                }));
            }
            self.audit(
                if p.before.is_some() {
                    "location.update"
                } else {
                    "location.create"
                },
                "location",
                id,
                p.before
                    .as_ref()
                    .and_then(|b| location_rules::audit_view(b, &p.before_allowed)),
                location_rules::audit_view(&p.model, &p.allowed),
            );
        }
        lookup::insert_all::<location_extensions::Entity, _>(txn, &listings).await?;
        // Their devices' emergency identity and ring order follow the Location.
        let ids: Vec<Uuid> = plan.locations.iter().map(|p| p.model.id).collect();
        self.effects
            .refresh
            .extend(lookup::devices_in_locations(txn, domain_id, &ids).await?);
        Ok(())
    }

    /// New Devices in batches, changed ones one by one (ending the sessions a change ends).
    async fn devices(
        &mut self,
        plan: &Plan,
        owners: &HashMap<Uuid, extension_store::Model>,
    ) -> DomainResult<()> {
        let (txn, ctx, domain) = (self.txn, self.ctx, self.domain);
        let (domain_id, progress) = (domain.id, self.progress);
        let number_of = |id: Option<Uuid>| -> Option<String> {
            let id = id?;
            plan.extensions
                .iter()
                .find(|p| p.model.id == id)
                .map(|p| p.model.number.clone())
                .or_else(|| owners.get(&id).map(|m| m.number.clone()))
        };
        let created: Vec<device_store::Model> = plan
            .devices
            .iter()
            .filter(|p| p.before.is_none())
            .map(|p| p.model.clone())
            .collect();
        lookup::insert_chunked::<device_store::Entity, _>(txn, &created, progress).await?;
        // In-file owners are found among the planned Extensions; index them once for large files.
        let planned_numbers: HashMap<Uuid, &str> = plan
            .extensions
            .iter()
            .map(|p| (p.model.id, p.model.number.as_str()))
            .collect();
        for m in &created {
            self.effects.refresh.insert(m.sip_username.clone());
            if let Some(owner) = m.owner_extension_id {
                match planned_numbers.get(&owner) {
                    Some(n) => {
                        self.effects.refresh.insert((*n).to_owned());
                    }
                    None => self
                        .effects
                        .refresh
                        .extend(owners.get(&owner).map(|o| o.number.clone())),
                }
            }
            self.audit(
                "device.create",
                "device",
                m.id,
                None,
                device_rules::audit_view(m),
            );
        }
        for p in &plan.devices {
            let Some(before) = &p.before else {
                continue;
            };
            let saved = &p.model;
            // Sessions on a device made fixed or disabled end with the change (and stay ended).
            let cause = if before.enabled && !saved.enabled {
                Some(ChangeCause::DeviceDisabled)
            } else if before.mode != "fixed" && saved.mode == "fixed" {
                Some(ChangeCause::DeviceFixed)
            } else {
                None
            };
            if let Some(cause) = cause {
                let ending = Ending {
                    devices: &[saved.id],
                    ..Ending::default()
                };
                self.effects.ended.extend(
                    end_for_change(txn, ctx, domain_id, &domain.sip_domain, ending, cause).await?,
                );
            }
            update_unchanged::<device_store::Entity, _>(
                txn,
                saved.clone(),
                Condition::all()
                    .add(device_store::Column::Id.eq(saved.id))
                    .add(device_store::Column::DomainId.eq(domain_id))
                    .add(device_store::Column::UpdatedAt.eq(before.updated_at)),
                &format!("the Device {}", before.label),
            )
            .await?;
            progress.advance(1);
            self.audit(
                "device.update",
                "device",
                saved.id,
                device_rules::audit_view(before),
                device_rules::audit_view(saved),
            );
            // The owners' dial strings include their fixed devices: both old and new owner change.
            self.effects.refresh.insert(saved.sip_username.clone());
            self.effects
                .refresh
                .extend(number_of(saved.owner_extension_id));
            self.effects
                .refresh
                .extend(number_of(before.owner_extension_id));
            if before.enabled && !saved.enabled {
                self.effects.drop.insert(saved.sip_username.clone());
            } else if saved.enabled
                && (before.label != saved.label
                    || before.mode != saved.mode
                    || before.owner_extension_id != saved.owner_extension_id
                    || before.placeholder_extension_id != saved.placeholder_extension_id)
            {
                // Another name or identity on the same registration: the phone re-reads its config.
                self.effects.sync.insert(saved.sip_username.clone());
            }
        }
        Ok(())
    }
}

/// The Extensions the import creates.
fn created_extensions(plan: &Plan) -> HashSet<Uuid> {
    plan.extensions
        .iter()
        .filter(|p| p.before.is_none())
        .map(|p| p.model.id)
        .collect()
}

/// Why the change to an Extension ends its hot-desk sessions and sign-ins, as a single update.
fn extension_cause(plan: &ExtensionPlan) -> Option<ChangeCause> {
    let b = plan.before.as_ref()?;
    let row = &plan.model;
    if b.enabled && !row.enabled {
        Some(ChangeCause::ExtensionDisabled)
    } else if !b.placeholder && row.placeholder {
        Some(ChangeCause::ExtensionMadePlaceholder)
    } else if b.hotdesk_allowed && !row.hotdesk_allowed {
        Some(ChangeCause::HotdeskNotAllowed)
    } else {
        None
    }
}
