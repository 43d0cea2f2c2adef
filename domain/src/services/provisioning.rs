//! Phone provisioning: tenant templates, Model Layouts, what groups may choose, the Domain's
//! provisioning settings, the Devices' provisioning credentials and what a phone would get.
//!
//! Use cases: load → validate → save in one transaction with its audit entry → publish after
//! commit. Every change that alters what a phone shows names those phones in the event's
//! `check_sync` (they fetch their files again): the plans of the Domain's phones are computed
//! before and after the change inside the transaction and compared, so a layout, template,
//! group or settings change reaches exactly the phones it touches. Templates are checked when
//! saved by rendering them for a sample phone; a template that does not render is a 422 naming
//! its line.
//!
//! Reading needs `devices.read`, changing layouts and templates `devices.write`, the Domain's
//! settings `settings.write`, a Device's provisioning password `secrets.read` (audited).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::{Context, audit, scope, snapshot};
use crate::bindings::snapshot::Bindings;
use crate::error::{DomainError, DomainResult, FieldErrors};
use crate::events::{ChangeEvent, ChangeKind, EventBus};
use crate::identity::permissions::Permission;
use crate::provisioning::keys::{
    Catalogue, KeySpec, LayoutFacts, LoginChoice, TemplateFacts, allowed_layouts,
    allowed_templates, check_keys, watched,
};
use crate::provisioning::models::{PhoneModel, Vendor, find as find_model};
use crate::provisioning::phones::{self, DomainRows, DomainSide, Phone, Platform, Secrets};
use crate::provisioning::render::{Renderer, Template};
use crate::store::{
    devices, domains, extension_group_layouts, extension_group_templates, extension_groups,
    extensions, hotdesk_sessions, model_layouts, provisioning_settings, provisioning_templates,
};
use crate::telephony::secrets::{SecretCipher, generate_sip_secret};

/// The built-in templates, parsed once.
pub static RENDERER: LazyLock<Renderer> = LazyLock::new(Renderer::new);

/// Longest template body (bytes).
pub const MAX_BODY: usize = 64 * 1024;

/// The cipher context of a Device's provisioning password.
pub fn password_context(device_id: Uuid) -> String {
    format!("device-provisioning:{device_id}")
}

/// The cipher context of a Domain's first-boot password.
pub fn first_boot_context(domain_id: Uuid) -> String {
    format!("domain-provisioning:{domain_id}")
}

/// A new provisioning password for a Device, encrypted.
pub fn new_password(cipher: &SecretCipher, device_id: Uuid) -> String {
    cipher.encrypt(
        generate_sip_secret().expose_secret(),
        &password_context(device_id),
    )
}

fn name_errors(errors: &mut FieldErrors, name: &mut String) {
    *name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        errors.add("name", "invalid", "a name is 1 to 100 printable characters");
    }
}

// ---------------------------------------------------------------- reading a Domain's rows

async fn load_catalogue<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
) -> DomainResult<(Catalogue, BTreeMap<Uuid, String>)> {
    let (layouts, templates, group_ids) = tokio::try_join!(
        model_layouts::Entity::find()
            .filter(model_layouts::Column::DomainId.eq(domain_id))
            .order_by_asc(model_layouts::Column::Name)
            .all(db),
        provisioning_templates::Entity::find()
            .filter(provisioning_templates::Column::DomainId.eq(domain_id))
            .order_by_asc(provisioning_templates::Column::Name)
            .all(db),
        extension_groups::Entity::find()
            .filter(extension_groups::Column::DomainId.eq(domain_id))
            .all(db),
    )?;
    let group_ids: Vec<Uuid> = group_ids.iter().map(|g| g.id).collect();
    let (gl, gt) = tokio::try_join!(
        extension_group_layouts::Entity::find()
            .filter(extension_group_layouts::Column::GroupId.is_in(group_ids.clone()))
            .all(db),
        extension_group_templates::Entity::find()
            .filter(extension_group_templates::Column::GroupId.is_in(group_ids))
            .all(db),
    )?;
    let mut cat = Catalogue {
        layouts: layouts.iter().map(layout_facts).collect(),
        templates: templates
            .iter()
            .filter_map(|t| {
                Some(TemplateFacts {
                    id: t.id,
                    name: t.name.clone(),
                    vendor: Vendor::parse(&t.vendor)?,
                })
            })
            .collect(),
        ..Catalogue::default()
    };
    for g in gl {
        cat.group_layouts
            .entry(g.group_id)
            .or_default()
            .insert(g.layout_id);
    }
    for g in gt {
        cat.group_templates
            .entry(g.group_id)
            .or_default()
            .insert(g.template_id);
    }
    let bodies = templates.into_iter().map(|t| (t.id, t.body)).collect();
    Ok((cat, bodies))
}

fn layout_facts(l: &model_layouts::Model) -> LayoutFacts {
    LayoutFacts {
        id: l.id,
        name: l.name.clone(),
        model: l.model.clone(),
        keys: serde_json::from_str(&l.keys).unwrap_or_default(),
        logged_out: l.logged_out,
    }
}

/// Reads what a Domain's phones are compiled from; `None` when the Domain does not exist.
pub async fn load_rows<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
) -> DomainResult<Option<(DomainRows, domains::Model)>> {
    let Some(rows) = snapshot::load_rows(db, domain_id).await? else {
        return Ok(None);
    };
    let domain = rows.domain.clone();
    let devices = rows.devices.clone();
    let bindings = Bindings::from_rows(rows);
    let (catalogue, bodies) = load_catalogue(db, domain_id).await?;
    let (sessions, settings) = tokio::try_join!(
        hotdesk_sessions::Entity::find()
            .filter(hotdesk_sessions::Column::DomainId.eq(domain_id))
            .filter(hotdesk_sessions::Column::EndedAt.is_null())
            .all(db),
        provisioning_settings::Entity::find_by_id(domain_id).one(db),
    )?;
    let choices = sessions
        .iter()
        .filter(|s| s.layout_id.is_some() || s.template_id.is_some())
        .map(|s| {
            (
                s.device_id,
                LoginChoice {
                    layout_id: s.layout_id,
                    template_id: s.template_id,
                },
            )
        })
        .collect();
    let side = settings
        .as_ref()
        .map(|s| DomainSide {
            language: s.language.clone(),
            ntp_server: s.ntp_server.clone(),
        })
        .unwrap_or_else(|| DomainSide {
            language: "en".into(),
            ntp_server: None,
        });
    Ok(Some((
        DomainRows {
            bindings,
            devices,
            catalogue,
            bodies,
            choices,
            side,
        },
        domain,
    )))
}

