//! FreeSWITCH starts the configuration we ship without a complaint, and asks switchboard.

use crate::harness::Live;

/// Lines FreeSWITCH logs at WARNING or above that say nothing about our configuration.
const NOT_ABOUT_THE_CONFIGURATION: &[&str] = &[
    // sofia logs its message threads' start at WARNING level.
    "MSG Thread 0 Started",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeswitch_starts_the_shipped_configuration_without_a_warning() {
    let live = Live::start().await;
    let status = live.fs.api("sofia status").await;
    assert!(status.contains("internal"), "the profile runs: {status}");
    let console = live.fs.console();
    let complaints: Vec<&str> = console
        .lines()
        .filter(|l| {
            ["[WARNING]", "[ERR]", "[CRIT]", "[ALERT]"]
                .iter()
                .any(|level| l.contains(level))
        })
        .filter(|l| !NOT_ABOUT_THE_CONFIGURATION.iter().any(|ok| l.contains(ok)))
        .collect();
    assert!(
        complaints.is_empty(),
        "FreeSWITCH complained at start:\n{}",
        complaints.join("\n")
    );
    assert!(
        !console.to_lowercase().contains("deprecated"),
        "a deprecated setting:\n{console}"
    );
}
