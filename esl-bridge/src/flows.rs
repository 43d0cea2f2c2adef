//! Answering call flows: what a ring group rings now, what a time condition decides now, what
//! a menu's keys lead to — from the compiled Domain and the live line state, without a
//! database (a round-robin group's turn is written back in the background).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use switchboard_domain::bindings::presence::LineState;
use switchboard_domain::routing::callers::CallerRef;
use switchboard_domain::routing::dialplan::{Decision, Target};
use switchboard_domain::routing::flows::{
    CompiledFlow, GroupStrategy, IvrConfig, RingGroupConfig, TimeConditionConfig, is_open,
    ring_order,
};
use switchboard_domain::services::presence::LineStates;
use uuid::Uuid;

use crate::xml::directory::CompiledDomain;

/// What flows need beyond the compiled Domain: the line state (busy members, longest idle)
/// and the round-robin turns.
#[derive(Default)]
pub struct FlowLive {
    lines: OnceLock<Arc<LineStates>>,
    db: OnceLock<DatabaseConnection>,
    turns: Mutex<HashMap<Uuid, i32>>,
}

impl std::fmt::Debug for FlowLive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowLive")
            .field("lines", &self.lines.get().is_some())
            .finish_non_exhaustive()
    }
}

impl FlowLive {
    /// Reads the line state from `lines` from now on.
    pub fn set_lines(&self, lines: Arc<LineStates>) {
        let _ = self.lines.set(lines);
    }

    /// Writes round-robin turns to `db` from now on.
    pub fn set_db(&self, db: DatabaseConnection) {
        let _ = self.db.set(db);
    }

    fn turns(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, i32>> {
        self.turns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The member a round-robin group rang first last time.
    fn last_turn(&self, flow: &CompiledFlow) -> i32 {
        self.turns()
            .get(&flow.id)
            .copied()
            .unwrap_or(flow.last_member)
    }

    /// Remembers the member a round-robin group rings first now (in memory at once, in the
    /// database in the background).
    fn take_turn(&self, flow: &CompiledFlow, member: i32) {
        self.turns().insert(flow.id, member);
        if let (Some(db), Ok(handle)) = (self.db.get(), tokio::runtime::Handle::try_current()) {
            let (db, id) = (db.clone(), flow.id);
            handle.spawn(async move {
                if let Err(e) =
                    switchboard_domain::services::call_flows::remember_member(&db, id, member).await
                {
                    tracing::warn!(flow_id = %id, error = %e, "a ring group's turn was not stored");
                }
            });
        }
    }

    fn lines(
        &self,
        domain_id: Uuid,
    ) -> (HashMap<String, LineState>, HashMap<String, DateTime<Utc>>) {
        match self.lines.get() {
            Some(l) => (
                l.facts(domain_id).1.into_iter().collect(),
                l.idle_since(domain_id),
            ),
            None => (HashMap::new(), HashMap::new()),
        }
    }
}

/// One member as a ring group rings it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRing {
    /// Its index in the group's list.
    pub index: usize,
    /// An Extension's number or the external number.
    pub label: String,
    /// Seconds it rings.
    pub secs: u32,
    /// Its legs (`[vars]contact`), ready for a dial string.
    pub legs: Vec<String>,
}

/// What a ring group does now: who rings in which order, who is skipped and why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupRing {
    /// The members that ring, in order (all at once for a simultaneous group).
    pub ringing: Vec<MemberRing>,
    /// The members left out, with why.
    pub skipped: Vec<(String, &'static str)>,
    /// The dial string (none: nobody can ring).
    pub dial: Option<String>,
}

fn member_label(domain: &CompiledDomain, c: &RingGroupConfig, i: usize) -> String {
    let m = &c.members[i];
    match (m.extension_id, &m.number) {
        (Some(id), _) => domain
            .dialplan
            .extension_number(id)
            .map_or_else(|| format!("Extension {id}"), |n| format!("Extension {n}")),
        (None, Some(n)) => n.clone(),
        _ => "?".into(),
    }
}

/// Who a ring group rings now (`commit`: a round-robin group takes its turn).
pub fn plan_group(
    domain: &CompiledDomain,
    flow: &CompiledFlow,
    c: &RingGroupConfig,
    caller: &CallerRef,
    live: &FlowLive,
    commit: bool,
) -> GroupRing {
    let (lines, idle) = live.lines(domain.id);
    let busy = |users: &[String]| {
        users
            .iter()
            .any(|u| lines.get(u).is_some_and(|s| *s == LineState::InCall))
    };
    let idle_since = |i: usize| -> Option<Option<DateTime<Utc>>> {
        let m = &c.members[i];
        let legs = m.extension_id.and_then(|id| domain.members.get(&id))?;
        if busy(&legs.sip_users) {
            return None;
        }
        Some(
            legs.sip_users
                .iter()
                .filter_map(|u| idle.get(u))
                .max()
                .copied(),
        )
    };
    let order = ring_order(
        c.strategy,
        c.members.len(),
        live.last_turn(flow),
        idle_since,
    );
    let mut out = GroupRing::default();
    let mut remaining = c.ring_secs;
    let sequential = c.strategy != GroupStrategy::Simultaneous;
    for i in order {
        let m = &c.members[i];
        let label = member_label(domain, c, i);
        if sequential && remaining == 0 {
            out.skipped
                .push((label, "the group's ring time is used up"));
            continue;
        }
        let secs = m.ring_secs.min(remaining);
        let legs: Vec<String> = match (m.extension_id, &m.number) {
            (Some(id), _) => {
                let Some(legs) = domain.members.get(&id) else {
                    out.skipped.push((
                        label,
                        "cannot ring (Do-Not-Disturb, forwarded, disabled or no phone)",
                    ));
                    continue;
                };
                if c.skip_busy && busy(&legs.sip_users) {
                    out.skipped.push((label, "in a call"));
                    continue;
                }
                legs.legs
                    .iter()
                    .map(|(vars, contact)| {
                        let mut all = vec![format!("leg_timeout={secs}")];
                        all.extend(vars.iter().cloned());
                        format!("[{}]{contact}", all.join(","))
                    })
                    .collect()
            }
            (None, Some(number)) => match domain.dialplan.place(caller, number, 0) {
                Decision::Outbound(call) => match call.route.gateways.first() {
                    Some(g) => {
                        let mut vars = vec![format!("leg_timeout={secs}")];
                        if let Some(n) = &call.caller_id.number
                            && n.bytes().all(|b| b.is_ascii_digit() || b == b'+')
                        {
                            vars.push(format!("origination_caller_id_number={n}"));
                        }
                        vec![format!(
                            "[{}]sofia/gateway/{}/{}",
                            vars.join(","),
                            g.freeswitch_name,
                            call.number
                        )]
                    }
                    None => {
                        out.skipped.push((label, "no gateway can take it"));
                        continue;
                    }
                },
                _ => {
                    out.skipped
                        .push((label, "no Outbound Route the caller may use reaches it"));
                    continue;
                }
            },
            _ => continue,
        };
        if sequential {
            remaining -= secs;
        }
        out.ringing.push(MemberRing {
            index: i,
            label,
            secs,
            legs,
        });
    }
    if !out.ringing.is_empty() {
        let sep = if sequential { "|" } else { "," };
        out.dial = Some(
            out.ringing
                .iter()
                .map(|m| m.legs.join(","))
                .collect::<Vec<_>>()
                .join(sep),
        );
        if commit
            && c.strategy == GroupStrategy::RoundRobin
            && let Some(first) = out.ringing.first()
        {
            live.take_turn(flow, i32::try_from(first.index).unwrap_or(-1));
        }
    }
    out
}

/// A time condition's branch now, with why.
pub fn condition_branch<'a>(
    domain: &'a CompiledDomain,
    flow: &'a CompiledFlow,
    c: &'a TimeConditionConfig,
    now: DateTime<Utc>,
) -> (bool, String, Target<'a>) {
    let (open, why) = is_open(c, domain.dialplan.time_zone(), flow.override_mode, now);
    let target = domain
        .dialplan
        .target(if open { &c.when_open } else { &c.when_closed });
    (open, why, target)
}

