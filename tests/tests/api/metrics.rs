//! `/metrics` in the Prometheus text format.

use reqwest::header::CONTENT_TYPE;
use switchboard_tests::{TestApp, both_databases};

both_databases!(requests_are_counted_per_endpoint_in_prometheus_text,);

async fn requests_are_counted_per_endpoint_in_prometheus_text(app: TestApp) {
    assert_eq!(app.get("/health/live").await.status(), 200);
    assert_eq!(app.get("/no/such/route-for-metrics").await.status(), 404);

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();

    let live = text
        .lines()
        .find(|line| {
            line.starts_with("switchboard_http_requests_total{")
                && line.contains("endpoint=\"/health/live\"")
        })
        .unwrap_or_else(|| panic!("no request counter for /health/live in:\n{text}"));
    assert!(live.contains("status=\"200\""), "{live}");
    assert!(
        live.ends_with(" 1"),
        "one request to /health/live was made: {live}"
    );
    // Unknown paths share one label, so scanners cannot blow up the number of series.
    assert!(
        !text.contains("route-for-metrics"),
        "an unmatched path became a label:\n{text}"
    );
}
