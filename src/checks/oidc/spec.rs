//! The `[check.oidc]` table: the provider, one assertion, and the client
//! and test user the flow assertions need, checked when the profile is read.

use std::path::PathBuf;

use reqwest::Url;
use serde::Deserialize;

use crate::checks::via::Via;

use crate::checks::Password;

/// The table as written in a profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    /// The issuer URL, exactly as the provider names itself.
    issuer: String,
    #[serde(rename = "assert")]
    assertion: AssertKind,
    client_id: Option<String>,
    /// Normally `${secret:...}`; omit for a public client.
    client_secret: Option<Password>,
    redirect_uri: Option<String>,
    /// Scopes besides `openid`.
    scopes: Option<Vec<String>>,
    username: Option<String>,
    password: Option<Password>,
    /// The sign-in form's user name field, when the first text field is not it.
    username_field: Option<String>,
    /// A PEM file of CA certificates to trust for an https issuer.
    ca_file: Option<PathBuf>,
    /// `"direct"` or `"host"` (through the host's tunnel); default: the host's.
    #[serde(default)]
    via: Option<Via>,
}

/// The assertion names accepted by `assert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssertKind {
    Discovery,
    Login,
    WrongPasswordRejected,
    ForeignRedirectRejected,
    TamperedTokenRejected,
}

impl AssertKind {
    fn name(self) -> &'static str {
        match self {
            AssertKind::Discovery => "discovery",
            AssertKind::Login => "login",
            AssertKind::WrongPasswordRejected => "wrong_password_rejected",
            AssertKind::ForeignRedirectRejected => "foreign_redirect_rejected",
            AssertKind::TamperedTokenRejected => "tampered_token_rejected",
        }
    }
    fn needs_client(self) -> bool {
        self != AssertKind::Discovery
    }
    fn needs_user(self) -> bool {
        matches!(
            self,
            AssertKind::Login
                | AssertKind::WrongPasswordRejected
                | AssertKind::TamperedTokenRejected
        )
    }
}