/// Where a menu's keys lead, with why (none pressed, or nothing valid: the final
/// destination).
pub fn menu_choice<'a>(
    domain: &'a CompiledDomain,
    c: &'a IvrConfig,
    keys: &'a str,
) -> (String, Target<'a>) {
    if let Some(o) = c.options.iter().find(|o| o.digits == keys) {
        return (
            format!("key {keys}: option"),
            domain.dialplan.target(&o.destination),
        );
    }
    if c.direct_dial && !keys.is_empty() && domain.dialplan.route(keys).is_some() {
        return (
            format!("key {keys}: the Extension dialled directly"),
            Target::Dial(keys),
        );
    }
    let why = if keys.is_empty() {
        "no valid key after the last try: the final destination".to_owned()
    } else {
        format!("key {keys} leads nowhere: the final destination")
    };
    (why, domain.dialplan.target(&c.when_no_choice))
}

/// The shortest and longest Extension number of a Domain (direct dialling from a menu).
pub fn extension_lengths(domain: &CompiledDomain) -> Option<(usize, usize)> {
    let lens = domain.dialplan.extension_numbers().map(str::len);
    let (mut lo, mut hi) = (usize::MAX, 0);
    for l in lens {
        lo = lo.min(l);
        hi = hi.max(l);
    }
    (hi > 0).then_some((lo, hi))
}

/// The cause a ring group's bridge ended with means the caller is gone.
pub fn caller_gone(cause: &str) -> bool {
    matches!(
        cause.trim().to_ascii_uppercase().as_str(),
        "ORIGINATOR_CANCEL" | "SUCCESS" | "NORMAL_CLEARING"
    )
}