/// The first-boot credential of a Domain.
#[derive(Debug, Clone)]
pub struct FirstBoot {
    /// User name.
    pub username: String,
    /// Password.
    pub password: SecretString,
    /// Source networks it is accepted from.
    pub networks: Vec<IpNet>,
}

/// One Domain's phones, compiled for the provisioning endpoint.
#[derive(Debug, Clone)]
pub struct CompiledPhones {
    /// The Domain.
    pub domain_id: Uuid,
    /// Its SIP domain.
    pub sip_domain: String,
    /// Phones by MAC.
    pub phones: HashMap<String, Phone>,
    /// The first-boot credential, if the Domain has one.
    pub first_boot: Option<FirstBoot>,
}

/// Loads and compiles a Domain's phones (secrets decrypted); `None` for a missing or disabled
/// Domain.
pub async fn compile(
    db: &DatabaseConnection,
    cipher: &SecretCipher,
    platform: &Platform,
    domain_id: Uuid,
    now: DateTime<Utc>,
) -> DomainResult<Option<CompiledPhones>> {
    let Some((rows, domain)) = load_rows(db, domain_id).await? else {
        return Ok(None);
    };
    if !domain.enabled {
        return Ok(None);
    }
    let mut secrets = HashMap::new();
    for d in &rows.devices {
        if d.mac_address.is_none() {
            continue;
        }
        let Ok(sip) = cipher.decrypt(
            &d.sip_secret_encrypted,
            &super::devices::secret_context(d.id),
        ) else {
            tracing::error!(device = %d.id, "cannot decrypt the SIP secret: not provisioned");
            continue;
        };
        let provisioning = d
            .provisioning_password_encrypted
            .as_deref()
            .and_then(|p| cipher.decrypt(p, &password_context(d.id)).ok());
        secrets.insert(d.id, Secrets { sip, provisioning });
    }
    let settings = provisioning_settings::Entity::find_by_id(domain_id)
        .one(db)
        .await?;
    let first_boot = settings.and_then(|s| {
        let password = cipher
            .decrypt(
                s.password_encrypted.as_deref()?,
                &first_boot_context(domain_id),
            )
            .ok()?;
        Some(FirstBoot {
            username: s.username?,
            password,
            networks: serde_json::from_str::<Vec<IpNet>>(&s.allowed_networks).unwrap_or_default(),
        })
    });
    Ok(Some(CompiledPhones {
        domain_id,
        sip_domain: domain.sip_domain.clone(),
        phones: phones::compile(&rows, platform, &secrets, now),
        first_boot,
    }))
}

/// The Domain of the Device with this MAC (12 lower-case hex digits), if any.
pub async fn domain_of_mac(db: &DatabaseConnection, mac: &str) -> DomainResult<Option<Uuid>> {
    Ok(devices::Entity::find()
        .filter(devices::Column::MacAddress.eq(mac))
        .one(db)
        .await?
        .map(|d| d.domain_id))
}