/// A checked `[check.oidc]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawSpec")]
pub struct Spec {
    /// Without a trailing slash.
    pub issuer: String,
    pub ca_file: Option<PathBuf>,
    pub assertion: AssertKind,
    pub client: Option<ClientSpec>,
    pub user: Option<UserSpec>,
    /// The route (`None`: the host's default).
    pub via: Option<Via>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientSpec {
    pub client_id: String,
    pub client_secret: Option<Password>,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserSpec {
    pub username: String,
    pub password: Password,
    pub username_field: Option<String>,
}

impl TryFrom<RawSpec> for Spec {
    type Error = String;

    fn try_from(raw: RawSpec) -> Result<Spec, String> {
        let kind = raw.assertion;
        let name = kind.name();
        let issuer = raw.issuer.trim().trim_end_matches('/').to_string();
        if Url::parse(&issuer).map(|u| u.scheme().starts_with("http")) != Ok(true) {
            return Err(format!(
                "`issuer = \"{}\"` is not an http(s) URL; write e.g. `issuer = \"https://gitlab.example.org\"`",
                raw.issuer
            ));
        }
        let client_fields = [
            ("client_id", raw.client_id.is_some()),
            ("client_secret", raw.client_secret.is_some()),
            ("redirect_uri", raw.redirect_uri.is_some()),
            ("scopes", raw.scopes.is_some()),
        ];
        let user_fields = [
            ("username", raw.username.is_some()),
            ("password", raw.password.is_some()),
            ("username_field", raw.username_field.is_some()),
        ];
        let mut uses = Vec::new();
        if kind.needs_client() {
            uses.extend(client_fields.iter().map(|(field, _)| *field));
        }
        if kind.needs_user() {
            uses.extend(user_fields.iter().map(|(field, _)| *field));
        }
        let set: Vec<(&str, bool)> = client_fields.into_iter().chain(user_fields).collect();
        crate::checks::reject_unused_fields(name, &set, &uses)?;
        let missing = |field: &str, example: &str| {
            format!("`assert = \"{name}\"` needs `{field}`, e.g. {example}")
        };
        let client = if kind.needs_client() {
            let client_id = raw
                .client_id
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| missing("client_id", "`client_id = \"spinup-smoke\"`"))?;
            let redirect_uri = raw.redirect_uri.ok_or_else(|| {
                missing("redirect_uri", "`redirect_uri = \"http://127.0.0.1/spinup-smoke/callback\"` (registered for the client)")
            })?;
            Url::parse(&redirect_uri)
                .map_err(|e| format!("`redirect_uri = \"{redirect_uri}\"` is not a URL: {e}"))?;
            Some(ClientSpec {
                client_id,
                client_secret: raw.client_secret,
                redirect_uri,
                scopes: raw.scopes.unwrap_or_default(),
            })
        } else {
            None
        };
        let user = if kind.needs_user() {
            Some(UserSpec {
                username: raw
                    .username
                    .ok_or_else(|| missing("username", "`username = \"${idp.test_user}\"`"))?,
                password: raw.password.ok_or_else(|| {
                    missing("password", "`password = \"${secret:idp_test_password}\"`")
                })?,
                username_field: raw.username_field,
            })
        } else {
            None
        };
        Ok(Spec {
            issuer,
            ca_file: raw.ca_file,
            assertion: kind,
            client,
            user,
            via: raw.via,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Spec, String> {
        toml::from_str::<Spec>(&format!("issuer = \"http://127.0.0.1:3000/\"\n{body}"))
            .map_err(|e| e.to_string())
    }

    const CLIENT: &str = "client_id = \"c\"\nredirect_uri = \"http://127.0.0.1/cb\"\n";
    const USER: &str = "username = \"alice\"\npassword = \"pw\"\n";

    #[test]
    fn reads_each_assertion_with_its_fields() {
        let s = parse("assert = \"discovery\"").unwrap();
        assert_eq!(s.issuer, "http://127.0.0.1:3000");
        assert!(s.client.is_none() && s.user.is_none());
        let s = parse(&format!(
            "assert = \"login\"\n{CLIENT}{USER}scopes = [\"profile\"]"
        ))
        .unwrap();
        assert_eq!(
            s.client.as_ref().unwrap().scopes,
            vec!["profile".to_string()]
        );
        assert_eq!(s.user.as_ref().unwrap().username, "alice");
        let s = parse(&format!("assert = \"foreign_redirect_rejected\"\n{CLIENT}")).unwrap();
        assert!(s.user.is_none());
    }

    #[test]
    fn rejects_wrong_fields_with_the_fix() {
        let cases = [
            (
                "assert = \"discovery\"\nclient_id = \"c\"".to_string(),
                "`client_id` does not apply",
            ),
            (format!("assert = \"login\"\n{USER}"), "needs `client_id`"),
            (format!("assert = \"login\"\n{CLIENT}"), "needs `username`"),
            (
                format!("assert = \"login\"\n{CLIENT}username = \"a\""),
                "needs `password`",
            ),
            (
                format!("assert = \"foreign_redirect_rejected\"\n{CLIENT}{USER}"),
                "`username` does not apply",
            ),
            (
                format!(
                    "assert = \"login\"\nclient_id = \"c\"\nredirect_uri = \"not a url\"\n{USER}"
                ),
                "is not a URL",
            ),
            ("assert = \"sso\"".to_string(), "unknown variant `sso`"),
        ];
        for (body, expect) in cases {
            let err = parse(&body).unwrap_err();
            assert!(err.contains(expect), "{body:?}: {err}");
        }
        let err =
            toml::from_str::<Spec>("issuer = \"idp.local\"\nassert = \"discovery\"").unwrap_err();
        assert!(err.to_string().contains("not an http(s) URL"), "{err}");
    }

    #[test]
    fn debug_output_hides_passwords_and_secrets() {
        let s = parse(&format!("assert = \"login\"\n{CLIENT}client_secret = \"s3cr3t\"\nusername = \"a\"\npassword = \"hunter2\"")).unwrap();
        let text = format!("{s:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("s3cr3t"),
            "{text}"
        );
    }
}
