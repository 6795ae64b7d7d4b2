//! The web console in a real browser: `tests/browser/console.mjs` drives Debian's Chromium
//! (through playwright-core) against a server started here, through a whole hot-work permit
//! (start, submit, a wrong-role attempt refused, three reviews and 行政部's seal, the final page, the
//! auditor's verification and CSV) and through a renovation, from the owner's application to its
//! hot-work permit with the demo users in turn (each step found in the inbox and answered in
//! Chinese, the permit opened from the renovation's page by its title and number), and saves
//! screenshots under `target/browser/`.
//!
//! It needs Node, `/usr/bin/chromium` and `npm ci` in tests/browser. Without them it skips,
//! unless SOPFLOW_REQUIRE_BROWSER is set (CI sets it, after installing them), so that a
//! missing install fails there instead of passing silently.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the whole browser run may take before it is stopped and the test fails.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(240);

const CHROMIUM: &str = "/usr/bin/chromium";

/// What is missing to run the browser test, if anything.
fn missing(script_dir: &Path) -> Option<String> {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("Node (`node`) is not installed".into());
    }
    if !Path::new(CHROMIUM).exists() {
        return Some(format!(
            "Chromium is not at {CHROMIUM} (`apt-get install chromium`)"
        ));
    }
    if !script_dir.join("node_modules/playwright-core").is_dir() {
        return Some("playwright-core is not installed: run `npm ci` in tests/browser".into());
    }
    None
}

/// Where the screenshots go: `target/browser/` (or under CARGO_TARGET_DIR).
fn screenshot_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("browser")
}

