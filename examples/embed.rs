//! Embedding sopflow in another application: open the engine on a data folder, start a
//! hot-work permit, drive it through its four sign-offs, and read its history.
//!
//! ```sh
//! cargo run --example embed -- /tmp/sopflow-demo
//! ```

use serde_json::json;
use sopflow::engine::{Config, Engine, EngineError, Fire, StartRequest};
use sopflow::machine::Actor;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let data_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "./data-embed".to_string());
    // Workflows and rules are read from `workflows/` and `rules/`; pass other folders with
    // `.sources(...)`.
    let engine = Engine::open(Config::new(&data_dir)).await?;

    let contractor = Actor::new("wang.wei", ["contractor"]);
    let started = engine
        .start(
            "hot_work_permit",
            StartRequest::new(contractor.clone()).business_key("B2-031 装修"),
        )
        .await?;
    let id = started.instance.id;
    println!("started {id} in {}", started.instance.state);

    engine
        .fire(
            &id,
            Fire::new("submit", contractor.clone()).payload(json!({
                "notification_letter": "HW-2026-031",
                "applicant_seal": true,
                "operator_certificate": "T-4411",
            })),
        )
        .await?;

    // A refusal is an answer, not a failure: nothing is written.
    match engine.fire(&id, Fire::new("approve", contractor)).await {
        Err(EngineError::Refused(reason)) => println!("refused ({}): {reason}", reason.code()),
        other => anyhow::bail!("the contractor should not be able to approve: {other:?}"),
    }

    for (event, actor, role) in [
        ("approve", "li.na", "order_dept"),
        ("approve", "zhao.min", "cs_dept"),
        ("approve", "chen.gang", "project_gm"),
        ("affix_seal", "sun.li", "admin_dept"),
    ] {
        let outcome = engine
            .fire(&id, Fire::new(event, Actor::new(actor, [role])))
            .await?;
        println!("{actor} ({role}) {event}: now {}", outcome.instance.state);
    }
    let done = engine
        .fire(
            &id,
            Fire::new("distribute", Actor::new("zhao.min", ["cs_dept"]))
                .payload(json!({"archive_reference": "CS-ARCH-2026-088", "copy_to_applicant": true, "copy_to_order_dept": true})),
        )
        .await?;
    println!(
        "finished: {} in {}",
        done.instance.finished, done.instance.state
    );

    for entry in engine.history(&id).await? {
        println!(
            "#{} {} {} -> {} by {} ({}) {}",
            entry.seq,
            entry.event,
            entry.from.as_deref().unwrap_or("-"),
            entry.to,
            entry.actor,
            entry.role.as_deref().unwrap_or("-"),
            &entry.hash[..12],
        );
    }
    Ok(())
}