/// Records a phone's fetch on its Device (when, from where, with which user agent).
pub async fn record_fetch(
    db: &DatabaseConnection,
    device_id: Uuid,
    at: DateTime<Utc>,
    from: &str,
    agent: &str,
) -> DomainResult<()> {
    let agent: String = agent
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    devices::Entity::update_many()
        .col_expr(devices::Column::LastProvisionedAt, Expr::value(at))
        .col_expr(devices::Column::LastProvisionedFrom, Expr::value(from))
        .col_expr(devices::Column::LastProvisionedAgent, Expr::value(agent))
        .filter(devices::Column::Id.eq(device_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Gives every Device without a provisioning password one (for Devices created before
/// provisioning existed). Returns how many were given one.
pub async fn backfill_passwords(
    db: &DatabaseConnection,
    cipher: &SecretCipher,
) -> DomainResult<u64> {
    let missing = devices::Entity::find()
        .filter(devices::Column::ProvisioningPasswordEncrypted.is_null())
        .all(db)
        .await?;
    let mut n = 0;
    for d in missing {
        n += devices::Entity::update_many()
            .col_expr(
                devices::Column::ProvisioningPasswordEncrypted,
                Expr::value(new_password(cipher, d.id)),
            )
            .filter(devices::Column::Id.eq(d.id))
            .filter(devices::Column::ProvisioningPasswordEncrypted.is_null())
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(n)
}

// ---------------------------------------------------------------- what changes reach phones

/// The plans of a Domain's phones, read inside a transaction.
async fn plans_in<C: ConnectionTrait>(txn: &C, domain_id: Uuid) -> DomainResult<Plans> {
    Ok(load_rows(txn, domain_id)
        .await?
        .map(|(rows, _)| phones::plans(&rows))
        .unwrap_or_default())
}

/// The SIP users of every provisionable phone of a Domain (for a change they all show).
pub async fn phones_of<C: ConnectionTrait>(txn: &C, domain_id: Uuid) -> DomainResult<Vec<String>> {
    Ok(plans_in(txn, domain_id)
        .await?
        .into_values()
        .map(|(user, _)| user)
        .collect())
}

/// The phones whose plan differs, or that `also` picks from the plans after.
fn changed(
    before: &Plans,
    after: &Plans,
    also: impl Fn(&crate::provisioning::keys::PhonePlan) -> bool,
) -> Vec<String> {
    let mut users = BTreeSet::new();
    for (id, (user, plan)) in after {
        if before.get(id).map(|(_, p)| p) != Some(plan) || also(plan) {
            users.insert(user.clone());
        }
    }
    for (id, (user, _)) in before {
        if !after.contains_key(id) {
            users.insert(user.clone());
        }
    }
    users.into_iter().collect()
}

/// The phones whose keys watch an Extension (BLF), for a change of its name or number.
pub async fn watching<C: ConnectionTrait>(
    txn: &C,
    domain_id: Uuid,
    extension_id: Uuid,
) -> DomainResult<Vec<String>> {
    let Some((rows, _)) = load_rows(txn, domain_id).await? else {
        return Ok(Vec::new());
    };
    let watchers: BTreeSet<Uuid> = rows
        .catalogue
        .layouts
        .iter()
        .filter(|l| watched(&l.keys).contains(&extension_id))
        .map(|l| l.id)
        .collect();
    if watchers.is_empty() {
        return Ok(Vec::new());
    }
    Ok(phones::plans(&rows)
        .into_values()
        .filter(|(_, p)| {
            p.layout
                .as_ref()
                .is_some_and(|(id, _)| watchers.contains(id))
        })
        .map(|(user, _)| user)
        .collect())
}

/// The audit entry of a deleted provisioning row.
fn deleted<'a, T: Serialize>(
    domain_id: Uuid,
    kind: &'a str,
    action: &'a str,
    id: Uuid,
    before: &T,
) -> audit::Entry<'a> {
    audit::Entry {
        domain_id: Some(domain_id),
        action,
        target_kind: kind,
        target_id: Some(id.to_string()),
        before: serde_json::to_value(before).ok(),
        after: None,
    }
}

type Plans = BTreeMap<Uuid, (String, crate::provisioning::keys::PhonePlan)>;

/// A change to what phones may show: a write transaction that read the Domain's phone plans
/// first, so [`PhoneChange::finish`] can name exactly the phones whose plan it changed.
struct PhoneChange<'a> {
    txn: DatabaseTransaction,
    before: Plans,
    domain: &'a domains::Model,
}

impl<'a> PhoneChange<'a> {
    async fn begin(db: &DatabaseConnection, domain: &'a domains::Model) -> DomainResult<Self> {
        let txn = crate::db::begin_write(db).await?;
        let before = plans_in(&txn, domain.id).await?;
        Ok(Self {
            txn,
            before,
            domain,
        })
    }

    /// Audits the change, commits, and publishes `provisioning.changed` naming the phones
    /// whose plan changed or that `also` picks (plans after the change).
    async fn finish(
        self,
        bus: &EventBus,
        ctx: &Context,
        entry: audit::Entry<'_>,
        entity: Uuid,
        also: impl Fn(&crate::provisioning::keys::PhonePlan) -> bool,
    ) -> DomainResult<()> {
        audit::record(&self.txn, ctx, entry).await?;
        let after = plans_in(&self.txn, self.domain.id).await?;
        let phones = changed(&self.before, &after, also);
        self.txn.commit().await?;
        bus.publish([provisioning_event(self.domain, entity, ctx.now, phones)]);
        Ok(())
    }
}

fn provisioning_event(
    domain: &domains::Model,
    entity: Uuid,
    now: DateTime<Utc>,
    phones: Vec<String>,
) -> ChangeEvent {
    ChangeEvent::new(
        domain.id,
        &domain.sip_domain,
        ChangeKind::ProvisioningChanged,
        entity,
        now,
    )
    .check_sync(phones)
}

// ---------------------------------------------------------------- templates

/// A change to a template; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TemplatePatch {
    /// Name, unique in the Domain.
    pub name: Option<String>,
    /// Vendor family.
    pub vendor: Option<String>,
    /// The minijinja source.
    pub body: Option<String>,
}

fn check_template(row: &mut provisioning_templates::Model) -> FieldErrors {
    let mut errors = FieldErrors::new();
    name_errors(&mut errors, &mut row.name);
    let vendor = Vendor::parse(row.vendor.trim());
    match vendor {
        Some(v) => row.vendor = v.as_str().to_owned(),
        None => errors.add(
            "vendor",
            "invalid",
            "vendor is one of yealink, poly, grandstream, snom, cisco",
        ),
    }
    if row.body.len() > MAX_BODY {
        errors.add(
            "body",
            "too_long",
            format!("a template is at most {MAX_BODY} bytes"),
        );
    } else if let Some(v) = vendor
        && let Err(e) = RENDERER.check(v, &row.body)
    {
        let message = match e.line {
            Some(line) => format!("line {line}: {}", e.message),
            None => e.message.clone(),
        };
        errors.add("body", "template", message);
    }
    errors
}

/// Lists the Domain's templates (`devices.read`), by name.
pub async fn list_templates(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
) -> DomainResult<Vec<provisioning_templates::Model>> {
    scope::enter(db, ctx, domain_id, Permission::DevicesRead).await?;
    Ok(provisioning_templates::Entity::find()
        .filter(provisioning_templates::Column::DomainId.eq(domain_id))
        .order_by_asc(provisioning_templates::Column::Name)
        .all(db)
        .await?)
}

async fn find_template<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<provisioning_templates::Model> {
    provisioning_templates::Entity::find_by_id(id)
        .filter(provisioning_templates::Column::DomainId.eq(domain_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("template"))
}

/// Reads one template (`devices.read`).
pub async fn get_template(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<provisioning_templates::Model> {
    scope::enter(db, ctx, domain_id, Permission::DevicesRead).await?;
    find_template(db, domain_id, id).await
}

/// Creates or changes a template (`devices.write`); `id` none creates.
pub async fn save_template(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    id: Option<Uuid>,
    patch: TemplatePatch,
) -> DomainResult<provisioning_templates::Model> {
    let domain = scope::enter(db, ctx, domain_id, Permission::DevicesWrite).await?;
    let before = match id {
        Some(id) => Some(find_template(db, domain_id, id).await?),
        None => None,
    };
    let mut errors = FieldErrors::new();
    let mut row = before.clone().unwrap_or_else(|| {
        for (field, missing) in [
            ("name", patch.name.is_none()),
            ("vendor", patch.vendor.is_none()),
            ("body", patch.body.is_none()),
        ] {
            if missing {
                errors.add(field, "required", format!("a template needs a {field}"));
            }
        }
        provisioning_templates::Model {
            id: Uuid::now_v7(),
            domain_id,
            name: String::new(),
            vendor: String::new(),
            body: String::new(),
            created_at: ctx.now,
            updated_at: ctx.now,
        }
    });
    if let Some(b) = &before
        && patch
            .vendor
            .as_deref()
            .is_some_and(|v| v.trim() != b.vendor)
    {
        errors.add(
            "vendor",
            "immutable",
            "a template's vendor cannot change; create another template",
        );
    }
    if let Some(v) = patch.name {
        row.name = v;
    }
    if let Some(v) = patch.vendor {
        row.vendor = v;
    }
    if let Some(v) = patch.body {
        row.body = v;
    }
    row.updated_at = ctx.now;
    if errors.is_empty() {
        for e in check_template(&mut row).into_vec() {
            errors.push(e);
        }
    }
    errors.into_result()?;
    let change = PhoneChange::begin(db, &domain).await?;
    let saved = match &before {
        None => {
            provisioning_templates::ActiveModel::from(row)
                .insert(&change.txn)
                .await?
        }
        Some(_) => {
            row.into_active_model()
                .reset_all()
                .update(&change.txn)
                .await?
        }
    };
    let id = saved.id;
    let entry = audit::Entry {
        domain_id: Some(domain_id),
        action: if before.is_some() {
            "provisioning_template.update"
        } else {
            "provisioning_template.create"
        },
        target_kind: "provisioning_template",
        target_id: Some(id.to_string()),
        before: before.as_ref().and_then(|b| serde_json::to_value(b).ok()),
        after: serde_json::to_value(&saved).ok(),
    };
    // Its phones fetch again even when their plan is the same: the template's text changed.
    change
        .finish(bus, ctx, entry, id, |p| {
            p.template.as_ref().is_some_and(|(t, _)| *t == id)
        })
        .await?;
    Ok(saved)
}

/// Deletes a template (`devices.write`): the phones that used it return to the built-in one.
pub async fn delete_template(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<()> {
    let domain = scope::enter(db, ctx, domain_id, Permission::DevicesWrite).await?;
    let before = find_template(db, domain_id, id).await?;
    let change = PhoneChange::begin(db, &domain).await?;
    devices::Entity::update_many()
        .col_expr(
            devices::Column::TemplateId,
            Expr::value(Option::<Uuid>::None),
        )
        .filter(devices::Column::DomainId.eq(domain_id))
        .filter(devices::Column::TemplateId.eq(id))
        .exec(&change.txn)
        .await?;
    provisioning_templates::Entity::delete_by_id(id)
        .exec(&change.txn)
        .await?;
    let entry = deleted(
        domain_id,
        "provisioning_template",
        "provisioning_template.delete",
        id,
        &before,
    );
    change.finish(bus, ctx, entry, id, |_| false).await
}

// ---------------------------------------------------------------- layouts

/// A layout as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayoutView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Catalogue id of the model.
    pub model: String,
    /// The keys, slot 1 first.
    pub keys: Vec<KeySpec>,
    /// The Domain's logged-out layout for the model.
    pub logged_out: bool,
    /// How many keys the model has (phone and expansion modules).
    pub max_keys: u32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last updated.
    pub updated_at: DateTime<Utc>,
}

fn layout_view(l: &model_layouts::Model) -> LayoutView {
    LayoutView {
        id: l.id,
        name: l.name.clone(),
        model: l.model.clone(),
        keys: serde_json::from_str(&l.keys).unwrap_or_default(),
        logged_out: l.logged_out,
        max_keys: find_model(&l.model).map_or(0, PhoneModel::max_keys),
        created_at: l.created_at,
        updated_at: l.updated_at,
    }
}

/// A change to a layout; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct LayoutPatch {
    /// Name, unique in the Domain.
    pub name: Option<String>,
    /// Catalogue id of the model.
    pub model: Option<String>,
    /// The keys, slot 1 first.
    pub keys: Option<Vec<KeySpec>>,
    /// The Domain's logged-out layout for the model.
    pub logged_out: Option<bool>,
}

async fn find_layout<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<model_layouts::Model> {
    model_layouts::Entity::find_by_id(id)
        .filter(model_layouts::Column::DomainId.eq(domain_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("layout"))
}

/// Lists the Domain's layouts (`devices.read`), by name; `model` filters.
pub async fn list_layouts(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    model: Option<&str>,
) -> DomainResult<Vec<LayoutView>> {
    scope::enter(db, ctx, domain_id, Permission::DevicesRead).await?;
    let mut q = model_layouts::Entity::find().filter(model_layouts::Column::DomainId.eq(domain_id));
    if let Some(m) = model {
        q = q.filter(model_layouts::Column::Model.eq(m.trim().to_ascii_lowercase()));
    }
    Ok(q.order_by_asc(model_layouts::Column::Name)
        .all(db)
        .await?
        .iter()
        .map(layout_view)
        .collect())
}

/// Reads one layout (`devices.read`).
pub async fn get_layout(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<LayoutView> {
    scope::enter(db, ctx, domain_id, Permission::DevicesRead).await?;
    Ok(layout_view(&find_layout(db, domain_id, id).await?))
}

async fn check_layout<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    row: &mut model_layouts::Model,
    keys: &[KeySpec],
) -> DomainResult<FieldErrors> {
    let mut errors = FieldErrors::new();
    name_errors(&mut errors, &mut row.name);
    row.model = row.model.trim().to_ascii_lowercase();
    let Some(model) = find_model(&row.model) else {
        errors.add(
            "model",
            "unknown_model",
            "not a model of the catalogue (GET /api/v1/phone-models)",
        );
        return Ok(errors);
    };
    row.model = model.id.to_owned();
    for p in check_keys(model, keys) {
        let field = match p.index {
            Some(i) => format!("keys[{i}]"),
            None => "keys".to_owned(),
        };
        let code = if p.index.is_none() {
            "too_many_keys"
        } else {
            "invalid"
        };
        errors.add(field, code, p.message);
    }
    let wanted: BTreeSet<Uuid> = watched(keys);
    if !wanted.is_empty() {
        let found: BTreeSet<Uuid> = extensions::Entity::find()
            .filter(extensions::Column::DomainId.eq(domain_id))
            .filter(extensions::Column::Id.is_in(wanted.iter().copied()))
            .all(db)
            .await?
            .into_iter()
            .map(|e| e.id)
            .collect();
        for (i, k) in keys.iter().enumerate() {
            if let Some(e) = k.blf_extension()
                && !found.contains(&e)
            {
                errors.add(
                    format!("keys[{i}].extension_id"),
                    "not_found",
                    "no such Extension in the Domain",
                );
            }
        }
    }
    Ok(errors)
}

/// Creates or changes a layout (`devices.write`); `id` none creates.
pub async fn save_layout(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    id: Option<Uuid>,
    patch: LayoutPatch,
) -> DomainResult<LayoutView> {
    let domain = scope::enter(db, ctx, domain_id, Permission::DevicesWrite).await?;
    let before = match id {
        Some(id) => Some(find_layout(db, domain_id, id).await?),
        None => None,
    };
    let mut errors = FieldErrors::new();
    let mut row = before.clone().unwrap_or_else(|| {
        for (field, missing) in [
            ("name", patch.name.is_none()),
            ("model", patch.model.is_none()),
        ] {
            if missing {
                errors.add(field, "required", format!("a layout needs a {field}"));
            }
        }
        model_layouts::Model {
            id: Uuid::now_v7(),
            domain_id,
            name: String::new(),
            model: String::new(),
            keys: "[]".into(),
            logged_out: false,
            created_at: ctx.now,
            updated_at: ctx.now,
        }
    });
    let keys: Vec<KeySpec> = match patch.keys {
        Some(k) => k,
        None => serde_json::from_str(&row.keys).unwrap_or_default(),
    };
    if let Some(v) = patch.name {
        row.name = v;
    }
    if let Some(v) = patch.model {
        row.model = v;
    }
    if let Some(v) = patch.logged_out {
        row.logged_out = v;
    }
    row.updated_at = ctx.now;
    if errors.is_empty() {
        for e in check_layout(db, domain_id, &mut row, &keys)
            .await?
            .into_vec()
        {
            errors.push(e);
        }
    }
    errors.into_result()?;
    row.keys = serde_json::to_string(&keys)
        .map_err(|e| DomainError::Internal(format!("layout keys: {e}")))?;
    write_layout(db, bus, ctx, &domain, before, row).await
}

async fn write_layout(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain: &domains::Model,
    before: Option<model_layouts::Model>,
    row: model_layouts::Model,
) -> DomainResult<LayoutView> {
    let change = PhoneChange::begin(db, domain).await?;
    let saved = match &before {
        None => {
            model_layouts::ActiveModel::from(row)
                .insert(&change.txn)
                .await?
        }
        Some(_) => {
            row.into_active_model()
                .reset_all()
                .update(&change.txn)
                .await?
        }
    };
    let entry = audit::Entry {
        domain_id: Some(domain.id),
        action: if before.is_some() {
            "model_layout.update"
        } else {
            "model_layout.create"
        },
        target_kind: "model_layout",
        target_id: Some(saved.id.to_string()),
        before: before.as_ref().and_then(|b| serde_json::to_value(b).ok()),
        after: serde_json::to_value(&saved).ok(),
    };
    change.finish(bus, ctx, entry, saved.id, |_| false).await?;
    Ok(layout_view(&saved))
}

/// Where a layout is copied to.
#[derive(Debug, Clone)]
pub struct CloneTo {
    /// The target model (catalogue id).
    pub model: String,
    /// Name of the copy (default: "<name> (<model>)").
    pub name: Option<String>,
    /// Drop the keys beyond what the target has (default: such a layout is a 422).
    pub truncate: bool,
}

/// Copies a layout to another model in one call (`devices.write`). A layout with more keys
/// than the target has is refused (422) unless `truncate`, which drops the keys beyond it.
pub async fn clone_layout(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
    to: CloneTo,
) -> DomainResult<LayoutView> {
    let CloneTo {
        model,
        name,
        truncate,
    } = to;
    let model = model.as_str();
    scope::enter(db, ctx, domain_id, Permission::DevicesWrite).await?;
    let source = layout_facts(&find_layout(db, domain_id, id).await?);
    let mut keys = source.keys.clone();
    if truncate && let Some(m) = find_model(model.trim()) {
        keys.truncate(m.max_keys() as usize);
    }
    let name = name.unwrap_or_else(|| format!("{} ({})", source.name, model.trim()));
    save_layout(
        db,
        bus,
        ctx,
        domain_id,
        None,
        LayoutPatch {
            name: Some(name),
            model: Some(model.to_owned()),
            keys: Some(keys),
            logged_out: Some(false),
        },
    )
    .await
}

/// Deletes a layout (`devices.write`): its phones fall back to the next layout they may use.
pub async fn delete_layout(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<()> {
    let domain = scope::enter(db, ctx, domain_id, Permission::DevicesWrite).await?;
    let before = find_layout(db, domain_id, id).await?;
    let change = PhoneChange::begin(db, &domain).await?;
    model_layouts::Entity::delete_by_id(id)
        .exec(&change.txn)
        .await?;
    let entry = deleted(
        domain_id,
        "model_layout",
        "model_layout.delete",
        id,
        &before,
    );
    change.finish(bus, ctx, entry, id, |_| false).await
}

// ---------------------------------------------------------------- what a group may choose

/// The layouts and templates a group's members may choose (empty: every one of the Domain).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupChoices {
    /// Layouts.
    pub layout_ids: Vec<Uuid>,
    /// Templates.
    pub template_ids: Vec<Uuid>,
}

async fn find_group<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<extension_groups::Model> {
    extension_groups::Entity::find_by_id(id)
        .filter(extension_groups::Column::DomainId.eq(domain_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("extension group"))
}

async fn choices_of<C: ConnectionTrait>(db: &C, group_id: Uuid) -> DomainResult<GroupChoices> {
    let (l, t) = tokio::try_join!(
        extension_group_layouts::Entity::find()
            .filter(extension_group_layouts::Column::GroupId.eq(group_id))
            .all(db),
        extension_group_templates::Entity::find()
            .filter(extension_group_templates::Column::GroupId.eq(group_id))
            .all(db),
    )?;
    let mut c = GroupChoices {
        layout_ids: l.into_iter().map(|r| r.layout_id).collect(),
        template_ids: t.into_iter().map(|r| r.template_id).collect(),
    };
    c.layout_ids.sort();
    c.template_ids.sort();
    Ok(c)
}

/// Reads what a group's members may choose (`extensions.read`).
pub async fn get_group_choices(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    group_id: Uuid,
) -> DomainResult<GroupChoices> {
    scope::enter(db, ctx, domain_id, Permission::ExtensionsRead).await?;
    find_group(db, domain_id, group_id).await?;
    choices_of(db, group_id).await
}

/// Replaces what a group's members may choose (`extensions.write`).
pub async fn set_group_choices(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    group_id: Uuid,
    choices: GroupChoices,
) -> DomainResult<GroupChoices> {
    let domain = scope::enter(db, ctx, domain_id, Permission::ExtensionsWrite).await?;
    find_group(db, domain_id, group_id).await?;
    let layouts: BTreeSet<Uuid> = choices.layout_ids.iter().copied().collect();
    let templates: BTreeSet<Uuid> = choices.template_ids.iter().copied().collect();
    let known_layouts: BTreeSet<Uuid> = model_layouts::Entity::find()
        .filter(model_layouts::Column::DomainId.eq(domain_id))
        .filter(model_layouts::Column::Id.is_in(layouts.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|l| l.id)
        .collect();
    let known_templates: BTreeSet<Uuid> = provisioning_templates::Entity::find()
        .filter(provisioning_templates::Column::DomainId.eq(domain_id))
        .filter(provisioning_templates::Column::Id.is_in(templates.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|t| t.id)
        .collect();
    let mut errors = FieldErrors::new();
    for (i, id) in choices.layout_ids.iter().enumerate() {
        if !known_layouts.contains(id) {
            errors.add(
                format!("layout_ids[{i}]"),
                "not_found",
                "no such layout in the Domain",
            );
        }
    }
    for (i, id) in choices.template_ids.iter().enumerate() {
        if !known_templates.contains(id) {
            errors.add(
                format!("template_ids[{i}]"),
                "not_found",
                "no such template in the Domain",
            );
        }
    }
    errors.into_result()?;
    let change = PhoneChange::begin(db, &domain).await?;
    let txn = &change.txn;
    let before = choices_of(txn, group_id).await?;
    extension_group_layouts::Entity::delete_many()
        .filter(extension_group_layouts::Column::GroupId.eq(group_id))
        .exec(txn)
        .await?;
    extension_group_templates::Entity::delete_many()
        .filter(extension_group_templates::Column::GroupId.eq(group_id))
        .exec(txn)
        .await?;
    for layout_id in &layouts {
        extension_group_layouts::ActiveModel::from(extension_group_layouts::Model {
            group_id,
            layout_id: *layout_id,
        })
        .insert(txn)
        .await?;
    }
    for template_id in &templates {
        extension_group_templates::ActiveModel::from(extension_group_templates::Model {
            group_id,
            template_id: *template_id,
        })
        .insert(txn)
        .await?;
    }
    let after = choices_of(txn, group_id).await?;
    let entry = audit::Entry {
        domain_id: Some(domain_id),
        action: "extension_group.set_choices",
        target_kind: "extension_group",
        target_id: Some(group_id.to_string()),
        before: serde_json::to_value(&before).ok(),
        after: serde_json::to_value(&after).ok(),
    };
    change.finish(bus, ctx, entry, group_id, |_| false).await?;
    Ok(after)
}

/// Checks a choice made at login against what the person may choose for the phone (422
/// naming the field when they may not); returns it with defaults filled in as `None`.
pub async fn check_login_choice<C: ConnectionTrait>(
    db: &C,
    b: &Bindings,
    device: &devices::Model,
    extension_id: Uuid,
    choice: LoginChoice,
) -> DomainResult<LoginChoice> {
    if choice.layout_id.is_none() && choice.template_id.is_none() {
        return Ok(choice);
    }
    let Some(person) = b.extensions.get(&extension_id) else {
        return Err(DomainError::NotFound("extension"));
    };
    let model = phones::provisionable(device).ok();
    let (cat, _) = load_catalogue(db, b.domain.id).await?;
    let mut errors = FieldErrors::new();
    if let Some(id) = choice.layout_id {
        let ok = model.is_some_and(|m| {
            allowed_layouts(&cat, person, m.id)
                .iter()
                .any(|l| l.id == id)
        });
        if !ok {
            errors.add(
                "layout_id",
                "not_allowed",
                "not a layout of this phone's model that this Extension may choose",
            );
        }
    }
    if let Some(id) = choice.template_id {
        let ok = model.is_some_and(|m| {
            allowed_templates(&cat, person, m.vendor)
                .iter()
                .any(|t| t.id == id)
        });
        if !ok {
            errors.add(
                "template_id",
                "not_allowed",
                "not a template of this phone's vendor that this Extension may choose",
            );
        }
    }
    errors.into_result()?;
    Ok(choice)
}

// ---------------------------------------------------------------- the Domain's settings

/// A Domain's provisioning settings as the API shows them (the password never).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingsView {
    /// First-boot user name.
    pub username: Option<String>,
    /// Whether a first-boot password is set.
    pub password_set: bool,
    /// Source networks the first-boot credential is accepted from.
    pub allowed_networks: Vec<String>,
    /// Language (ISO 639-1).
    pub language: String,
    /// NTP server (none: the server's default).
    pub ntp_server: Option<String>,
}

/// A change to the settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SettingsPatch {
    /// First-boot user name (null removes the credential).
    pub username: Option<Option<String>>,
    /// First-boot password (at least 12 characters; null removes the credential).
    pub password: Option<Option<SecretString>>,
    /// CIDRs.
    pub allowed_networks: Option<Vec<String>>,
    /// Language.
    pub language: Option<String>,
    /// NTP server.
    pub ntp_server: Option<Option<String>>,
}

fn settings_view(s: &provisioning_settings::Model) -> SettingsView {
    SettingsView {
        username: s.username.clone(),
        password_set: s.password_encrypted.is_some(),
        allowed_networks: serde_json::from_str(&s.allowed_networks).unwrap_or_default(),
        language: s.language.clone(),
        ntp_server: s.ntp_server.clone(),
    }
}

fn default_settings(domain_id: Uuid, now: DateTime<Utc>) -> provisioning_settings::Model {
    provisioning_settings::Model {
        domain_id,
        username: None,
        password_encrypted: None,
        allowed_networks: "[]".into(),
        language: "en".into(),
        ntp_server: None,
        updated_at: now,
    }
}

/// Reads the Domain's provisioning settings (`devices.read`).
pub async fn get_settings(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
) -> DomainResult<SettingsView> {
    scope::enter(db, ctx, domain_id, Permission::DevicesRead).await?;
    let row = provisioning_settings::Entity::find_by_id(domain_id)
        .one(db)
        .await?
        .unwrap_or_else(|| default_settings(domain_id, ctx.now));
    Ok(settings_view(&row))
}

/// Changes the Domain's provisioning settings (`settings.write`); every phone of the Domain
/// fetches again when language or NTP change.
pub async fn update_settings(
    db: &DatabaseConnection,
    bus: &EventBus,
    cipher: &SecretCipher,
    ctx: &Context,
    domain_id: Uuid,
    patch: SettingsPatch,
) -> DomainResult<SettingsView> {
    let domain = scope::enter(db, ctx, domain_id, Permission::SettingsWrite).await?;
    let before = provisioning_settings::Entity::find_by_id(domain_id)
        .one(db)
        .await?;
    let mut row = before
        .clone()
        .unwrap_or_else(|| default_settings(domain_id, ctx.now));
    let mut errors = FieldErrors::new();
    if let Some(u) = patch.username {
        row.username = u.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty());
        if row.username.as_ref().is_some_and(|u| {
            u.len() > 64
                || !u
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        }) {
            errors.add(
                "username",
                "invalid",
                "1 to 64 letters, digits, `-`, `_`, `.` or `@`",
            );
        }
    }
    if let Some(p) = patch.password {
        row.password_encrypted = match p {
            None => None,
            Some(p) if p.expose_secret().chars().count() < 12 => {
                errors.add("password", "too_short", "at least 12 characters");
                None
            }
            Some(p) => Some(cipher.encrypt(p.expose_secret(), &first_boot_context(domain_id))),
        };
    }
    if let Some(networks) = patch.allowed_networks {
        let mut parsed = Vec::new();
        for (i, n) in networks.iter().enumerate() {
            match n
                .trim()
                .parse::<IpNet>()
                .or_else(|_| n.trim().parse::<std::net::IpAddr>().map(IpNet::from))
            {
                Ok(net) => parsed.push(net.trunc().to_string()),
                Err(_) => errors.add(
                    format!("allowed_networks[{i}]"),
                    "invalid",
                    "a network in CIDR form (192.0.2.0/24, 2001:db8::/32) or an address",
                ),
            }
        }
        row.allowed_networks = serde_json::to_string(&parsed).unwrap_or_else(|_| "[]".into());
    }
    if let Some(l) = patch.language {
        let l = l.trim().to_ascii_lowercase();
        if l.len() != 2 || !l.chars().all(|c| c.is_ascii_lowercase()) {
            errors.add(
                "language",
                "invalid",
                "an ISO 639-1 code such as en, de, fr",
            );
        }
        row.language = l;
    }
    if let Some(n) = patch.ntp_server {
        row.ntp_server = n.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        if row.ntp_server.as_ref().is_some_and(|n| {
            n.len() > 253
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c))
        }) {
            errors.add("ntp_server", "invalid", "a host name or address");
        }
    }
    if row.username.is_some() != row.password_encrypted.is_some() {
        errors.add(
            "password",
            "incomplete",
            "the first-boot credential needs both a user name and a password",
        );
    }
    errors.into_result()?;
    row.updated_at = ctx.now;
    let txn = crate::db::begin_write(db).await?;
    let saved = match &before {
        None => {
            provisioning_settings::ActiveModel::from(row)
                .insert(&txn)
                .await?
        }
        Some(_) => row.into_active_model().reset_all().update(&txn).await?,
    };
    let redact = |s: &provisioning_settings::Model| serde_json::to_value(settings_view(s)).ok();
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "provisioning_settings.update",
            target_kind: "domain",
            target_id: Some(domain_id.to_string()),
            before: before.as_ref().and_then(redact),
            after: redact(&saved),
        },
    )
    .await?;
    let fetch_again = before
        .as_ref()
        .is_none_or(|b| b.language != saved.language || b.ntp_server != saved.ntp_server);
    let phones = if fetch_again {
        phones_of(&txn, domain_id).await?
    } else {
        Vec::new()
    };
    txn.commit().await?;
    bus.publish([provisioning_event(&domain, domain_id, ctx.now, phones)]);
    Ok(settings_view(&saved))
}

