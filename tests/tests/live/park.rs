//! Call park through the real FreeSWITCH's mod_valet_parking: `*71` parks a call in slot 71 of
//! the Domain's own lot and picks it up again, `*70` parks in the first free slot, and a park
//! key's lamp (a BLF on `park+71@<domain>`) shows the parked call. Seen from the phones (what
//! sipp received), from mod_valet_parking's own events and `valet_info`, and from FreeSWITCH's
//! bridge event.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::dtmf::{Key, notifies};
use crate::harness::{Credentials, EventWatch, Live, Outcome, Phone, SIPP_DIR};
use crate::sipp_calls::{dial, dial_with, extension_with_phone, final_answer, requests, sent};

const LOT_DOMAIN: &str = "lot.park.live.test";
const OTHER_DOMAIN: &str = "other.park.live.test";

/// The value of header `name` in an Event Socket event body (`event plain`, values
/// percent-encoded as sent).
fn header<'a>(event: &'a str, name: &str) -> &'a str {
    event
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no {name} in the event:\n{event}"))
}

/// `Valet-Lot-Name` as `event plain` sends it (`@` percent-encoded).
fn lot_line(sip_domain: &str) -> String {
    format!("Valet-Lot-Name: park%40{sip_domain}")
}

/// Waits for mod_valet_parking's `action` (`hold`, `bridge`, `exit`) on `slot` of
/// `sip_domain`'s lot; the event.
async fn valet(events: &EventWatch, action: &str, sip_domain: &str, slot: &str) -> String {
    events
        .wait_for(&[
            "Event-Subclass: valet_parking%3A%3Ainfo",
            &format!("Action: {action}"),
            &lot_line(sip_domain),
            &format!("Valet-Extension: {slot}"),
        ])
        .await
}

/// The messages sipp received, each with the time it logged it (`YYYY-MM-DD HH:MM:SS.ffffff`:
/// comparable as text), from its message log (`-trace_msg`).
fn received_at(messages: &str) -> Vec<(&str, &str)> {
    messages
        .split("----------------------------------------------- ")
        .filter_map(|entry| {
            let (stamp, rest) = entry.split_once('\n')?;
            let (what, message) = rest.split_once("\n\n")?;
            what.contains("message received")
                .then(|| (stamp.trim(), message.trim_start()))
        })
        .collect()
}

