//! The HTTP webhook: the message as a JSON body, POSTed to the receiver, signed so that the
//! receiver can tell it came from this server and was not replayed from long ago.
//!
//! Headers: `X-Sopflow-Event-Id` (the message's id, the same on every attempt: the receiver's
//! deduplication key) and `X-Sopflow-Signature: t=<unix seconds>,v1=<hex>`, where `v1` is
//! HMAC-SHA256 under the channel's secret of `<t>.<body>` (the scheme Stripe and others use,
//! so receivers have code for it). [`verify_signature`] is the receiver's side.

use super::http::{self, judge_status, read_answer, unreachable};
use super::{Failure, Message};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Client, Url};
use sha2::Sha256;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "X-Sopflow-Signature";

/// The header that carries the message's id.
pub const EVENT_ID_HEADER: &str = "X-Sopflow-Event-Id";

/// A configured webhook.
#[derive(Debug, Clone)]
pub(super) struct Webhook {
    pub url: Url,
    pub secret: Option<String>,
    pub client: Client,
}

impl Webhook {
    /// Where it sends to, without the query string.
    pub fn describe(&self) -> String {
        http::redact(&self.url)
    }

    pub async fn send(&self, message: &Message, now: DateTime<Utc>) -> Result<(), Failure> {
        let body = serde_json::to_vec(message)
            .map_err(|err| Failure::permanent(format!("cannot encode the message: {err}")))?;
        let mut request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_ID_HEADER, &message.id);
        if let Some(secret) = &self.secret {
            let signature = sign(secret, now.timestamp(), &body)
                .ok_or_else(|| Failure::permanent("the channel's secret cannot key HMAC"))?;
            request = request.header(SIGNATURE_HEADER, signature);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|err| unreachable(&err))?;
        let judged = judge_status(&response);
        // Read (a bounded part of) the answer so that the connection can be used again.
        let _ = read_answer(response).await;
        judged
    }
}

/// The signature header's value for `body` sent at `timestamp`.
pub(super) fn sign(secret: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let mac = signed(secret, timestamp, body)?;
    Some(format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// HMAC-SHA256 under `secret` over `<timestamp>.<body>`, not yet finalised.
fn signed(secret: &str, timestamp: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// The receiver's check: whether `header` (the value of [`SIGNATURE_HEADER`]) signs `body`
/// under `secret`, made at most `tolerance_seconds` from `now` (an old signed body replayed
/// later is refused). The comparison takes the same time whatever the bytes.
pub fn verify_signature(
    secret: &str,
    header: &str,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance_seconds: i64,
) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    if (now.timestamp() - timestamp).abs() > tolerance_seconds {
        return false;
    }
    signatures.iter().any(|signature| {
        signed(secret, timestamp, body).is_some_and(|mac| mac.verify_slice(signature).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_body_secret_and_time() {
        let now = Utc::now();
        let body = br#"{"id":"i-1:3:0"}"#;
        let header = sign("s3cret", now.timestamp(), body).expect("a key");
        assert!(verify_signature("s3cret", &header, body, now, 300));
        assert!(!verify_signature("other", &header, body, now, 300));
        assert!(!verify_signature(
            "s3cret",
            &header,
            b"{\"id\":\"i-1:4:0\"}",
            now,
            300
        ));
        let later = now + chrono::Duration::seconds(301);
        assert!(
            !verify_signature("s3cret", &header, body, later, 300),
            "replayed late"
        );
        assert!(
            !verify_signature("s3cret", "v1=00", body, now, 300),
            "no timestamp"
        );
        assert!(!verify_signature("s3cret", "garbage", body, now, 300));
    }
}
