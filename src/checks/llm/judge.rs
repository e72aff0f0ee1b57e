//! Judges an OpenAI-compatible endpoint's answers: the model list and the
//! chat completion against the API's schema (every field the clients read,
//! with the JSON path of the first that breaks), the model, the reply, and
//! the speed. Pure: no I/O, no clock.

use serde_json::Value;

use super::spec::Spec;
use crate::check::{all_of, Verdict};

/// One HTTP exchange as recorded (the API key is never recorded).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// `GET /models`.
    pub request: String,
    pub status: u16,
    /// An excerpt of the body.
    pub body: String,
    pub json: Option<Value>,
    /// From sending to the last byte.
    pub ms: f64,
}

impl Reply {
    fn describe(&self) -> String {
        format!("{} -> {} in {:.0} ms: {}", self.request, self.status, self.ms, self.body)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Facts {
    /// The model list did not answer (refused, timed out, TLS).
    Unreachable(String),
    Answered {
        models: Reply,
        /// `assert = "chat"`: the completion, or why it did not answer.
        chat: Option<Result<Reply, String>>,
    },
}

/// The ids of a `GET /models` answer (`{"object": "list", "data": [{"id":
/// ..., "object": "model"}, ...]}`), or the path of the first field that
/// breaks the schema.
pub fn model_ids(json: &Value) -> Result<Vec<String>, String> {
    let data = field(json, "$", "data")?
        .as_array()
        .ok_or("$.data is not an array")?;
    if let Some(object) = json.get("object") {
        if object != "list" {
            return Err(format!("$.object is {object}, expected \"list\""));
        }
    }
    data.iter()
        .enumerate()
        .map(|(n, m)| {
            let at = format!("$.data[{n}]");
            string(field(m, &at, "id")?, &format!("{at}.id"))
        })
        .collect()
}

/// What a valid chat completion says.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub model: String,
    pub content: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// A chat completion checked against the schema: `id`, `object`
/// (`chat.completion`), `created`, `model`, at least one choice with an
/// `index`, a `message` whose `role` is `assistant` and whose `content` is a
/// string, and `usage` whose totals add up.
pub fn completion(json: &Value) -> Result<Completion, String> {
    string(field(json, "$", "id")?, "$.id")?;
    let object = string(field(json, "$", "object")?, "$.object")?;
    if object != "chat.completion" {
        return Err(format!("$.object is \"{object}\", expected \"chat.completion\""));
    }
    field(json, "$", "created")?
        .as_u64()
        .ok_or("$.created is not a non-negative integer (seconds since the epoch)")?;
    let model = string(field(json, "$", "model")?, "$.model")?;
    let choices = field(json, "$", "choices")?
        .as_array()
        .ok_or("$.choices is not an array")?;
    let first = choices.first().ok_or("$.choices is empty")?;
    field(first, "$.choices[0]", "index")?
        .as_u64()
        .ok_or("$.choices[0].index is not a non-negative integer")?;
    let message = field(first, "$.choices[0]", "message")?;
    let role = string(field(message, "$.choices[0].message", "role")?, "$.choices[0].message.role")?;
    if role != "assistant" {
        return Err(format!(
            "$.choices[0].message.role is \"{role}\", expected \"assistant\""
        ));
    }
    let content = string(
        field(message, "$.choices[0].message", "content")?,
        "$.choices[0].message.content",
    )?;
    let usage = field(json, "$", "usage")?;
    let count = |name: &str| -> Result<u64, String> {
        field(usage, "$.usage", name)?
            .as_u64()
            .ok_or(format!("$.usage.{name} is not a non-negative integer"))
    };
    let (prompt, completion, total) = (
        count("prompt_tokens")?,
        count("completion_tokens")?,
        count("total_tokens")?,
    );
    if prompt + completion != total {
        return Err(format!(
            "$.usage.total_tokens is {total}, but prompt_tokens {prompt} + completion_tokens {completion} = {}",
            prompt + completion
        ));
    }
    Ok(Completion {
        model,
        content,
        prompt_tokens: prompt,
        completion_tokens: completion,
    })
}

fn field<'a>(value: &'a Value, at: &str, name: &str) -> Result<&'a Value, String> {
    if !value.is_object() {
        return Err(format!("{at} is not an object"));
    }
    value
        .get(name)
        .filter(|v| !v.is_null())
        .ok_or_else(|| format!("{at}.{name} is missing"))
}

