//! Embedding sopflow in another application: open the engine on a data folder, start a
//! hot-work permit, drive it through its three reviews and 行政部's seal, ask what a person may
//! do and what waits for them, and read its history.
//!
//! ```sh
//! cargo run --example embed -- /tmp/sopflow-demo
//! ```

use serde_json::json;
use sopflow::{Actor, Config, Engine, EngineError, Fire, Query, StartRequest};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let data_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "./data-embed".to_string());
    // Workflows and rules are read from `./workflows` and `./rules` (and `./calendars`);
    // pass other folders with `.sources(...)`. A file with an error fails the open.
    let engine = match Engine::open(Config::new(&data_dir)).await {
        Ok(engine) => engine,
        Err(EngineError::DefinitionsInvalid { report }) => {
            for finding in &report.diagnostics {
                eprintln!("{finding}");
            }
            anyhow::bail!("{} error(s) in the workflows", report.errors());
        }
        Err(other) => return Err(other.into()),
    };
    println!("{} warning(s)", engine.load_report().warnings());

    // The library trusts the roles its caller passes: authenticate people before this.
    let wang = Actor::new("wang", ["contractor"]);
    let started = engine
        .start(
            "hot_work_permit",
            StartRequest::new(wang.clone()).business_key("B2-031"),
        )
        .await?;
    let id = started.instance.id;
    println!("started {id} in {}", started.instance.state);

    engine
        .fire(
            &id,
            Fire::new("submit", wang.clone()).payload(json!({
                "notification_letter": "HW-2026-031",
                "applicant_seal": true,
                "operator_certificate": "T-4411",
            })),
        )
        .await?;

    // A refusal is an answer, not a failure: nothing is written.
    match engine.fire(&id, Fire::new("approve", wang)).await {
        Err(EngineError::Refused(refusal)) => println!("refused ({}): {refusal}", refusal.code()),
        other => anyhow::bail!("the contractor should not be able to approve: {other:?}"),
    }

    // What 李队长 may do on this permit, and what waits in his inbox.
    let li = Actor::new("li", ["order_dept"]);
    for action in engine.available(&id, &li).await? {
        println!(
            "li may {} ({})",
            action.event,
            action.title.unwrap_or_default()
        );
    }
    let tasks = engine.tasks(&li, Query::default(), false).await?;
    println!("li has {} task(s)", tasks.len());

    for (event, actor, role) in [
        ("approve", "li", "order_dept"),
        ("approve", "zhou", "cs_dept"),
        ("approve", "chen", "project_gm"),
        ("affix_seal", "zhao", "admin_dept"),
    ] {
        let outcome = engine
            .fire(&id, Fire::new(event, Actor::new(actor, [role])))
            .await?;
        println!("{actor} ({role}) {event}: now {}", outcome.instance.state);
    }
    let done = engine
        .fire(
            &id,
            Fire::new("distribute", Actor::new("zhou", ["cs_dept"])).payload(json!({
                "copy_to_applicant": true,
                "copy_to_order_dept": true,
                "archive_reference": "CS-ARCH-2026-088",
            })),
        )
        .await?;
    println!(
        "finished: {} in {}",
        done.instance.finished, done.instance.state
    );

    let permits = engine
        .list(Query {
            workflow: Some("hot_work_permit".into()),
            ..Query::default()
        })
        .await?;
    println!("{} permit(s) in the store", permits.len());
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