impl Phone {
    /// A park key's lamp: subscribes as `c` to `park+<slot>@<c's domain>` (dialog events)
    /// until the lamp has gone on and off, or no NOTIFY came for `quiet_ms`.
    async fn watch_park(&self, c: &Credentials, slot: &str, quiet_ms: u32) -> Outcome {
        let template = std::fs::read_to_string(Path::new(SIPP_DIR).join("watch_park.xml")).unwrap();
        let scenario = self
            .dir
            .join(format!("{}.xml", uuid::Uuid::new_v4().simple()));
        std::fs::write(
            &scenario,
            template.replace("QUIET_MS", &quiet_ms.to_string()),
        )
        .unwrap();
        self.run_for(
            scenario.to_str().unwrap(),
            &[
                ("user", &c.user),
                ("domain", &c.realm),
                ("slot", slot),
                ("ua", &self.user_agent),
            ],
            &["-au", &c.user, "-ap", &c.password],
            quiet_ms / 1000 + 40,
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_parked_on_a_slot_is_picked_up_from_its_domain_and_never_from_another() {
    let live = Live::start().await;
    let lot = live.domain(LOT_DOMAIN).await;
    let other = live.domain(OTHER_DOMAIN).await;
    let (_, parker) = extension_with_phone(&live, &lot, "201", json!({})).await;
    let (_, picker) = extension_with_phone(&live, &lot, "202", json!({})).await;
    let (_, auto) = extension_with_phone(&live, &lot, "203", json!({})).await;
    let (_, watcher) = extension_with_phone(&live, &lot, "204", json!({})).await;
    let (_, stranger) = extension_with_phone(&live, &other, "201", json!({})).await;
    // One watch per Domain: the two Domains' calls run side by side, and a watch finds its
    // events in order.
    let events = live
        .fs
        .watch("CHANNEL_BRIDGE CUSTOM valet_parking::info")
        .await;
    let other_events = live.fs.watch("CUSTOM valet_parking::info").await;

    let parker_phone = Phone::new(&live.fs, "LivePark/201");
    let picker_phone = Phone::new(&live.fs, "LivePick/202");
    let auto_phone = Phone::new(&live.fs, "LiveParkAny/203");
    let watcher_phone = Phone::new(&live.fs, "LiveParkKey/204");
    let stranger_phone = Phone::new(&live.fs, "LiveStranger/201");

    // 204's park key watches slot 71 from before anything is parked.
    let lamp = watcher_phone.watch_park(&watcher, "71", 8000);
    // 201 dials *71 and holds the call until FreeSWITCH ends it.
    let parked = async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        dial_with(&live.fs, &parker_phone, &parker, "*71", "call_hold.xml").await
    };
    let script = async {
        let hold = valet(&events, "hold", LOT_DOMAIN, "71").await;
        let parked_uuid = header(&hold, "Unique-ID").to_owned();
        let info = live.fs.api(&format!("valet_info park@{LOT_DOMAIN}")).await;
        assert!(
            info.contains(&format!("<extension uuid=\"{parked_uuid}\">71</extension>")),
            "201's call waits in slot 71 of its Domain's lot: {info}"
        );

        // Meanwhile a phone of another Domain dials *71: its own lot's slot 71 is free, so it
        // is parked there; 201's call stays where it is. And 203 dials *70: slot 71 is taken,
        // so it is parked in 72.
        let (strange, any) = tokio::join!(
            dial(&live.fs, &stranger_phone, &stranger, "*71"),
            auto_phone.dial_press_and_hang_up(&auto, "*70", &[Key::Pause(100)], 4000),
        );
        assert_eq!(final_answer(&strange), Some(200), "{}", strange.messages);
        let stranger_hold = valet(&other_events, "hold", OTHER_DOMAIN, "71").await;
        let stranger_uuid = header(&stranger_hold, "Unique-ID").to_owned();
        assert_ne!(stranger_uuid, parked_uuid);
        assert_eq!(final_answer(&any), Some(200), "{}", any.messages);
        let any_hold = valet(&events, "hold", LOT_DOMAIN, "72").await;
        assert_ne!(header(&any_hold, "Unique-ID"), parked_uuid);
        let info = live.fs.api(&format!("valet_info park@{LOT_DOMAIN}")).await;
        assert!(
            info.contains(&format!("<extension uuid=\"{parked_uuid}\">71</extension>")),
            "the other Domain's *71 did not take 201's call: {info}"
        );
        let info = live.fs.api("valet_info").await;
        assert!(
            !info.contains(&stranger_uuid),
            "the stranger's call left its own lot when it hung up: {info}"
        );

        // 202, of the same Domain, dials *71: bridged to the parked call.
        let picked = dial(&live.fs, &picker_phone, &picker, "*71").await;
        let bridge = valet(&events, "bridge", LOT_DOMAIN, "71").await;
        assert_eq!(header(&bridge, "Unique-ID"), parked_uuid, "{bridge}");
        let picker_uuid = header(&bridge, "Bridge-To-UUID").to_owned();
        assert_ne!(picker_uuid, stranger_uuid, "{bridge}");
        let bridged = events.wait_for(&["Event-Name: CHANNEL_BRIDGE"]).await;
        assert!(
            bridged.contains(&parked_uuid) && bridged.contains(&picker_uuid),
            "FreeSWITCH bridged the parked call to 202's: {bridged}"
        );
        assert_eq!(final_answer(&picked), Some(200), "{}", picked.messages);
        assert!(
            requests(&sent(&picked.messages)).contains(&"BYE") && picked.last_status == Some(200),
            "202 stayed on the call with 201 until it hung up: {}",
            picked.messages
        );
        let info = live.fs.api(&format!("valet_info park@{LOT_DOMAIN}")).await;
        assert!(
            !info.contains(&parked_uuid),
            "slot 71 is free again: {info}"
        );
        picked
    };
    let (lamp, parked, picked) = tokio::join!(lamp, parked, script);

    let picked_at = received_at(&picked.messages)
        .into_iter()
        .find(|(_, m)| m.starts_with("SIP/2.0 200") && m.contains(" INVITE"))
        .map(|(at, _)| at)
        .unwrap_or_else(|| panic!("202's call was answered: {}", picked.messages));

    // 201's call: answered, held in the lot, and ended by FreeSWITCH only after 202 took it
    // (when 202 hung up).
    assert_eq!(final_answer(&parked), Some(200), "{}", parked.messages);
    let parked_ended_at = received_at(&parked.messages)
        .into_iter()
        .find(|(_, m)| m.starts_with("BYE "))
        .map(|(at, _)| at)
        .unwrap_or_else(|| panic!("FreeSWITCH ended 201's call: {}", parked.messages));
    assert!(
        parked_ended_at > picked_at,
        "201's parked call stayed up until 202 had taken it: {}",
        parked.messages
    );

    // The park key: dark, lit while 201's call was parked (the other Domain's slot 71 and
    // slot 72 left it alone), dark again once 202 took the call, and not before.
    let lit =
        |n: &str| n.contains("<state>early</state>") || n.contains("<state>confirmed</state>");
    let notifies = notifies(&lamp);
    let on = notifies
        .iter()
        .position(|n| lit(n))
        .unwrap_or_else(|| panic!("the park key lit: {}", lamp.messages));
    assert!(
        notifies[on].contains(&format!("sip:71@{LOT_DOMAIN};proto=park")),
        "{}",
        notifies[on]
    );
    let lamp_at = received_at(&lamp.messages);
    let off_at = lamp_at
        .iter()
        .filter(|(_, m)| m.starts_with("NOTIFY "))
        .skip_while(|(_, m)| !lit(m))
        .find(|(_, m)| m.contains("<state>terminated</state>"))
        .map(|(at, _)| *at)
        .unwrap_or_else(|| panic!("the park key went dark: {}", lamp.messages));
    assert!(
        off_at >= picked_at,
        "the park key stayed lit until 202 took the call (dark at {off_at}, taken at \
         {picked_at}): {}",
        lamp.messages
    );
}
