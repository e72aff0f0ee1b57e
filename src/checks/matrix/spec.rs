//! The `[check.matrix]` table: the homeserver and one assertion with its
//! parameters, checked when the profile is read.

use std::path::PathBuf;

use serde::Deserialize;

use crate::checks::via::Via;

/// Largest media a round trip may upload.
const MAX_MEDIA_BYTES: usize = 10 * 1024 * 1024;

/// The table as written in a profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    /// The client API base URL, e.g. `http://127.0.0.1:8008`.
    base_url: String,
    /// What to assert: versions, server_version, registration_closed,
    /// federation_disabled, login_whoami, media_roundtrip or sso_advertised.
    #[serde(rename = "assert")]
    assertion: AssertKind,
    /// `versions`: spec versions that `/_matrix/client/versions` must list, e.g. ["v1.1"].
    #[serde(default)]
    expect_versions: Option<Vec<String>>,
    /// `server_version`: the lowest acceptable server version, e.g. "1.90".
    #[serde(default)]
    min_version: Option<String>,
    /// `login_whoami`/`media_roundtrip`: a full user id (`@operator:rave.local`) or a localpart.
    #[serde(default)]
    user: Option<String>,
    /// That user's password, normally `${secret:...}`.
    #[serde(default)]
    password: Option<Password>,
    /// `media_roundtrip`: how many random bytes to upload (default 65536, at most 10 MiB).
    #[serde(default)]
    media_bytes: Option<usize>,
    /// `sso_advertised`: an identity provider id that must be listed (any one
    /// by default); `sso_login`: the one to sign in with, e.g. "oidc-rave".
    #[serde(default)]
    identity_provider: Option<String>,
    /// `sso_login`: the user name at the identity provider.
    #[serde(default)]
    idp_username: Option<String>,
    /// `sso_login`: that user's password there, normally `${secret:...}`.
    #[serde(default)]
    idp_password: Option<Password>,
    /// `sso_login`: where Synapse sends the login token; it must be under
    /// `sso.client_whitelist` (default `<base_url>/_spinup-smoke/sso-return`).
    #[serde(default)]
    return_url: Option<String>,
    /// A PEM file of CA certificates to trust for an https `base_url`.
    #[serde(default)]
    ca_file: Option<PathBuf>,
    /// `"direct"` or `"host"` (through the host's tunnel); default: the host's.
    #[serde(default)]
    via: Option<Via>,
}

/// The assertion names accepted by `assert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssertKind {
    Versions,
    ServerVersion,
    RegistrationClosed,
    FederationDisabled,
    LoginWhoami,
    MediaRoundtrip,
    SsoAdvertised,
    SsoLogin,
}

impl AssertKind {
    pub fn name(self) -> &'static str {
        match self {
            AssertKind::Versions => "versions",
            AssertKind::ServerVersion => "server_version",
            AssertKind::RegistrationClosed => "registration_closed",
            AssertKind::FederationDisabled => "federation_disabled",
            AssertKind::LoginWhoami => "login_whoami",
            AssertKind::MediaRoundtrip => "media_roundtrip",
            AssertKind::SsoAdvertised => "sso_advertised",
            AssertKind::SsoLogin => "sso_login",
        }
    }
}

/// A checked `[check.matrix]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawSpec")]
pub struct Spec {
    /// Without a trailing slash.
    pub base_url: String,
    pub ca_file: Option<PathBuf>,
    pub assertion: Assertion,
    /// The route (`None`: the host's default).
    pub via: Option<Via>,
}

/// One assertion with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Assertion {
    /// `/_matrix/client/versions` lists every one of `expect`.
    Versions { expect: Vec<String> },
    /// The server reports its version (admin or federation endpoint),
    /// at least `min_version` when given.
    ServerVersion { min_version: Option<String> },
    /// A registration attempt without credentials is refused.
    RegistrationClosed,
    /// The federation API and the server-key endpoint are not served.
    FederationDisabled,
    /// Password login, whoami returns that user, logout succeeds.
    LoginWhoami { user: String, password: Password },
    /// Upload random bytes and download the same bytes.
    MediaRoundtrip {
        user: String,
        password: Password,
        bytes: usize,
    },
    /// The login flows include `m.login.sso` with an identity provider.
    SsoAdvertised { identity_provider: Option<String> },
    /// Sign in through the identity provider (its own form), log in with
    /// the login token Synapse hands back, whoami returns `user`, log out.
    SsoLogin {
        identity_provider: String,
        user: String,
        idp_username: String,
        idp_password: Password,
        return_url: Option<String>,
    },
}