fn string(value: &Value, at: &str) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{at} is not a string"))
}

pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    let listed = match &spec.model {
        Some(m) => format!("`GET {}/models` lists `{m}`", spec.base_url),
        None => format!("`GET {}/models` answers a model list", spec.base_url),
    };
    let (models, chat) = match facts {
        Facts::Unreachable(e) => return Verdict::fail(listed, format!("no answer: {e}")),
        Facts::Answered { models, chat } => (models, chat),
    };
    let mut evidence = vec![models.describe()];
    let mut parts = vec![judge_models(spec, models, listed)];
    if let (Some(ask), Some(chat)) = (&spec.chat, chat) {
        let expected = format!(
            "a chat completion from `{}` that holds to the API's schema",
            spec.model.as_deref().unwrap_or_default()
        );
        match chat {
            Err(e) => parts.push(Verdict::fail(expected, format!("POST /chat/completions: {e}"))),
            Ok(reply) => {
                evidence.push(reply.describe());
                parts.extend(judge_chat(ask, reply, expected));
            }
        }
    }
    all_of(parts).with_evidence(evidence.join("\n"))
}

fn judge_models(spec: &Spec, models: &Reply, expected: String) -> Verdict {
    if models.status != 200 {
        return Verdict::fail(expected, format!("{} answered {}", models.request, models.status));
    }
    let ids = match models.json.as_ref().ok_or("the body is not JSON".to_string()).and_then(model_ids) {
        Ok(ids) => ids,
        Err(e) => return Verdict::fail(expected, format!("model list breaks the schema: {e}")),
    };
    let found = format!("{} model(s): {}", ids.len(), ids.join(", "));
    let verdict = match &spec.model {
        Some(m) if !ids.contains(m) => Verdict::fail(expected, format!("`{m}` is not listed; {found}")),
        _ if ids.is_empty() => Verdict::fail(expected, "the model list is empty"),
        _ => Verdict::pass(expected, found),
    };
    verdict.with_metric("models_ms", models.ms)
}

