//! The group robots of WeCom (企业微信群机器人) and DingTalk (钉钉自定义机器人): presets of the
//! webhook that speak each one's documented message format.
//!
//! Both take a JSON `text` message and answer HTTP 200 with `{"errcode": 0, "errmsg": "ok"}`
//! when it was posted, and HTTP 200 with another `errcode` when it was not, so the code is
//! read, not only the status. Both limit a robot to 20 messages a minute and say so with a code
//! of their own (WeCom 45009; DingTalk 130101, 410100): those are tried again later, other
//! codes (a wrong key, a signature that does not match, a keyword the robot requires missing)
//! are not.
//!
//! Messages are sent as plain `text`, not `markdown`: a value a clerk typed into a form ends up
//! in the message, and in plain text it cannot become a link or a heading. The robots' limits
//! are in bytes of UTF-8 (WeCom's text 2048, DingTalk's 20000); a longer message is cut with
//! an ellipsis rather than refused.
//!
//! A robot's URL holds its key (`?key=` for WeCom, `?access_token=` for DingTalk), so it comes
//! from the environment and is never written to a log. DingTalk's "加签" security setting adds
//! a secret: each request carries `timestamp` (milliseconds) and `sign`, the Base64 of
//! HMAC-SHA256 under the secret of `timestamp + "\n" + secret`, in the query string.

use super::http::{judge_status, read_answer, unreachable};
use super::message::truncate;
use super::{Failure, Message};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Client, Url};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

/// Which robot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Vendor {
    WeCom,
    DingTalk,
}

/// A configured group robot.
#[derive(Debug, Clone)]
pub(super) struct Robot {
    pub vendor: Vendor,
    /// The robot's URL, key included.
    pub url: Url,
    /// DingTalk's signing secret (`SEC...`), when the robot has "加签" on.
    pub secret: Option<String>,
    /// Mobile numbers to @ in the group, from the channel's configuration.
    pub mention_mobiles: Vec<String>,
    pub client: Client,
}

/// A robot's answer.
#[derive(Debug, Deserialize)]
struct Answer {
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

impl Robot {
    pub async fn send(&self, message: &Message, now: DateTime<Utc>) -> Result<(), Failure> {
        let url = self.signed_url(now)?;
        let response = self
            .client
            .post(url)
            .json(&self.body(message))
            .send()
            .await
            .map_err(|err| unreachable(&err))?;
        judge_status(&response)?;
        let answer = read_answer(response).await?;
        let answer: Answer = serde_json::from_slice(&answer).map_err(|_| {
            Failure::retry(format!(
                "the {} robot answered something that is not its JSON ({} bytes)",
                self.vendor.name(),
                answer.len()
            ))
        })?;
        self.judge(&answer)
    }

    /// The message in the robot's format.
    pub(super) fn body(&self, message: &Message) -> serde_json::Value {
        match self.vendor {
            Vendor::WeCom => json!({
                "msgtype": "text",
                "text": {
                    "content": truncate(&message.text(), 2048),
                    "mentioned_mobile_list": self.mention_mobiles,
                },
            }),
            Vendor::DingTalk => json!({
                "msgtype": "text",
                "text": { "content": truncate(&message.text(), 20_000) },
                "at": { "atMobiles": self.mention_mobiles, "isAtAll": false },
            }),
        }
    }

    /// The URL to post to: DingTalk's with `timestamp` and `sign` when it has a secret.
    pub(super) fn signed_url(&self, now: DateTime<Utc>) -> Result<Url, Failure> {
        let mut url = self.url.clone();
        if let (Vendor::DingTalk, Some(secret)) = (self.vendor, &self.secret) {
            let timestamp = now.timestamp_millis().to_string();
            let sign = dingtalk_sign(secret, &timestamp)
                .ok_or_else(|| Failure::permanent("the robot's secret cannot key HMAC"))?;
            url.query_pairs_mut()
                .append_pair("timestamp", &timestamp)
                .append_pair("sign", &sign);
        }
        Ok(url)
    }

    fn judge(&self, answer: &Answer) -> Result<(), Failure> {
        let rate_limited = match self.vendor {
            Vendor::WeCom => answer.errcode == 45009,
            Vendor::DingTalk => matches!(answer.errcode, 130101 | 410100),
        };
        let reason = || {
            format!(
                "the {} robot refused the message: errcode {} {}",
                self.vendor.name(),
                answer.errcode,
                answer.errmsg.chars().take(200).collect::<String>()
            )
        };
        match answer.errcode {
            0 => Ok(()),
            _ if rate_limited => Err(Failure::Retry {
                reason: reason(),
                after: Some(std::time::Duration::from_secs(60)),
            }),
            _ => Err(Failure::permanent(reason())),
        }
    }
}

impl Vendor {
    pub(super) fn name(self) -> &'static str {
        match self {
            Vendor::WeCom => "WeCom",
            Vendor::DingTalk => "DingTalk",
        }
    }
}

