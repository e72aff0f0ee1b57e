//! Finds an identity provider's sign-in form in an HTML page, the way a
//! person would: the form with a password field. Hidden fields (CSRF
//! tokens such as GitLab's `authenticity_token`) are kept; the user name
//! field is the one named in the profile, else the last text or email
//! field before the password field. A small tolerant scanner, not an HTML
//! parser: it reads `<form>` and `<input>` tags and their attributes.

/// A sign-in form ready to fill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginForm {
    /// The `action` attribute as written (resolve it against the page URL);
    /// empty means the page itself.
    pub action: String,
    /// `post` or `get`.
    pub method: String,
    /// Hidden fields with their values, in page order.
    pub hidden: Vec<(String, String)>,
    pub username_field: String,
    pub password_field: String,
}

/// The first form on the page that has a password field.
pub fn find_login_form(html: &str, username_field: Option<&str>) -> Option<LoginForm> {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(start) = lower[from..].find("<form").map(|i| i + from) {
        let end = lower[start..]
            .find("</form")
            .map(|i| i + start)
            .unwrap_or(lower.len());
        let tag_end = lower[start..].find('>').map(|i| i + start).unwrap_or(end);
        let form_attrs = attributes(&html[start + 5..tag_end]);
        if let Some(form) = read_form(&html[tag_end..end], &form_attrs, username_field) {
            return Some(form);
        }
        from = end.max(start + 5);
    }
    None
}

fn read_form(
    body: &str,
    form_attrs: &[(String, String)],
    username_field: Option<&str>,
) -> Option<LoginForm> {
    let lower = body.to_ascii_lowercase();
    let mut hidden = Vec::new();
    let mut last_text: Option<String> = None;
    let mut names = Vec::new();
    let mut password = None;
    let mut from = 0;
    while let Some(start) = lower[from..].find("<input").map(|i| i + from) {
        let end = lower[start..]
            .find('>')
            .map(|i| i + start)
            .unwrap_or(lower.len());
        let attrs = attributes(&body[start + 6..end]);
        from = end;
        let get = |key: &str| attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let Some(name) = get("name") else { continue };
        names.push(name.clone());
        let kind = get("type")
            .unwrap_or_else(|| "text".into())
            .to_ascii_lowercase();
        match kind.as_str() {
            "hidden" => hidden.push((name, get("value").unwrap_or_default())),
            "password" if password.is_none() => password = Some(name),
            "text" | "email" if password.is_none() => last_text = Some(name),
            _ => {}
        }
    }
    let password_field = password?;
    let username_field = match username_field {
        Some(wanted) => names.iter().find(|n| *n == wanted)?.clone(),
        None => last_text?,
    };
    let attr = |key: &str| {
        form_attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    Some(LoginForm {
        action: attr("action").unwrap_or_default(),
        method: attr("method")
            .unwrap_or_else(|| "get".into())
            .to_ascii_lowercase(),
        hidden,
        username_field,
        password_field,
    })
}

/// `key="value"`, `key='value'`, `key=value` and bare `key`, with the
/// common character references decoded in values.
fn attributes(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == '/') {
            i += 1;
        }
        let key_start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '=' && chars[i] != '/' {
            i += 1;
        }
        let key: String = chars[key_start..i]
            .iter()
            .collect::<String>()
            .to_ascii_lowercase();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < chars.len() && chars[i] == '=' {
            i += 1;
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            if i < chars.len() && (chars[i] == '"' || chars[i] == '\'') {
                let quote = chars[i];
                i += 1;
                let v_start = i;
                while i < chars.len() && chars[i] != quote {
                    i += 1;
                }
                value = chars[v_start..i].iter().collect();
                i += 1;
            } else {
                let v_start = i;
                while i < chars.len() && !chars[i].is_whitespace() {
                    i += 1;
                }
                value = chars[v_start..i].iter().collect();
            }
        }
        if !key.is_empty() {
            out.push((key, decode_entities(&value)));
        }
        if i == key_start {
            i += 1;
        }
    }
    out
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let Some(semi) = tail.find(';').filter(|s| *s <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if entity.starts_with("#x") || entity.starts_with("#X") => {
                u32::from_str_radix(&entity[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if entity.starts_with('#') => entity[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_demo_idps_form() {
        let html = r#"<h1>Sign in to spinup-smoke</h1>
<form method="post" action="/interaction/a-B_9/login">
<label>Username <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button></form>"#;
        let form = find_login_form(html, None).unwrap();
        assert_eq!(form.action, "/interaction/a-B_9/login");
        assert_eq!(form.method, "post");
        assert_eq!(form.username_field, "username");
        assert_eq!(form.password_field, "password");
        assert!(form.hidden.is_empty());
    }

    #[test]
    fn reads_a_gitlab_style_form_with_a_csrf_token_after_a_search_form() {
        let html = r#"<form action="/search" method="get"><input type="search" name="q"></form>
<FORM class="gl-show-field-errors" action="/users/sign_in" accept-charset="UTF-8" method="post">
<input type="hidden" name="authenticity_token" value="a+b/c==&amp;x" autocomplete="off" />
<input class="form-control" autocomplete="username" type="text" name="user[login]" id="user_login" />
<input class="form-control" type="password" name="user[password]" id="user_password" />
<input name="user[remember_me]" type="hidden" value="0" /><input type="checkbox" value="1" name="user[remember_me]" />
<button type="submit" name="button">Sign in</button></FORM>"#;
        let form = find_login_form(html, None).unwrap();
        assert_eq!(form.action, "/users/sign_in");
        assert_eq!(form.username_field, "user[login]");
        assert_eq!(form.password_field, "user[password]");
        assert_eq!(
            form.hidden,
            vec![
                ("authenticity_token".to_string(), "a+b/c==&x".to_string()),
                ("user[remember_me]".to_string(), "0".to_string())
            ]
        );
    }

    #[test]
    fn a_named_username_field_wins_and_must_exist() {
        let html = r#"<form method=post><input type=email name=mail><input name=login><input type=password name=pw></form>"#;
        assert_eq!(find_login_form(html, None).unwrap().username_field, "login");
        assert_eq!(
            find_login_form(html, Some("mail")).unwrap().username_field,
            "mail"
        );
        assert!(find_login_form(html, Some("nope")).is_none());
    }

    #[test]
    fn pages_without_a_password_form_have_none() {
        assert!(find_login_form("<p>consent?</p><form><input name=ok></form>", None).is_none());
        assert!(find_login_form("", None).is_none());
        assert!(find_login_form("<form <input", None).is_none());
    }

    #[test]
    fn decodes_character_references() {
        assert_eq!(
            decode_entities("a&amp;b&#39;c&#x41;&nope;&"),
            "a&b'cA&nope;&"
        );
    }
}
