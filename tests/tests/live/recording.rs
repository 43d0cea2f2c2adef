//! The recording policy through the real switch (issue 14): an Extension that records the calls
//! it places gets every answered call written under its Domain's directory; one that records on
//! demand gets a recording only when a side presses `*2` during the call.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::dtmf::Key;
use crate::harness::{Live, Phone};
use crate::sipp_calls::{Callee, Ringing, dial, extension_with_phone, final_answer, register};

/// Every `.wav` below `dir` (one directory per day).
fn recordings(dir: &Path) -> Vec<PathBuf> {
    let Ok(days) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = days
        .flatten()
        .filter_map(|d| std::fs::read_dir(d.path()).ok())
        .flat_map(|files| files.flatten().map(|f| f.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    out.sort();
    out
}

/// Waits (up to 5 s) until `dir` holds `count` recordings, each more than a WAV header.
async fn recordings_until(dir: &Path, count: usize) -> Vec<PathBuf> {
    for _ in 0..50 {
        let found = recordings(dir);
        let written = found
            .iter()
            .all(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 44));
        if found.len() == count && written {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "expected {count} recordings in {}, found {:?}",
        dir.display(),
        recordings(dir)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_records_answered_calls_and_on_demand_only_what_star_2_toggles_on() {
    let live = Live::start().await;
    let sip = "rec.calls.live.test";
    let domain = live.domain(sip).await;
    let (_, recorded) = extension_with_phone(
        &live,
        &domain,
        "200",
        json!({"recording": {"outbound": "always"}}),
    )
    .await;
    let (_, plain) = extension_with_phone(&live, &domain, "203", json!({})).await;
    let (_, desk) =
        extension_with_phone(&live, &domain, "201", json!({"voicemail_enabled": false})).await;
    let (_, asks) = extension_with_phone(
        &live,
        &domain,
        "202",
        json!({"voicemail_enabled": false, "recording": {"inbound": "on_demand"}}),
    )
    .await;
    // The default `freeswitch.recordings_dir` is FreeSWITCH's own; each Domain has its own
    // directory below it.
    let base = live.fs.api("global_getvar recordings_dir").await;
    let dir = Path::new(base.trim()).join(sip);
    let _ = std::fs::remove_dir_all(&dir);

    let desk_phone = Phone::new(&live.fs, "RecDesk/201");
    let asks_phone = Phone::new(&live.fs, "RecDesk/202");
    register(&live, &desk_phone, &desk).await;
    register(&live, &asks_phone, &asks).await;

    // 200 records what it places: the answered call is on disk, named by the call.
    let answers = Ringing::start(&live.fs, &desk_phone, Callee::Answers, 30).await;
    let call = dial(&live.fs, &Phone::new(&live.fs, "Rec/200"), &recorded, "201").await;
    assert_eq!(final_answer(&call), Some(200), "{}", call.messages);
    answers.finish().await;
    let first = recordings_until(&dir, 1).await;

    // 203 records nothing and 202 only on demand: a call nobody toggles is not recorded…
    let answers = Ringing::start(&live.fs, &asks_phone, Callee::Answers, 30).await;
    let call = dial(&live.fs, &Phone::new(&live.fs, "Rec/203"), &plain, "202").await;
    assert_eq!(final_answer(&call), Some(200), "{}", call.messages);
    answers.finish().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(recordings(&dir), first, "nobody pressed *2");

    // …and one where the caller presses *2 is.
    let answers = Ringing::start(&live.fs, &asks_phone, Callee::Answers, 30).await;
    let pressed = Phone::new(&live.fs, "Rec/203")
        .dial_press_and_hang_up(&plain, "202", &[Key::Pause(600), Key::Press("*2")], 4000)
        .await;
    assert_eq!(final_answer(&pressed), Some(200), "{}", pressed.messages);
    answers.finish().await;
    let both = recordings_until(&dir, 2).await;
    assert!(both.contains(&first[0]));
}
