//! The `[check.llm]` table: the endpoint's base URL (with `/v1`), an
//! optional API key (a `${secret:...}`), the assertion (`models`: the model
//! list answers and names `model`; `chat`: that, then one chat completion)
//! and what the answer must hold.

use std::path::PathBuf;

use serde::Deserialize;

use crate::checks::via::Via;
use crate::checks::Password;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    /// e.g. `http://127.0.0.1:8000/v1`.
    base_url: String,
    #[serde(rename = "assert")]
    assertion: AssertKind,
    /// Sent as `Authorization: Bearer`; never recorded.
    #[serde(default)]
    api_key: Option<Password>,
    /// The model that must be listed (and, for `chat`, is asked).
    #[serde(default)]
    model: Option<String>,
    /// `chat`: the user message.
    #[serde(default)]
    prompt: Option<String>,
    /// `chat`: `max_tokens` of the request (default 32).
    #[serde(default)]
    max_tokens: Option<u32>,
    /// `chat`: text the reply must contain (case-insensitive).
    #[serde(default)]
    reply_contains: Option<String>,
    /// `chat`: completion tokens per second at least this.
    #[serde(default)]
    min_tokens_per_second: Option<f64>,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    via: Option<Via>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AssertKind {
    Models,
    Chat,
}

/// A checked `[check.llm]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawSpec")]
pub struct Spec {
    /// Without a trailing slash.
    pub base_url: String,
    pub api_key: Option<Password>,
    pub model: Option<String>,
    pub chat: Option<Chat>,
    pub ca_file: Option<PathBuf>,
    pub via: Option<Via>,
}

/// What `assert = "chat"` asks and requires.
#[derive(Debug, Clone, PartialEq)]
pub struct Chat {
    pub prompt: String,
    pub max_tokens: u32,
    pub reply_contains: Option<String>,
    pub min_tokens_per_second: Option<f64>,
}

impl TryFrom<RawSpec> for Spec {
    type Error = String;

    fn try_from(raw: RawSpec) -> Result<Spec, String> {
        let base_url = crate::checks::http_base_url(&raw.base_url, "http://127.0.0.1:8000/v1")?;
        let chat = match raw.assertion {
            AssertKind::Models => {
                crate::checks::reject_unused_fields(
                    "models",
                    &[
                        ("prompt", raw.prompt.is_some()),
                        ("max_tokens", raw.max_tokens.is_some()),
                        ("reply_contains", raw.reply_contains.is_some()),
                        ("min_tokens_per_second", raw.min_tokens_per_second.is_some()),
                    ],
                    &[],
                )?;
                None
            }
            AssertKind::Chat => {
                if raw.model.as_deref().is_none_or(|m| m.trim().is_empty()) {
                    return Err("`assert = \"chat\"` needs `model`, the model to ask (one `GET /models` lists)".into());
                }
                let max_tokens = raw.max_tokens.unwrap_or(32);
                if max_tokens == 0 || max_tokens > 4096 {
                    return Err(format!(
                        "`max_tokens = {max_tokens}` must be between 1 and 4096"
                    ));
                }
                Some(Chat {
                    prompt: raw
                        .prompt
                        .unwrap_or_else(|| "Reply with the single word: ready".into()),
                    max_tokens,
                    reply_contains: raw.reply_contains,
                    min_tokens_per_second: raw.min_tokens_per_second,
                })
            }
        };
        Ok(Spec {
            base_url,
            api_key: raw.api_key,
            model: raw.model.map(|m| m.trim().to_string()),
            chat,
            ca_file: raw.ca_file,
            via: raw.via,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Spec, String> {
        toml::from_str::<Spec>(&format!("base_url = \"http://l:8000/v1/\"\n{body}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_and_rejects() {
        let s = parse("assert = \"models\"").unwrap();
        assert_eq!(s.base_url, "http://l:8000/v1");
        assert!(s.chat.is_none());
        let s = parse("assert = \"chat\"\nmodel = \"m\"\napi_key = \"k\"").unwrap();
        assert_eq!(s.chat.as_ref().unwrap().max_tokens, 32);
        assert!(!format!("{s:?}").contains("\"k\""), "{s:?}");
        for (body, says) in [
            ("assert = \"chat\"", "needs `model`"),
            ("assert = \"chat\"\nmodel = \"m\"\nmax_tokens = 0", "between 1 and 4096"),
            ("assert = \"models\"\nprompt = \"hi\"", "`prompt` does not apply"),
            ("assert = \"guess\"", "unknown variant"),
        ] {
            let e = parse(body).unwrap_err();
            assert!(e.contains(says), "{body}: {e}");
        }
        let e = toml::from_str::<Spec>("base_url = \"l:8000\"\nassert = \"models\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an http(s) URL"), "{e}");
    }
}
