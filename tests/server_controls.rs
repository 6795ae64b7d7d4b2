//! The workflows' controls through the server: what a step may write, who may start, and who
//! may read, answered the same over HTTP and in the console as in the pure step; an instance a
//! caller may not read is a 404, as if it did not exist, on every route that shows it.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sopflow::server::auth::token_hash;
use support::{TestServer, client};

/// The expense chain's people, each with a token `demo-<id>`; `sun` is a customer, `xiao` and
/// `zhang` two applicants, `audit` an auditor, `owner` a process owner.
const PEOPLE: &[(&str, &[&str])] = &[
    ("xiao", &["applicant"]),
    ("zhang", &["applicant"]),
    ("li", &["dept_head"]),
    ("qian", &["finance_supervisor"]),
    ("zhou", &["property_gm"]),
    ("sun_fin", &["branch_finance_head"]),
    ("wu", &["branch_gm"]),
    ("ruian", &["landlord"]),
    ("sun", &["owner_occupant", "owner", "customer"]),
    ("wang", &["contractor"]),
    ("audit", &["auditor"]),
    ("owner", &["process_owner"]),
];

async fn server() -> TestServer {
    let mut users = String::from("users:\n");
    for (id, roles) in PEOPLE {
        users.push_str(&format!(
            "  - id: {id}\n    roles: [{}]\n    tokens: [\"{}\"]\n",
            roles.join(", "),
            token_hash(&support::token(id))
        ));
    }
    support::spawn_with_users(&users).await
}