fn judge_chat(ask: &super::spec::Chat, reply: &Reply, expected: String) -> Vec<Verdict> {
    if reply.status != 200 {
        return vec![Verdict::fail(expected, format!("{} answered {}", reply.request, reply.status))];
    }
    let answer = match reply.json.as_ref().ok_or("the body is not JSON".to_string()).and_then(completion) {
        Ok(a) => a,
        Err(e) => return vec![Verdict::fail(expected, format!("the completion breaks the schema: {e}"))],
    };
    let seconds = reply.ms / 1000.0;
    let per_second = if seconds > 0.0 {
        answer.completion_tokens as f64 / seconds
    } else {
        0.0
    };
    let mut parts = vec![Verdict::pass(
        expected,
        format!(
            "`{}` answered {} token(s) in {:.0} ms ({per_second:.1} tokens/s)",
            answer.model, answer.completion_tokens, reply.ms
        ),
    )
    .with_metric("chat_latency_ms", reply.ms)
    .with_metric("completion_tokens", answer.completion_tokens as f64)
    .with_metric("prompt_tokens", answer.prompt_tokens as f64)
    .with_metric("tokens_per_second", per_second)];
    if let Some(want) = &ask.reply_contains {
        let expected = format!("the reply contains `{want}`");
        let said = format!("the reply: {}", crate::check::excerpt(answer.content.trim(), 200));
        parts.push(if answer.content.to_lowercase().contains(&want.to_lowercase()) {
            Verdict::pass(expected, said)
        } else {
            Verdict::fail(expected, said)
        });
    }
    if let Some(min) = ask.min_tokens_per_second {
        let expected = format!("at least {min} tokens/s");
        let found = format!("{per_second:.1} tokens/s");
        parts.push(if per_second >= min {
            Verdict::pass(expected, found)
        } else {
            Verdict::fail(expected, found)
        });
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(body: &str) -> Spec {
        toml::from_str(&format!("base_url = \"http://l/v1\"\n{body}")).unwrap()
    }

    fn reply(request: &str, status: u16, json: Value, ms: f64) -> Reply {
        Reply {
            request: request.into(),
            status,
            body: json.to_string(),
            json: Some(json),
            ms,
        }
    }

    fn models() -> Value {
        json!({"object": "list", "data": [{"id": "qwen", "object": "model"}, {"id": "llama", "object": "model"}]})
    }

    fn good_completion() -> Value {
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000u64, "model": "qwen",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ready"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32}
        })
    }

    fn answered(chat: Value) -> Facts {
        Facts::Answered {
            models: reply("GET /models", 200, models(), 5.0),
            chat: Some(Ok(reply("POST /chat/completions", 200, chat, 500.0))),
        }
    }

    fn broken(edit: impl Fn(&mut Value)) -> Value {
        let mut v = good_completion();
        edit(&mut v);
        v
    }

    #[test]
    fn a_sound_endpoint_passes_with_its_figures() {
        let s = spec("assert = \"chat\"\nmodel = \"qwen\"\nreply_contains = \"READY\"\nmin_tokens_per_second = 10");
        let v = judge(&s, &answered(good_completion()));
        assert!(v.pass, "{v:?}");
        assert_eq!(v.metrics["tokens_per_second"], 40.0);
        assert_eq!(v.metrics["chat_latency_ms"], 500.0);
        assert!(v.evidence.contains("POST /chat/completions -> 200"), "{v:?}");
    }

    #[test]
    fn each_broken_field_fails_with_its_path() {
        let s = spec("assert = \"chat\"\nmodel = \"qwen\"");
        let cases: Vec<(Value, &str)> = vec![
            (broken(|v| v["choices"][0]["message"]["role"] = json!("user")), "$.choices[0].message.role is \"user\", expected \"assistant\""),
            (broken(|v| v["choices"] = json!([])), "$.choices is empty"),
            (broken(|v| v["choices"][0]["message"]["content"] = json!(7)), "$.choices[0].message.content is not a string"),
            (broken(|v| { v.as_object_mut().unwrap().remove("id"); }), "$.id is missing"),
            (broken(|v| v["object"] = json!("text_completion")), "$.object is \"text_completion\""),
            (broken(|v| v["created"] = json!("yesterday")), "$.created is not a non-negative integer"),
            (broken(|v| v["usage"]["total_tokens"] = json!(99)), "$.usage.total_tokens is 99, but prompt_tokens 12 + completion_tokens 20 = 32"),
            (broken(|v| { v.as_object_mut().unwrap().remove("usage"); }), "$.usage is missing"),
            (json!([1, 2]), "$ is not an object"),
        ];
        for (body, says) in cases {
            let v = judge(&s, &answered(body));
            assert!(!v.pass && v.found.contains(says), "{says}: {v:?}");
        }
    }

    #[test]
    fn the_model_the_reply_and_the_speed_are_judged() {
        let s = spec("assert = \"chat\"\nmodel = \"mistral\"");
        let v = judge(&s, &answered(good_completion()));
        assert!(!v.pass && v.found.contains("`mistral` is not listed; 2 model(s): qwen, llama"), "{v:?}");
        let s = spec("assert = \"chat\"\nmodel = \"qwen\"\nreply_contains = \"pong\"");
        let v = judge(&s, &answered(good_completion()));
        assert!(!v.pass && v.found.contains("the reply: ready"), "{v:?}");
        let s = spec("assert = \"chat\"\nmodel = \"qwen\"\nmin_tokens_per_second = 100");
        let v = judge(&s, &answered(good_completion()));
        assert!(!v.pass && v.found.contains("40.0 tokens/s"), "{v:?}");
    }

    #[test]
    fn no_answer_a_refusal_and_a_bad_list_fail() {
        let s = spec("assert = \"models\"");
        let v = judge(&s, &Facts::Unreachable("connection refused".into()));
        assert!(!v.pass && v.found.contains("no answer: connection refused"), "{v:?}");
        let denied = Facts::Answered {
            models: reply("GET /models", 401, json!({"error": "bad key"}), 3.0),
            chat: None,
        };
        let v = judge(&s, &denied);
        assert!(!v.pass && v.found.contains("answered 401"), "{v:?}");
        let bad = Facts::Answered {
            models: reply("GET /models", 200, json!({"object": "list", "data": [{"object": "model"}]}), 3.0),
            chat: None,
        };
        let v = judge(&s, &bad);
        assert!(!v.pass && v.found.contains("$.data[0].id is missing"), "{v:?}");
        let s = spec("assert = \"chat\"\nmodel = \"qwen\"");
        let v = judge(&s, &Facts::Answered {
            models: reply("GET /models", 200, models(), 3.0),
            chat: Some(Err("no answer before the check's deadline".into())),
        });
        assert!(!v.pass && v.found.contains("POST /chat/completions: no answer"), "{v:?}");
    }
}