impl TryFrom<RawSpec> for Spec {
    type Error = String;

    fn try_from(raw: RawSpec) -> Result<Spec, String> {
        let kind = raw.assertion;
        let name = kind.name();
        let uses: &[&str] = match kind {
            AssertKind::Versions => &["expect_versions"],
            AssertKind::ServerVersion => &["min_version"],
            AssertKind::RegistrationClosed | AssertKind::FederationDisabled => &[],
            AssertKind::LoginWhoami => &["user", "password"],
            AssertKind::MediaRoundtrip => &["user", "password", "media_bytes"],
            AssertKind::SsoAdvertised => &["identity_provider"],
            AssertKind::SsoLogin => &[
                "identity_provider",
                "user",
                "idp_username",
                "idp_password",
                "return_url",
            ],
        };
        let set = [
            ("expect_versions", raw.expect_versions.is_some()),
            ("min_version", raw.min_version.is_some()),
            ("user", raw.user.is_some()),
            ("password", raw.password.is_some()),
            ("media_bytes", raw.media_bytes.is_some()),
            ("identity_provider", raw.identity_provider.is_some()),
            ("idp_username", raw.idp_username.is_some()),
            ("idp_password", raw.idp_password.is_some()),
            ("return_url", raw.return_url.is_some()),
        ];
        crate::checks::reject_unused_fields(name, &set, uses)?;
        let missing = |field: &str, example: &str| {
            format!("`assert = \"{name}\"` needs `{field}`, e.g. {example}")
        };
        let base_url = crate::checks::http_base_url(&raw.base_url, "http://127.0.0.1:8008")?;
        let login = |raw: &RawSpec| -> Result<(String, Password), String> {
            let user = raw
                .user
                .clone()
                .ok_or_else(|| missing("user", "`user = \"@operator:rave.local\"`"))?;
            let password = raw.password.clone().ok_or_else(|| {
                missing(
                    "password",
                    "`password = \"${secret:synapse_operator_password}\"`",
                )
            })?;
            Ok((user, password))
        };
        let assertion = match kind {
            AssertKind::Versions => {
                let expect = raw
                    .expect_versions
                    .clone()
                    .ok_or_else(|| missing("expect_versions", "`expect_versions = [\"v1.1\"]`"))?;
                if expect.is_empty() {
                    return Err("`expect_versions` is empty; list at least one version".into());
                }
                Assertion::Versions { expect }
            }
            AssertKind::ServerVersion => {
                if let Some(v) = &raw.min_version {
                    if version_numbers(v).is_empty() {
                        return Err(format!(
                            "`min_version = \"{v}\"` is not a dotted version like \"1.90\""
                        ));
                    }
                }
                Assertion::ServerVersion {
                    min_version: raw.min_version.clone(),
                }
            }
            AssertKind::RegistrationClosed => Assertion::RegistrationClosed,
            AssertKind::FederationDisabled => Assertion::FederationDisabled,
            AssertKind::LoginWhoami => {
                let (user, password) = login(&raw)?;
                Assertion::LoginWhoami { user, password }
            }
            AssertKind::MediaRoundtrip => {
                let (user, password) = login(&raw)?;
                let bytes = raw.media_bytes.unwrap_or(65536);
                if bytes == 0 || bytes > MAX_MEDIA_BYTES {
                    return Err(format!(
                        "`media_bytes = {bytes}` must be between 1 and {MAX_MEDIA_BYTES}"
                    ));
                }
                Assertion::MediaRoundtrip {
                    user,
                    password,
                    bytes,
                }
            }
            AssertKind::SsoAdvertised => Assertion::SsoAdvertised {
                identity_provider: raw.identity_provider.clone(),
            },
            AssertKind::SsoLogin => Assertion::SsoLogin {
                identity_provider: raw.identity_provider.clone().ok_or_else(|| {
                    missing("identity_provider", "`identity_provider = \"oidc-rave\"`")
                })?,
                user: raw
                    .user
                    .clone()
                    .ok_or_else(|| missing("user", "`user = \"@alice:rave.local\"`"))?,
                idp_username: raw.idp_username.clone().ok_or_else(|| {
                    missing("idp_username", "`idp_username = \"${idp.test_user}\"`")
                })?,
                idp_password: raw.idp_password.clone().ok_or_else(|| {
                    missing(
                        "idp_password",
                        "`idp_password = \"${secret:idp_test_password}\"`",
                    )
                })?,
                return_url: raw.return_url.clone(),
            },
        };
        Ok(Spec {
            base_url,
            ca_file: raw.ca_file,
            assertion,
            via: raw.via,
        })
    }
}