// ---------------------------------------------------------------- one Device

/// A Device's provisioning credential.
#[derive(Debug, Clone)]
pub struct Credential {
    /// User name (the SIP user name).
    pub username: String,
    /// Password.
    pub password: SecretString,
}

async fn find_device<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<devices::Model> {
    devices::Entity::find_by_id(id)
        .filter(devices::Column::DomainId.eq(domain_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("device"))
}

/// Reads a Device's provisioning credential in clear (`secrets.read`, audited); one is made
/// if it has none yet.
pub async fn read_credential(
    db: &DatabaseConnection,
    cipher: &SecretCipher,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<Credential> {
    scope::enter(db, ctx, domain_id, Permission::SecretsRead).await?;
    let mut device = find_device(db, domain_id, id).await?;
    if device.provisioning_password_encrypted.is_none() {
        backfill_passwords_of(db, cipher, id).await?;
        device = find_device(db, domain_id, id).await?;
    }
    let password = device
        .provisioning_password_encrypted
        .as_deref()
        .ok_or_else(|| DomainError::Internal(format!("device {id}: no provisioning password")))
        .and_then(|p| {
            cipher
                .decrypt(p, &password_context(id))
                .map_err(|e| DomainError::Internal(format!("device {id}: {e}")))
        })?;
    audit::record(
        db,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "device.read_provisioning_credential",
            target_kind: "device",
            target_id: Some(id.to_string()),
            before: None,
            after: Some(json!({"username": device.sip_username})),
        },
    )
    .await?;
    Ok(Credential {
        username: device.sip_username,
        password,
    })
}

async fn backfill_passwords_of(
    db: &DatabaseConnection,
    cipher: &SecretCipher,
    id: Uuid,
) -> DomainResult<()> {
    devices::Entity::update_many()
        .col_expr(
            devices::Column::ProvisioningPasswordEncrypted,
            Expr::value(new_password(cipher, id)),
        )
        .filter(devices::Column::Id.eq(id))
        .filter(devices::Column::ProvisioningPasswordEncrypted.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Gives a Device a new provisioning password (`devices.write`). The phone keeps fetching with
/// the old one until told otherwise, so it is re-provisioned by hand or by its first-boot
/// credential.
pub async fn rotate_credential(
    db: &DatabaseConnection,
    bus: &EventBus,
    cipher: &SecretCipher,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<()> {
    let domain = scope::enter(db, ctx, domain_id, Permission::DevicesWrite).await?;
    let device = find_device(db, domain_id, id).await?;
    let txn = crate::db::begin_write(db).await?;
    devices::Entity::update_many()
        .col_expr(
            devices::Column::ProvisioningPasswordEncrypted,
            Expr::value(new_password(cipher, id)),
        )
        .filter(devices::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "device.rotate_provisioning_credential",
            target_kind: "device",
            target_id: Some(id.to_string()),
            before: None,
            after: Some(json!({"username": device.sip_username})),
        },
    )
    .await?;
    txn.commit().await?;
    bus.publish([provisioning_event(&domain, id, ctx.now, Vec::new())]);
    Ok(())
}

/// What a phone would get, without its secrets.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// The model.
    pub model: String,
    /// The files it asks for, each with its name and rendered content.
    pub files: Vec<PreviewFile>,
    /// The Extension it is now, if a person.
    pub extension_id: Option<Uuid>,
    /// The layout used.
    pub layout_id: Option<Uuid>,
    /// Its name.
    pub layout_name: Option<String>,
    /// Where the layout came from.
    pub layout_source: crate::provisioning::keys::LayoutSource,
    /// The tenant template used for the main file (none: the built-in one).
    pub template_id: Option<Uuid>,
    /// Its name.
    pub template_name: Option<String>,
    /// The keys.
    pub keys: Vec<crate::provisioning::LineKey>,
    /// When it last fetched its files.
    pub last_fetch_at: Option<DateTime<Utc>>,
    /// From where.
    pub last_fetch_from: Option<String>,
    /// With which user agent.
    pub last_fetch_agent: Option<String>,
}

/// One rendered file of a preview.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewFile {
    /// The file name the phone asks for.
    pub name: String,
    /// Its MIME type.
    pub content_type: String,
    /// The content, secrets left empty.
    pub content: String,
}

/// Renders one file of a phone from a context.
pub fn render_file(
    phone: &Phone,
    template: &str,
    main: bool,
    ctx: &crate::provisioning::RenderContext,
) -> Result<String, crate::provisioning::render::TemplateError> {
    match (&phone.template_body, main) {
        (Some(body), true) => RENDERER.render(
            Template::Custom {
                vendor: phone.model.vendor,
                body,
            },
            ctx,
        ),
        _ => RENDERER.render(Template::BuiltIn(template), ctx),
    }
}

/// What a Device would get when it fetches its files now, without its secrets
/// (`devices.read`). A Device that cannot be provisioned is a 422 saying why.
pub async fn preview(
    db: &DatabaseConnection,
    ctx: &Context,
    platform: &Platform,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<Preview> {
    scope::enter(db, ctx, domain_id, Permission::DevicesRead).await?;
    let device = find_device(db, domain_id, id).await?;
    if let Err(why) = phones::provisionable(&device) {
        return Err(DomainError::invalid(
            "device",
            "not_provisionable",
            why.message(),
        ));
    }
    let (rows, _) = load_rows(db, domain_id)
        .await?
        .ok_or(DomainError::NotFound("domain"))?;
    let blank = Secrets {
        sip: SecretString::from(String::new()),
        provisioning: None,
    };
    let secrets = HashMap::from([(id, blank)]);
    let compiled = phones::compile(&rows, platform, &secrets, ctx.now);
    let phone = compiled
        .into_values()
        .find(|p| p.device_id == id)
        .ok_or(DomainError::NotFound("device"))?;
    let mut files = Vec::new();
    let main = crate::provisioning::render::main_template(phone.model.vendor);
    for spec in crate::provisioning::models::files(phone.model.vendor) {
        let content = render_file(&phone, spec.template, spec.template == main, &phone.context)
            .map_err(|e| DomainError::invalid("template", "template", e.to_string()))?;
        files.push(PreviewFile {
            name: crate::provisioning::files::file_name(spec, &phone.context.device.mac),
            content_type: spec.content_type.to_owned(),
            content,
        });
    }
    Ok(Preview {
        model: phone.model.id.to_owned(),
        files,
        extension_id: phone.plan.person,
        layout_id: phone.plan.layout.as_ref().map(|l| l.0),
        layout_name: phone.plan.layout.as_ref().map(|l| l.1.clone()),
        layout_source: phone.plan.layout_source,
        template_id: phone.plan.template.as_ref().map(|t| t.0),
        template_name: phone.plan.template.as_ref().map(|t| t.1.clone()),
        keys: phone.plan.keys.clone(),
        last_fetch_at: device.last_provisioned_at,
        last_fetch_from: device.last_provisioned_from,
        last_fetch_agent: device.last_provisioned_agent,
    })
}

/// A layout or template one may choose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choosable {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
}

/// What an Extension may choose when logging in to a phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChoicesForPhone {
    /// Layouts of the phone's model, the default first.
    pub layouts: Vec<Choosable>,
    /// Templates of the phone's vendor (empty: the phone's own applies).
    pub templates: Vec<Choosable>,
}

/// What the Extension numbered `extension` may choose on a Device (`devices.read`).
pub async fn choices_for_phone(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    device_id: Uuid,
    extension: &str,
) -> DomainResult<ChoicesForPhone> {
    scope::enter(db, ctx, domain_id, Permission::DevicesRead).await?;
    let device = find_device(db, domain_id, device_id).await?;
    let model = phones::provisionable(&device)
        .map_err(|why| DomainError::invalid("device", "not_provisionable", why.message()))?;
    let b = snapshot::load(db, domain_id).await?;
    let person = b.extension_by_number(extension.trim()).ok_or_else(|| {
        DomainError::invalid("extension", "not_found", "no such Extension in this Domain")
    })?;
    let (cat, _) = load_catalogue(db, domain_id).await?;
    Ok(ChoicesForPhone {
        layouts: allowed_layouts(&cat, person, model.id)
            .into_iter()
            .map(|l| Choosable {
                id: l.id,
                name: l.name.clone(),
            })
            .collect(),
        templates: allowed_templates(&cat, person, model.vendor)
            .into_iter()
            .map(|t| Choosable {
                id: t.id,
                name: t.name.clone(),
            })
            .collect(),
    })
}
