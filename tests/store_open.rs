//! Opening the store: a folder in use, missing, damaged or not ours gets a clear error and is
//! left as it was.

mod support;

use sopflow::engine::{Config, Engine, EngineError, Fire, StartRequest};
use sopflow::machine::{Actor, Refusal};
use sopflow::store::StoreError;
use std::path::{Path, PathBuf};

fn config(data: &Path) -> Config {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Config::new(data).sources(vec![root.join("workflows"), root.join("rules")])
}

async fn with_one_instance(data: &Path) -> String {
    let engine = Engine::open(config(data)).await.expect("opens");
    engine
        .start(
            "hot_work_permit",
            StartRequest::new(Actor::new("wang", ["contractor"])),
        )
        .await
        .expect("starts")
        .instance
        .id
        .to_string()
}

fn store_error(result: Result<Engine, EngineError>) -> StoreError {
    match result {
        Err(EngineError::Store(e)) => e,
        other => panic!("expected a store error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_in_use_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let _holder = Engine::open(config(&data)).await.expect("opens");
    let err = store_error(Engine::open(config(&data)).await);
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("in use by another"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_folder_is_not_created_by_readers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("nowhere");
    let mut read_only = config(&data);
    read_only.create = false;
    let err = store_error(Engine::open(read_only).await);
    assert!(matches!(err, StoreError::Missing { .. }), "{err}");
    assert!(!data.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_of_other_files_is_not_taken_over() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("folder");
    std::fs::write(data.join("notes.txt"), "mine").expect("writes");
    let err = store_error(Engine::open(config(&data)).await);
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    let names: Vec<_> = std::fs::read_dir(&data)
        .expect("lists")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 1, "nothing was added: {names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_killed_before_its_marker_carries_on_as_a_new_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    // What a process killed while creating the store leaves: our lock and sled's files,
    // with or without the format record, and no marker yet.
    std::fs::create_dir_all(&data).expect("folder");
    std::fs::write(data.join("sopflow-lock"), "").expect("lock file");
    drop(sled::open(&data).expect("sled creates its files"));
    let mut read_only = config(&data);
    read_only.create = false;
    let err = store_error(Engine::open(read_only).await);
    assert!(matches!(err, StoreError::Missing { .. }), "{err}");
    let id = with_one_instance(&data).await;
    assert!(data.join("sopflow-store").exists());
    let engine = Engine::open(config(&data)).await.expect("reopens");
    engine.get(&id).await.expect("the instance is there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_store_is_reported_not_silently_emptied() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    with_one_instance(&data).await;
    // Overwrite the store's database file with garbage.
    let db = data.join("db");
    let len = std::fs::metadata(&db).expect("db file").len() as usize;
    std::fs::write(&db, vec![0xA5; len.max(4096)]).expect("damages");
    let err = store_error(Engine::open(config(&data)).await);
    assert!(
        matches!(
            err,
            StoreError::Corrupt { .. } | StoreError::NotAStore { .. } | StoreError::Io(_)
        ),
        "{err}"
    );
}

/// A store failure met while committing a step reaches the caller as the store typed it, not
/// as a message: here a damaged snapshot on disk, read by the checkpoint that the commit of
/// the next step runs first. The step is not written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_while_committing_reaches_the_caller_typed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let id = with_one_instance(&data).await;
    // Closed: damage the snapshot the next instance will have (`hot_work_permit-2`).
    {
        let db = support::raw_sled(&data);
        let instances = db.open_tree("instances").expect("instances");
        instances
            .insert("hot_work_permit-2", b"{damaged".as_slice())
            .expect("writes");
        db.flush().expect("flushes");
    }
    let mut config = config(&data);
    config.checkpoint_every = 1;
    let engine = Engine::open(config).await.expect("reopens");
    let wang = Actor::new("wang", ["contractor"]);
    let second = engine
        .start("hot_work_permit", StartRequest::new(wang.clone()))
        .await
        .expect("starts: its snapshot is only in memory so far");
    assert_eq!(second.instance.id, "hot_work_permit-2");
    let failed = engine
        .fire(
            &id,
            Fire::new("submit", wang).payload(serde_json::json!({
                "notification_letter": "HW-2026-031",
                "applicant_seal": true,
                "operator_certificate": "T-4411",
            })),
        )
        .await;
    match failed {
        Err(EngineError::Store(StoreError::BadRecord { key, .. })) => {
            assert_eq!(key, "hot_work_permit-2")
        }
        other => panic!("expected the store's BadRecord, got {other:?}"),
    }
    assert_eq!(engine.history(&id).await.expect("history").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let engine = Engine::open(config(&data)).await.expect("opens");
    let contractor = Actor::new("wang", ["contractor"]);
    let unknown = engine
        .start("hot_work_permt", StartRequest::new(contractor.clone()))
        .await
        .expect_err("unknown workflow");
    assert!(
        unknown
            .to_string()
            .contains("did you mean `hot_work_permit`"),
        "{unknown}"
    );
    let id = engine
        .start("hot_work_permit", StartRequest::new(contractor.clone()))
        .await
        .expect("starts")
        .instance
        .id
        .to_string();
    let missing = engine
        .fire(
            "hot_work_permit-999",
            Fire::new("submit", contractor.clone()),
        )
        .await;
    assert!(
        matches!(missing, Err(EngineError::UnknownInstance { .. })),
        "{missing:?}"
    );

    let list = engine
        .fire(
            &id,
            Fire::new("submit", contractor.clone()).payload(serde_json::json!(["x"])),
        )
        .await;
    assert!(
        matches!(list, Err(EngineError::NotAnObject { .. })),
        "{list:?}"
    );

    let huge = serde_json::json!({"notification_letter": "x".repeat(2 * 1024 * 1024)});
    let too_large = engine
        .fire(&id, Fire::new("submit", contractor.clone()).payload(huge))
        .await;
    assert!(
        matches!(too_large, Err(EngineError::PayloadTooLarge { .. })),
        "{too_large:?}"
    );

    let typo = engine
        .fire(
            &id,
            Fire::new("submit", contractor.clone())
                .payload(serde_json::json!({"aplicant_seal": true})),
        )
        .await;
    match typo {
        Err(EngineError::Refused(Refusal::UnknownField { hint, .. })) => {
            assert!(hint.contains("applicant_seal"), "{hint}")
        }
        other => panic!("expected unknown field, got {other:?}"),
    }
    let no_event = engine
        .fire(&id, Fire::new("approve", contractor.clone()))
        .await;
    assert!(
        matches!(
            no_event,
            Err(EngineError::Refused(Refusal::UnknownEvent { .. }))
        ),
        "{no_event:?}"
    );
    let impostor = engine
        .fire(&id, Fire::new("submit", Actor::new("x", ["system"])))
        .await;
    assert!(
        matches!(impostor, Err(EngineError::Refused(Refusal::ReservedRole))),
        "{impostor:?}"
    );
    let reused = engine
        .start(
            "hot_work_permit",
            StartRequest::new(contractor.clone()).idempotency_key("once"),
        )
        .await
        .expect("starts");
    let misused = engine
        .fire(
            &reused.instance.id,
            Fire::new("withdraw", contractor).idempotency_key("once"),
        )
        .await;
    assert!(
        matches!(misused, Err(EngineError::KeyReused { .. })),
        "{misused:?}"
    );
    assert_eq!(engine.history(&id).await.expect("history").len(), 1);
    assert_eq!(
        engine
            .history(&reused.instance.id)
            .await
            .expect("history")
            .len(),
        1
    );
}

/// The store keeps business keys, idempotency keys and filters in keys whose parts a NUL
/// separates: a control character in one is refused at the engine, before any lock is taken or
/// number given, as a typed error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_with_control_characters_are_refused_before_anything_is_written() {
    use sopflow::store::Query;
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::open(config(&dir.path().join("data")))
        .await
        .expect("opens");
    let wang = Actor::new("wang", ["contractor"]);
    for bad in ["B2-031\0", "B2\n031", "\u{7f}"] {
        let start = engine
            .start(
                "hot_work_permit",
                StartRequest::new(wang.clone()).business_key(bad),
            )
            .await;
        match start {
            Err(EngineError::Refused(Refusal::IllTyped { ref field, .. })) => {
                assert_eq!(field, "business_key")
            }
            other => panic!("{bad:?}: expected ill_typed, got {other:?}"),
        }
        let start = engine
            .start(
                "hot_work_permit",
                StartRequest::new(wang.clone()).idempotency_key(bad),
            )
            .await;
        match start {
            Err(EngineError::BadKey { field, ref value }) => {
                assert_eq!((field, value.as_str()), ("idempotency_key", bad))
            }
            other => panic!("{bad:?}: expected bad_key, got {other:?}"),
        }
    }
    // Nothing was written, and no number was given: the first start is `-1`.
    let id = engine
        .start("hot_work_permit", StartRequest::new(wang.clone()))
        .await
        .expect("starts")
        .instance
        .id
        .to_string();
    assert_eq!(id, "hot_work_permit-1");
    let fired = engine
        .fire(
            &id,
            Fire::new("withdraw", wang.clone()).idempotency_key("k\0"),
        )
        .await
        .expect_err("a NUL in the key");
    assert_eq!(fired.code(), "bad_key");
    assert!(fired.is_caller_mistake());
    assert_eq!(engine.history(&id).await.expect("history").len(), 1);
    let filters = [
        Query {
            business_key: Some("B2\0".into()),
            ..Query::default()
        },
        Query {
            state: Some("drafted\n".into()),
            ..Query::default()
        },
        Query {
            workflow: Some("hot_work_permit\0".into()),
            ..Query::default()
        },
    ];
    for (query, field) in filters
        .into_iter()
        .zip(["business_key", "state", "workflow"])
    {
        match engine.list(query.clone()).await {
            Err(EngineError::BadKey { field: named, .. }) => assert_eq!(named, field),
            other => panic!("{query:?}: expected bad_key, got {other:?}"),
        }
        match engine.tasks(&wang, query.clone(), false).await {
            Err(EngineError::BadKey { field: named, .. }) => assert_eq!(named, field),
            other => panic!("{query:?}: expected bad_key, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_written_by_an_older_engine_are_rebuilt_from_the_log_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let id = with_one_instance(&data).await;
    // Closed: make the store look as an engine before `started_by` and `roles` left it: the
    // snapshot without them, and no record of the snapshot shape.
    {
        let db = support::raw_sled(&data);
        let instances = db.open_tree("instances").expect("instances");
        let mut snapshot: serde_json::Value = serde_json::from_slice(
            &instances
                .get(id.as_bytes())
                .expect("reads")
                .expect("a snapshot"),
        )
        .expect("json");
        let fields = snapshot.as_object_mut().expect("an object");
        assert_eq!(fields.remove("started_by"), Some(serde_json::json!("wang")));
        fields.remove("roles");
        instances
            .insert(id.as_bytes(), serde_json::to_vec(&snapshot).expect("json"))
            .expect("writes");
        db.remove("snapshot_format").expect("removes");
        db.flush().expect("flushes");
    }
    let engine = Engine::open(config(&data)).await.expect("reopens");
    let instance = engine.get(&id).await.expect("the instance");
    assert_eq!(instance.started_by.as_deref(), Some("wang"));
    assert_eq!(instance.roles, ["contractor"]);
    assert!(
        engine.may_read(&instance, &Actor::new("wang", ["contractor"])),
        "the starter reads it again"
    );
    let checked = tokio::task::spawn_blocking(move || {
        let mut problems = Vec::new();
        engine
            .verify_store(chrono::Utc::now(), &mut |p| problems.push(p), &mut |_| {})
            .expect("verifies");
        problems
    })
    .await
    .expect("joins");
    assert!(checked.is_empty(), "{checked:?}");
}

/// A log key is the instance id, a NUL and the big-endian sequence number, so the key range of
/// `hot_work_permit-1\0` holds the later entries of `hot_work_permit-1`: a history read must
/// compare ids whole, and the engine refuses ids with control characters outright.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_is_matched_whole_never_as_a_prefix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let id = {
        let engine = Engine::open(config(&data)).await.expect("opens");
        let wang = Actor::new("wang", ["contractor"]);
        let id = engine
            .start("hot_work_permit", StartRequest::new(wang.clone()))
            .await
            .expect("starts")
            .instance
            .id
            .to_string();
        engine
            .fire(&id, Fire::new("withdraw", wang))
            .await
            .expect("withdraws");
        for bad in [format!("{id}\0"), format!("{id}\0\0"), format!("{id}\n")] {
            match engine.history(&bad).await {
                Err(EngineError::BadInstanceId { .. }) => {}
                other => panic!("{bad:?}: expected bad_instance_id, got {other:?}"),
            }
            match engine.get(&bad).await {
                Err(EngineError::BadInstanceId { .. }) => {}
                other => panic!("{bad:?}: expected bad_instance_id, got {other:?}"),
            }
        }
        id
    };
    let store = sopflow::store::SledStore::open(&data, Default::default()).expect("reopens");
    use sopflow::store::Store;
    assert_eq!(store.history(&id).expect("reads").len(), 2);
    for other in [
        format!("{id}\0"),
        format!("{id}\0\0"),
        format!("{id}\0\0\0\0\0\0\0\0"),
    ] {
        assert!(
            store.history(&other).expect("reads").is_empty(),
            "{other:?} is not {id}"
        );
    }
}