struct Api {
    server: TestServer,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        user: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, self.server.url(path))
            .bearer_auth(support::token(user));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, user: &str, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, user, path, None).await
    }

    async fn post(&self, user: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, user, path, Some(body))
            .await
    }

    async fn fire(&self, user: &str, id: &str, event: &str, body: Value) -> (StatusCode, Value) {
        self.post(user, &format!("/api/instances/{id}/events/{event}"), body)
            .await
    }

    /// The instance as the auditor reads it.
    async fn instance(&self, id: &str) -> Value {
        let (status, body) = self.get("audit", &format!("/api/instances/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["instance"].clone()
    }

    async fn start_expense(&self, applicant: &str, amount: u32) -> String {
        let (status, body) = self
            .post(
                applicant,
                "/api/instances",
                json!({"workflow": "expense_approval"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["instance"]["id"].as_str().expect("an id").to_string();
        let submitted = self
            .fire(
                applicant,
                &id,
                "submit",
                json!({"payload": {"department": "工程部", "expense_item": "电梯大修", "amount": amount, "budget_type": "in"}}),
            )
            .await;
        assert_eq!(submitted.0, StatusCode::OK, "{}", submitted.1);
        id
    }
}

async fn api() -> Api {
    Api {
        server: server().await,
        http: client(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approver_cannot_rewrite_the_amount_and_the_request_still_goes_to_the_landlord() {
    let api = api().await;
    let id = api.start_expense("xiao", 50_000).await;
    let (status, body) = api.fire("li", &id, "approve", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let before = api.instance(&id).await;

    // The finance supervisor approves and sends 100 yuan with it.
    let (status, body) = api
        .fire("qian", &id, "approve", json!({"payload": {"amount": 100}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "field_not_writable", "{body}");
    assert_eq!(api.instance(&id).await, before, "the refusal wrote nothing");

    for (who, next) in [
        ("qian", "property_gm_review"),
        ("zhou", "branch_finance_review"),
        ("sun_fin", "branch_gm_review"),
        ("wu", "landlord_review"),
        ("ruian", "approved"),
    ] {
        let (status, body) = api.fire(who, &id, "approve", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{who}: {body}");
        assert_eq!(body["instance"]["state"], next, "{who}");
    }
    let done = api.instance(&id).await;
    assert_eq!(done["data"]["amount"], json!(50000.0));
    assert_eq!(done["finished"], true);
    support::assert_store_clean(&api.server).await;
    api.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_customer_sees_only_their_own_instances() {
    let api = api().await;
    let permit = {
        let (status, body) = api
            .post(
                "wang",
                "/api/instances",
                json!({"workflow": "hot_work_permit"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["instance"]["id"].as_str().expect("an id").to_string()
    };
    let expense = api.start_expense("xiao", 800).await;
    let (status, body) = api
        .post(
            "sun",
            "/api/instances",
            json!({"workflow": "repair_request", "data": {"location": "B2-031", "fault": "卫生间漏水"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let own = body["instance"]["id"].as_str().expect("an id").to_string();

    // sun reads their own repair request, and nothing else exists for them.
    let (status, _) = api.get("sun", &format!("/api/instances/{own}")).await;
    assert_eq!(status, StatusCode::OK);
    for other in [&permit, &expense] {
        for path in [
            format!("/api/instances/{other}"),
            format!("/api/instances/{other}/history"),
            format!("/api/instances/{other}/chain"),
        ] {
            let (status, body) = api.get("sun", &path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
            assert_eq!(body["code"], "unknown_instance", "{path}");
            let (_, absent) = api.get("sun", "/api/instances/nowhere-1/history").await;
            assert_eq!(
                body["detail"]
                    .as_str()
                    .map(|d| d.replace(other.as_str(), "")),
                absent["detail"]
                    .as_str()
                    .map(|d| d.replace("nowhere-1", "")),
                "a hidden instance reads exactly like a missing one"
            );
        }
        let (status, body) = api.fire("sun", other, "withdraw", json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }
    let (status, listed) = api.get("sun", "/api/instances").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, [own.as_str()]);

    // Another applicant neither sees nor touches xiao's request; the auditor sees all three.
    let (status, _) = api.get("zhang", &format!("/api/instances/{expense}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.fire("zhang", &expense, "withdraw", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, all) = api.get("audit", "/api/instances").await;
    assert_eq!(all.as_array().expect("a list").len(), 3);
    // A process owner manages definitions, not instances.
    let (status, _) = api.get("owner", &format!("/api/instances/{expense}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    api.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_start_roles_may_start_and_the_list_says_who_may() {
    let api = api().await;
    let (status, body) = api
        .post(
            "qian",
            "/api/instances",
            json!({"workflow": "expense_approval"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "role_not_allowed");
    let (_, count) = api.get("audit", "/api/instances").await;
    assert_eq!(
        count.as_array().expect("a list").len(),
        0,
        "nothing was started"
    );
    let expense = |workflows: Value| {
        workflows
            .as_array()
            .expect("a list")
            .iter()
            .find(|w| w["id"] == "expense_approval")
            .expect("listed")
            .clone()
    };
    let as_applicant = expense(api.get("xiao", "/api/workflows").await.1);
    assert_eq!(as_applicant["can_start"], true);
    assert_eq!(as_applicant["start_roles"], json!(["applicant"]));
    let as_finance = expense(api.get("qian", "/api/workflows").await.1);
    assert_eq!(as_finance["can_start"], false);
    api.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_hides_what_the_caller_may_not_read() {
    let api = api().await;
    let expense = api.start_expense("xiao", 800).await;
    let page = |user: &str, path: String| {
        api.http
            .get(api.server.url(&path))
            .bearer_auth(support::token(user))
            .send()
    };
    let mine = page("xiao", format!("/instances/{expense}"))
        .await
        .expect("answers");
    assert_eq!(mine.status(), StatusCode::OK);
    let theirs = page("zhang", format!("/instances/{expense}"))
        .await
        .expect("answers");
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    let search = page("zhang", "/instances?workflow=expense_approval".into())
        .await
        .expect("answers")
        .text()
        .await
        .expect("a page");
    assert!(
        !search.contains(&expense),
        "a search lists only what one may read"
    );
    api.server.stop().await;
}