pub use crate::checks::Password;

/// The numbers of a dotted version ("1.98.0rc1" -> [1, 98, 0]).
pub fn version_numbers(version: &str) -> Vec<u64> {
    version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .map_while(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Spec, String> {
        toml::from_str::<Spec>(&format!("base_url = \"http://hs:8008/\"\n{body}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_each_assertion() {
        let s = parse("assert = \"versions\"\nexpect_versions = [\"v1.1\"]").unwrap();
        assert_eq!(s.base_url, "http://hs:8008");
        assert_eq!(
            s.assertion,
            Assertion::Versions {
                expect: vec!["v1.1".into()]
            }
        );
        let s = parse("assert = \"media_roundtrip\"\nuser = \"@op:x\"\npassword = \"pw\"").unwrap();
        assert!(matches!(
            s.assertion,
            Assertion::MediaRoundtrip { bytes: 65536, .. }
        ));
        assert!(!format!("{s:?}").contains("pw\""));
        assert!(parse("assert = \"registration_closed\"").is_ok());
        assert!(parse("assert = \"sso_advertised\"\nidentity_provider = \"oidc-rave\"").is_ok());
    }

    #[test]
    fn rejects_wrong_fields_with_the_fix() {
        let cases = [
            ("assert = \"versions\"", "needs `expect_versions`"),
            (
                "assert = \"sso_login\"\nuser = \"alice\"\nidp_username = \"alice\"\nidp_password = \"p\"",
                "needs `identity_provider`",
            ),
            (
                "assert = \"sso_login\"\nidentity_provider = \"oidc-rave\"\nuser = \"alice\"\nidp_username = \"alice\"",
                "needs `idp_password`",
            ),
            (
                "assert = \"login_whoami\"\nuser = \"op\"\npassword = \"p\"\nidp_username = \"x\"",
                "`idp_username` does not apply",
            ),
            ("assert = \"versions\"\nexpect_versions = []", "is empty"),
            (
                "assert = \"login_whoami\"\nuser = \"op\"",
                "needs `password`",
            ),
            (
                "assert = \"federation_disabled\"\nuser = \"op\"",
                "`user` does not apply",
            ),
            (
                "assert = \"server_version\"\nmin_version = \"new\"",
                "not a dotted version",
            ),
            (
                "assert = \"media_roundtrip\"\nuser = \"a\"\npassword = \"b\"\nmedia_bytes = 0",
                "between 1",
            ),
            ("assert = \"open\"", "unknown variant"),
            (
                "assert = \"versions\"\nexpect_versions = [\"v1.1\"]\nurl = \"x\"",
                "unknown field `url`",
            ),
        ];
        for (body, expect) in cases {
            let err = parse(body).unwrap_err();
            assert!(err.contains(expect), "{body}: {err}");
        }
        let err =
            toml::from_str::<Spec>("base_url = \"hs:8008\"\nassert = \"registration_closed\"")
                .unwrap_err()
                .to_string();
        assert!(err.contains("not an http(s) URL"), "{err}");
    }

    #[test]
    fn version_numbers_read_dotted_versions() {
        assert_eq!(version_numbers("1.98.0"), vec![1, 98, 0]);
        assert_eq!(version_numbers("v1.11"), vec![1, 11]);
        assert_eq!(version_numbers("1.120.0rc1"), vec![1, 120, 0]);
        assert!(version_numbers("new").is_empty());
    }
}
