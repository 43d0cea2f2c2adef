//! Line facts between nodes: the node driving a FreeSWITCH node learns who registered and who is
//! on a call; the others need it for presence, ring groups and the live stream.
//!
//! The facts that moved go out as a PostgreSQL notification on [`CHANNEL`] (`{"node": …,
//! "facts": …}`, split when it would pass PostgreSQL's 8000-byte limit) and every other node
//! applies them without announcing anything: the driving node's `presence.changed` reaches
//! them through the change log. Registrations are also stored, so a node that starts (or
//! reconnects) reads them from the database; a call already under way when a node starts is
//! learnt at its next state change.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use sea_orm::sqlx::postgres::{PgListener, PgPool};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::services::presence::{LineFacts, LineStates};

/// The PostgreSQL notification channel of line facts.
pub const CHANNEL: &str = "switchboard_lines";

/// PostgreSQL refuses notification payloads from 8000 bytes on.
const MAX_PAYLOAD: usize = 7900;

#[derive(Debug, Serialize, Deserialize)]
struct Message {
    node: String,
    #[serde(flatten)]
    facts: LineFacts,
}

/// Shares `lines` with the other nodes on PostgreSQL (nothing on SQLite).
pub fn start(db: &DatabaseConnection, lines: &Arc<LineStates>, node: &str) {
    let Some(pool) = super::side_pool(db) else {
        return;
    };
    let (tx, rx) = mpsc::unbounded_channel();
    lines.set_fanout(Arc::new(move |facts| {
        let _ = tx.send(facts);
    }));
    tokio::spawn(send_forever(pool.clone(), rx, node.to_owned()));
    tokio::spawn(listen_forever(pool, Arc::clone(lines), node.to_owned()));
}

async fn send_forever(pool: PgPool, mut rx: mpsc::UnboundedReceiver<LineFacts>, node: String) {
    while let Some(facts) = rx.recv().await {
        for payload in payloads(&node, facts) {
            let sent = sea_orm::sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(&payload)
                .execute(&pool)
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "telling the other nodes about line states failed");
            }
        }
    }
}

/// The facts as notification payloads, each under the limit.
fn payloads(node: &str, facts: LineFacts) -> Vec<String> {
    let message = Message {
        node: node.to_owned(),
        facts,
    };
    let Ok(json) = serde_json::to_string(&message) else {
        return Vec::new();
    };
    if json.len() <= MAX_PAYLOAD || message.facts.facts.len() < 2 {
        return if json.len() <= MAX_PAYLOAD {
            vec![json]
        } else {
            Vec::new()
        };
    }
    let mut facts = message.facts;
    let second = facts.facts.split_off(facts.facts.len() / 2);
    let mut out = payloads(node, facts.clone());
    out.extend(payloads(
        node,
        LineFacts {
            domain_id: facts.domain_id,
            facts: second,
        },
    ));
    out
}

async fn listen_forever(pool: PgPool, lines: Arc<LineStates>, node: String) {
    loop {
        let listener = async {
            let mut l = PgListener::connect_with(&pool).await?;
            l.listen(CHANNEL).await?;
            Ok::<_, sea_orm::sqlx::Error>(l)
        }
        .await;
        let mut listener = match listener {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other nodes' line states; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => match serde_json::from_str::<Message>(n.payload()) {
                    Ok(m) if m.node != node => lines.apply_remote(&m.facts),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "an unreadable line-state notification"),
                },
                Ok(None) => {
                    tracing::info!("the line-state listener reconnected");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the line-state listener failed; reconnecting");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::presence::LineFact;

    #[test]
    fn large_fact_sets_are_split_under_the_payload_limit() {
        let facts = LineFacts {
            domain_id: uuid::Uuid::now_v7(),
            facts: (0..400)
                .map(|i| LineFact {
                    user: format!("device-{i:05}-with-a-long-name"),
                    registered: i % 2 == 0,
                    state: None,
                })
                .collect(),
        };
        let out = payloads("node-a", facts.clone());
        assert!(out.len() > 1);
        assert!(out.iter().all(|p| p.len() <= MAX_PAYLOAD));
        let back: Vec<LineFact> = out
            .iter()
            .flat_map(|p| {
                serde_json::from_str::<Message>(p)
                    .map(|m| m.facts.facts)
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(back, facts.facts);
    }
}
