//! What the compiled view costs per SIP user, counted by the allocator: a Domain shaped like the
//! directory benchmark's (bench/directory: Extensions registering directly with an outbound
//! caller ID, each owning a fixed Device with a secret) is compiled, and the bytes it holds are
//! what the allocator handed out and did not get back.
//!
//! The budget is what lets one node hold a large provider (≤ 1 KiB of RSS per SIP user with the
//! process's own baseline and the allocator's overhead on top, `bench/directory`): the answers
//! themselves must stay well under it. The test prints the breakdown, so a change that makes
//! the view grow shows where.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;

use chrono::Utc;
use switchboard_domain::bindings::testkit::Kit;
use switchboard_domain::routing::callers::Callers;
use switchboard_domain::routing::dialplan::DialPlan;
use switchboard_domain::services::directory::DirectorySource;
use switchboard_esl_bridge::xml::directory::{CompileSettings, CompiledDomain};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// Bytes held by what `build` returns (kept alive until measured).
fn held_by<T>(build: impl FnOnce() -> T) -> (T, usize) {
    let before = dhat::HeapStats::get().curr_bytes;
    let value = build();
    let after = dhat::HeapStats::get().curr_bytes;
    (value, after.saturating_sub(before))
}

const PER_DOMAIN: usize = 1000;

/// Bytes of heap per SIP user the compiled Domain may hold (635 when this was last measured:
/// the directory's packed users 263, the dialplan 277 of which its callers 153, dial strings,
/// ring-group legs and mailboxes the rest 95; 736 before the legs and callers lost their spare
/// ids).
const BUDGET: usize = 680;

/// A Domain as the benchmark seeds it: Extensions 1000… registering directly, with a name, an
/// outbound caller ID and voicemail, each owning a fixed Device with its own secret.
fn source() -> DirectorySource {
    let mut k = Kit::new();
    let mut a1_hashes = HashMap::new();
    for i in 0..PER_DOMAIN {
        let ext = k.ext(&format!("{}", 1000 + i), &format!("Person {i}"));
        {
            let e = k.ext_mut(ext);
            e.sip_registration_enabled = true;
            e.outbound_caller_id.number = Some(format!("+4930{:07}", 1000 + i));
        }
        a1_hashes.insert(ext, format!("{:032x}", 0xfbae_1eb1_u128 * (i as u128 + 1)));
        let dev = k.fixed(&format!("Desk {i}"), &format!("d{i:07}"), ext);
        a1_hashes.insert(dev, format!("{:032x}", 0x244f_77a4_u128 * (i as u128 + 7)));
    }
    DirectorySource {
        bindings: k.b,
        name: "Tenant".into(),
        enabled: true,
        a1_hashes,
        routing: Default::default(),
    }
}

#[test]
fn the_compiled_view_holds_well_under_a_kib_per_sip_user() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let src = source();
    let settings = CompileSettings {
        cacheable_ms: 300_000,
    };
    let (domain, total) = held_by(|| CompiledDomain::compile(&src, &settings, Utc::now()));
    let users = domain.user_count();
    assert_eq!(
        users,
        2 * PER_DOMAIN,
        "every Device and Extension is a user"
    );
    // Parts of it, compiled again on their own.
    let (callers, callers_bytes) = held_by(|| Callers::compile(&src.bindings));
    drop(callers);
    let (plan, plan_bytes) =
        held_by(|| DialPlan::compile(&src.bindings, &src.routing, Utc::now(), |_, _| ()));
    drop(plan);
    let per_user = total / users;
    let breakdown = format!(
        "the dialplan without dial strings {} bytes per user (its callers {}), \
         the directory's users {} and the rest {}",
        plan_bytes / users,
        callers_bytes / users,
        domain.packed_user_bytes() / users,
        total.saturating_sub(plan_bytes + domain.packed_user_bytes()) / users
    );
    println!(
        "compiled Domain: {total} bytes for {users} SIP users, {per_user} per user: {breakdown}"
    );
    // Well under the 1 KiB per user of RSS the whole node may spend (see the module notes).
    assert!(
        per_user <= BUDGET,
        "{per_user} bytes per SIP user (budget {BUDGET}): {breakdown}"
    );
    // And the packed answers are what they were: one of each kind, byte for byte.
    let device = domain.user_document("d0000042").unwrap_or_default();
    assert!(device.contains("<user id=\"d0000042\""), "{device}");
    let ext = domain.user_document("1042").unwrap_or_default();
    assert!(ext.contains("+49300001042"), "{ext}");
}