/// DingTalk's `sign`: Base64 of HMAC-SHA256 under `secret` of `timestamp + "\n" + secret`
/// (the query string's encoding is left to the URL).
fn dingtalk_sign(secret: &str, timestamp: &str) -> Option<String> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(secret.as_bytes());
    Some(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn robot(vendor: Vendor, secret: Option<&str>) -> Robot {
        Robot {
            vendor,
            url: Url::parse("https://oapi.dingtalk.com/robot/send?access_token=abc").expect("url"),
            secret: secret.map(str::to_string),
            mention_mobiles: vec![],
            client: Client::new(),
        }
    }

    #[test]
    fn dingtalk_signs_with_its_documented_recipe() {
        // Computed independently: python3 -c "import hmac,hashlib,base64;
        // print(base64.b64encode(hmac.new(b'SECabc', b'1700000000000\nSECabc',
        // hashlib.sha256).digest()).decode())"
        assert_eq!(
            dingtalk_sign("SECabc", "1700000000000").as_deref(),
            Some("jcUpW0QmtKduN03n4JqQ0PBosVjqnM8gU7fIIvsDmCM=")
        );
        let now = DateTime::from_timestamp_millis(1_700_000_000_000).expect("time");
        let url = robot(Vendor::DingTalk, Some("SECabc"))
            .signed_url(now)
            .expect("signed");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs[0], ("access_token".into(), "abc".into()));
        assert_eq!(pairs[1], ("timestamp".into(), "1700000000000".into()));
        assert_eq!(
            pairs[2].1,
            dingtalk_sign("SECabc", "1700000000000").expect("sign")
        );
        // `+`, `/` and `=` of Base64 are escaped in the query string.
        assert!(!url.query().unwrap_or("").contains('+'));
    }

    #[test]
    fn robots_get_plain_text_cut_to_their_limits() {
        let message = Message {
            id: "x:1:0".into(),
            workflow: "complaint_handling".into(),
            instance: "x".into(),
            seq: 1,
            title: "投诉升级".into(),
            body: "[点我](http://evil.example) ".repeat(500),
            link: Some("https://console.example/instances/x".into()),
            users: vec![],
            roles: vec![],
            emails: vec![],
            at: Utc::now(),
            kind: Default::default(),
            notice: None,
            step: None,
        };
        let wecom = robot(Vendor::WeCom, None).body(&message);
        assert_eq!(wecom["msgtype"], "text");
        let content = wecom["text"]["content"].as_str().expect("text");
        assert!(content.len() <= 2048 && content.starts_with("投诉升级\n"));
        let dingtalk = robot(Vendor::DingTalk, None).body(&message);
        assert_eq!(dingtalk["msgtype"], "text");
        assert!(
            dingtalk["text"]["content"]
                .as_str()
                .expect("text")
                .ends_with("/instances/x")
        );
    }

    #[test]
    fn a_rate_limit_is_tried_again_and_a_wrong_key_is_not() {
        let wecom = robot(Vendor::WeCom, None);
        let limited = wecom.judge(&Answer {
            errcode: 45009,
            errmsg: "api freq out of limit".into(),
        });
        assert!(limited.is_err_and(|failure| failure.is_retryable()));
        let wrong = wecom.judge(&Answer {
            errcode: 93000,
            errmsg: "invalid webhook url".into(),
        });
        assert!(wrong.is_err_and(|failure| !failure.is_retryable()));
        let dingtalk = robot(Vendor::DingTalk, None);
        let sign = dingtalk.judge(&Answer {
            errcode: 310000,
            errmsg: "sign not match".into(),
        });
        assert!(sign.is_err_and(|failure| !failure.is_retryable()));
        assert!(
            dingtalk
                .judge(&Answer {
                    errcode: 130101,
                    errmsg: String::new()
                })
                .is_err_and(|f| f.is_retryable())
        );
        assert!(
            dingtalk
                .judge(&Answer {
                    errcode: 0,
                    errmsg: "ok".into()
                })
                .is_ok()
        );
    }
}
