//! A console session as a browser holds it, for tests of the console's pages and forms: the
//! session cookie, GET and form POST without following redirects, and the forms' CSRF token.

/// A signed-in browser.
pub struct Browser {
    http: reqwest::Client,
    cookie: String,
    base: String,
}

impl Browser {
    pub async fn sign_in(base: &str, user: &str) -> Browser {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let cookie = super::session_cookie(&http, base, user).await;
        Browser {
            http,
            cookie,
            base: base.to_string(),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("a page");
        let status = response.status().as_u16();
        (status, response.text().await.expect("text"))
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> u16 {
        self.post_to(path, fields).await.0
    }

    /// A form's status and where it sends the browser next.
    pub async fn post_to(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(super::form_body(fields))
            .send()
            .await
            .expect("a form");
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (response.status().as_u16(), location)
    }
}

pub fn csrf(page: &str) -> String {
    let marker = "name=\"_csrf\" value=\"";
    let at = page.find(marker).expect("a form with the session's token") + marker.len();
    page[at..].split('"').next().unwrap_or_default().to_string()
}