/// Reads a pipe to its end on a thread of its own.
fn read_all(pipe: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_takes_a_hot_work_permit_through_in_a_browser() {
    let root = support::project();
    let script_dir = root.join("tests/browser");
    if let Some(what) = missing(&script_dir) {
        assert!(
            std::env::var_os("SOPFLOW_REQUIRE_BROWSER").is_none(),
            "the browser test is required here, but {what}"
        );
        eprintln!("skipping the browser test: {what}");
        return;
    }
    let server = support::spawn().await;
    let shots = screenshot_dir(&root);
    std::fs::create_dir_all(&shots).expect("the screenshot folder");
    let base = server.base.clone();
    let script = script_dir.join("console.mjs");
    let shots_arg = shots.clone();
    let ids = raw_ids(
        &server,
        &["hot_work_permit", "goods_request", "renovation_approval"],
    )
    .join(",");
    // The server runs on this runtime's threads; the browser run waits on a blocking one.
    let (status, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("node")
            .arg(&script)
            .arg(&base)
            .arg(&shots_arg)
            .arg(&ids)
            .current_dir(script.parent().expect("the script's folder"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node starts");
        // Read both pipes as the run goes, so that a chatty run cannot block on a full pipe.
        let stdout = read_all(child.stdout.take());
        let stderr = read_all(child.stderr.take());
        let began = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("the browser run") {
                break Some(status);
            }
            if began.elapsed() > BROWSER_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let text = |h: std::thread::JoinHandle<String>| h.join().unwrap_or_default();
        (status, text(stdout), text(stderr))
    })
    .await
    .expect("the browser run finishes");
    server.stop().await;
    println!("{stdout}");
    let status = status.unwrap_or_else(|| {
        panic!(
            "the browser run took longer than {BROWSER_TIMEOUT:?} and was stopped\n{stdout}\n{stderr}"
        )
    });
    assert!(
        status.success(),
        "the browser checks failed ({status}); screenshots in {}\n{stdout}\n{stderr}",
        shots.display()
    );
    assert!(stdout.contains("console: all checks passed"), "{stdout}");
    for name in [
        "instance.png",
        "inbox-li.png",
        "refused.png",
        "inbox-fang.png",
        "phone-li-inbox.png",
        "phone-li-instance.png",
        "phone-audit-instance.png",
        "phone-fang-inbox.png",
        "phone-fang-instance.png",
        "renovation.png",
        "renovation-permit.png",
    ] {
        assert!(
            shots.join(name).is_file(),
            "screenshot {name} in {}",
            shots.display()
        );
    }
}

/// The ids of the roles, fields and events (timers' too) of some shipped workflows: words a
/// clerk must never read on a page in Chinese.
fn raw_ids(server: &support::TestServer, workflows: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for workflow in workflows {
        let def = server
            .state
            .engine
            .definition_of(workflow)
            .expect("a shipped workflow");
        let w = &def.workflow;
        ids.extend(w.roles.iter().map(|(role, _)| role.as_str().to_string()));
        ids.extend(w.fields.iter().map(|(field, _)| field.as_str().to_string()));
        for (_, state) in w.states.iter() {
            ids.extend(state.on.iter().map(|(event, _)| event.as_str().to_string()));
            if let Some(approval) = &state.approval {
                ids.push(approval.approve_event().to_string());
                if let Some(reject) = &approval.on_reject {
                    ids.push(reject.reject_event().to_string());
                }
            }
            ids.extend(state.timers.iter().map(|t| t.fire.value.clone()));
        }
    }
    ids.sort();
    ids.dedup();
    ids
}

/// A browser-less session: the cookie and the CSRF token of the last page.
struct Session {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Session {
    /// Signs in through the sign-in form.
    async fn sign_in(base: &str, user: &str) -> Session {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let response =
            support::post_login(&http, base, &[("user", user), ("password", "demo")]).await;
        assert_eq!(response.status(), 303, "{user} signs in");
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("sopflow_session="))
            .expect("a session cookie")
            .to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        let cookie = cookie.split(';').next().unwrap_or_default().to_string();
        Session {
            http,
            base: base.to_string(),
            cookie,
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(support::form_body(form))
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.text().await.unwrap_or_default();
        (status, location.unwrap_or(body))
    }
}

impl Session {
    /// Posts a form that answers with a redirect, and reads the page it redirects to: the
    /// redirect's address and that page.
    async fn refused(&self, path: &str, form: &[(&str, &str)]) -> (String, String) {
        let (status, location) = self.post(path, form).await;
        assert_eq!(status, 303, "a console POST redirects: {location}");
        let (status, page) = self.get(&location).await;
        assert_eq!(status, 200, "{location}");
        (location, page)
    }
}

/// The value of the first hidden `_csrf` field of a page.
fn csrf(page: &str) -> String {
    let marker = "name=\"_csrf\" value=\"";
    let at = page.find(marker).expect("a CSRF field") + marker.len();
    page[at..].split('"').next().unwrap_or_default().to_string()
}

/// The console without a browser: where strangers, wrong passwords, forged forms, wrong
/// roles and unknown pages end up, and that no step is written by any of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refuses_what_it_should_without_a_browser() {
    let server = support::spawn().await;
    let base = server.base.clone();
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");

    // A stranger is sent to sign in, and comes back afterwards.
    let response = plain
        .get(format!("{base}/instances?workflow=hot_work_permit"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 303);
    let location = response.headers().get("location").expect("a location");
    assert_eq!(
        location.to_str().unwrap_or_default(),
        "/login?next=%2Finstances%3Fworkflow%3Dhot_work_permit"
    );

    // A wrong password: 401, a message, counted.
    let response =
        support::post_login(&plain, &base, &[("user", "wang"), ("password", "nope")]).await;
    assert_eq!(response.status(), 401);
    assert!(
        response
            .text()
            .await
            .unwrap_or_default()
            .contains("signin-error")
    );
    let metrics = server.state.metrics.encode();
    assert!(
        metrics.contains("sopflow_auth_failures_total{code=\"bad_password\"} 1"),
        "{metrics}"
    );

    // wang starts a permit; a form without the session's CSRF token is refused and counted.
    let wang = Session::sign_in(&base, "wang").await;
    let (status, inbox) = wang.get("/").await;
    assert_eq!(status, 200);
    assert!(
        inbox.contains("动火证审批"),
        "wang may start a hot-work permit"
    );
    let token = csrf(&inbox);
    let (status, _) = wang
        .post(
            "/instances",
            &[("workflow", "hot_work_permit"), ("_csrf", "forged")],
        )
        .await;
    assert_eq!(status, 403);
    assert!(
        server
            .state
            .metrics
            .encode()
            .contains("sopflow_auth_failures_total{code=\"csrf\"} 1")
    );
    let (status, location) = wang
        .post(
            "/instances",
            &[
                ("workflow", "hot_work_permit"),
                ("business_key", "HW-9"),
                ("_csrf", &token),
            ],
        )
        .await;
    assert_eq!(status, 303, "{location}");
    let id = location
        .strip_prefix("/instances/")
        .and_then(|rest| rest.split('?').next())
        .expect("the instance's page")
        .to_string();

    // A refused step redirects to the instance's page (post/redirect/get), which shows the
    // engine's code and what was typed; nothing is written. The message is the session's
    // own: another session given the same address sees the plain page.
    let fire = format!("/instances/{id}/fire");
    let (location, page) = wang
        .refused(
            &fire,
            &[
                ("event", "submit"),
                ("f.applicant_seal", "false"),
                ("f.notification_letter", "HW-9"),
                ("f.operator_certificate", "T-1"),
                ("_csrf", &token),
            ],
        )
        .await;
    assert!(
        location.starts_with(&format!("/instances/{id}?flash=")),
        "{location}"
    );
    assert!(page.contains("data-code=\"guard_failed\""), "{page}");
    assert!(
        page.contains("value=\"HW-9\""),
        "what was typed is shown again"
    );
    let (status, again) = wang.get(&location).await;
    assert_eq!(status, 200);
    assert!(
        again.contains("data-code=\"guard_failed\""),
        "a reload shows it again"
    );
    let other = Session::sign_in(&base, "wang").await;
    let (status, theirs) = other.get(&location).await;
    assert_eq!(status, 200);
    assert!(
        !theirs.contains("id=\"refusal\""),
        "another session's message"
    );
    let (_, page) = wang
        .refused(&fire, &[("event", "submit"), ("_csrf", &token)])
        .await;
    assert!(page.contains("data-code=\"missing_field\""));
    let (_, page) = wang
        .refused(&fire, &[("event", "approve"), ("_csrf", &token)])
        .await;
    assert!(
        page.contains("data-code=\"unknown_event\""),
        "a draft has no approval yet"
    );
    let (_, page) = wang
        .refused(
            &fire,
            &[
                ("event", "withdraw"),
                ("expected_seq", "7"),
                ("_csrf", &token),
            ],
        )
        .await;
    assert!(page.contains("data-code=\"stale\""));
    let instance = server.state.engine.get(&id).await.expect("the instance");
    assert_eq!((instance.seq, instance.state.as_str()), (0, "drafted"));

    // The contractor is offered only their own steps: no forms for other roles, and the
    // page says whose turn it is once the permit is submitted.
    let (_, page) = wang.get(&format!("/instances/{id}")).await;
    assert!(!page.contains("id=\"other-actions\""), "{page}");
    assert!(page.contains("data-event=\"submit\""));
    assert!(page.contains("id=\"next\""));

    // Unknown pages and the auditor's pages.
    let (status, page) = wang.get("/instances/hot_work_permit-999").await;
    assert_eq!(status, 404);
    assert!(page.contains("data-code=\"unknown_instance\""));
    let (status, _) = wang.get("/workflows/no_such_workflow").await;
    assert_eq!(status, 404);
    let (status, _) = wang.get("/audit").await;
    assert_eq!(status, 403);
    let (status, _) = wang.get("/audit/export.csv").await;
    assert_eq!(status, 403);

    // A comment that begins like a formula reaches the auditor's Excel as text.
    server
        .state
        .engine
        .fire(
            &id,
            sopflow::engine::Fire::new(
                "withdraw",
                sopflow::machine::Actor::new("wang", ["contractor"]),
            )
            .comment("=cmd|' /C calc'!A0"),
        )
        .await
        .expect("withdraws");
    let audit = Session::sign_in(&base, "audit").await;
    let (status, _) = audit.get("/audit/export.csv?from=yesterday").await;
    assert_eq!(status, 400, "a bad date is the caller's mistake");
    let (status, csv) = audit
        .get("/audit/export.csv?workflow=hot_work_permit")
        .await;
    assert_eq!(status, 200);
    assert!(csv.starts_with("\u{feff}instance,workflow,"), "{csv}");
    assert!(csv.contains(&id), "{csv}");
    assert!(csv.contains(",'=cmd|' /C calc'!A0,"), "{csv}");
    let (status, page) = audit.get("/audit").await;
    assert_eq!(status, 200);
    let (location, page) = audit
        .refused("/audit/verify", &[("_csrf", &csrf(&page))])
        .await;
    assert!(location.starts_with("/audit?flash="), "{location}");
    assert!(page.contains("data-problems=\"0\""), "{page}");

    // The auditor sees who else can act on an instance (a read-only list, no forms); the
    // process owner sees a reload that was not put in force, on the home page and on the
    // workflow's page, whose findings are those of the file on disk, never "no errors"
    // under the banner.
    let owner = Session::sign_in(&base, "owner").await;
    let other_id = {
        let (_, location) = wang
            .post(
                "/instances",
                &[("workflow", "hot_work_permit"), ("_csrf", &token)],
            )
            .await;
        location
            .strip_prefix("/instances/")
            .and_then(|rest| rest.split('?').next())
            .expect("a second permit")
            .to_string()
    };
    let (status, page) = audit.get(&format!("/instances/{other_id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"other-actions\""), "{page}");
    assert!(
        !page.contains("/fire\""),
        "the auditor has no forms here: {page}"
    );
    let def = server
        .state
        .engine
        .definition_of("hot_work_permit")
        .expect("the permit's definition");
    server.state.reloads.push(sopflow::server::reload::Attempt {
        at: server.state.engine.now(),
        result: "rejected",
        changed: Vec::new(),
        removed: Vec::new(),
        errors: 1,
        warnings: 0,
        diagnostics: vec![sopflow::Diagnostic::new(
            sopflow::Code::YamlSyntax,
            &def.file,
            sopflow::Span::at(3, 7),
            sopflow::i18n::Text::new("diag-full-width-colon").with("key", "title"),
            sopflow::i18n::Text::new("hint-full-width-colon").with("key", "title"),
        )],
        message: None,
    });
    let (_, home) = owner.get("/").await;
    assert!(home.contains("id=\"reload-failed\""), "{home}");
    // The finding is in the process owner's language, the code as it is.
    assert!(
        home.contains("`title` 后面是全角冒号“：”") && home.contains("data-code=\"E002\""),
        "{home}"
    );
    assert!(!home.contains("full-width colon"), "{home}");
    let (_, home) = wang.get("/").await;
    assert!(
        !home.contains("id=\"reload-failed\""),
        "only for process owners"
    );
    let (_, page) = owner.get("/workflows/hot_work_permit").await;
    assert!(page.contains("id=\"reload-rejected\""));
    assert!(page.contains("id=\"findings-on-disk\""), "{page}");
    assert!(!page.contains("✓ 没有错误"), "{page}");

    // Signing out ends the session.
    let (status, _) = wang.post("/logout", &[("_csrf", &token)]).await;
    assert_eq!(status, 303);
    let (status, _) = wang.get("/").await;
    assert_eq!(status, 303, "a closed session is sent to sign in again");
    server.stop().await;
}

/// The language switch sets its cookie and goes back to a page of this site only; the pages
/// follow the cookie, else `Accept-Language`, else Chinese.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_switch_goes_back_only_to_this_site_and_pages_follow_it() {
    let server = support::spawn().await;
    let base = server.base.clone();
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    let switch = |query: &str| {
        let plain = plain.clone();
        let url = format!("{base}/language?{query}");
        async move { plain.get(url).send().await.expect("GET /language") }
    };
    let location = |response: &reqwest::Response| {
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };

    let response = switch("to=en&back=%2Finstances%3Fworkflow%3Dhot_work_permit").await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/instances?workflow=hot_work_permit");
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    for part in [
        "sopflow_lang=en",
        "Path=/",
        "SameSite=Lax",
        "HttpOnly",
        "Max-Age=31536000",
    ] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }

    // Anywhere else is refused: the switch goes to the home page instead.
    for back in [
        "//evil.example/",
        "https://evil.example/",
        "http:/evil.example",
        "evil.example",
        "/\\evil.example",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "/%09/evil.example",
        "javascript:alert(1)",
        "",
    ] {
        let query = serde_urlencoded::to_string([("to", "zh"), ("back", back)]).expect("a query");
        let response = switch(&query).await;
        assert_eq!(response.status(), 303, "{back:?}");
        assert_eq!(location(&response), "/", "{back:?} is not followed");
    }
    // Without `back`, the page it was clicked on, if that page is this site's.
    let referred = |referer: &'static str| {
        plain
            .get(format!("{base}/language?to=en"))
            .header("referer", referer)
            .send()
    };
    let host = base.trim_start_matches("http://").to_string();
    let response = plain
        .get(format!("{base}/language?to=en"))
        .header("referer", format!("http://{host}/workflows"))
        .send()
        .await
        .expect("GET");
    assert_eq!(location(&response), "/workflows");
    let response = referred("https://evil.example/workflows")
        .await
        .expect("GET");
    assert_eq!(location(&response), "/");
    // A language the console does not speak is a bad request, and sets nothing.
    let response = switch("to=fr&back=%2F").await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("set-cookie").is_none());

    // The sign-in page follows the cookie, then Accept-Language, then Chinese.
    let login = |lang_cookie: Option<&'static str>, accept: Option<&'static str>| {
        let mut request = plain.get(format!("{base}/login"));
        if let Some(value) = lang_cookie {
            request = request.header("cookie", format!("sopflow_lang={value}"));
        }
        if let Some(value) = accept {
            request = request.header("accept-language", value);
        }
        async move {
            request
                .send()
                .await
                .expect("GET /login")
                .text()
                .await
                .unwrap_or_default()
        }
    };
    let page = login(None, None).await;
    assert!(page.contains("<html lang=\"zh-CN\"") && page.contains("用户名"));
    let page = login(None, Some("en-US,en;q=0.9")).await;
    assert!(page.contains("<html lang=\"en\"") && page.contains("User id"));
    let page = login(Some("zh"), Some("en-US")).await;
    assert!(page.contains("<html lang=\"zh-CN\""), "the cookie wins");

    // A signed-in clerk's inbox in either language, with roles by title.
    let wang = Session::sign_in(&base, "wang").await;
    let (_, inbox) = wang.get("/").await;
    assert!(
        inbox.contains("待办") && inbox.contains("装修施工单位"),
        "{inbox}"
    );
    let english = Session {
        http: wang.http.clone(),
        base: base.clone(),
        cookie: format!("{}; sopflow_lang=en", wang.cookie),
    };
    let (_, inbox) = english.get("/").await;
    assert!(
        inbox.contains("<html lang=\"en\"") && inbox.contains("My tasks"),
        "{inbox}"
    );
    assert!(!inbox.contains("待办"), "{inbox}");
    server.stop().await;
}
