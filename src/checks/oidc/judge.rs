//! Judges an OpenID Connect provider: its discovery document and keys, a
//! full authorization-code + PKCE login with a verified ID token, and the
//! negative cases (wrong password, foreign redirect_uri, tampered tokens).

use super::spec::{AssertKind, Spec};
use crate::check::{all_of, Verdict};

#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// The requests made, one line each ("GET http://idp/auth -> 303 /interaction/x"),
    /// without query strings, codes, tokens or passwords.
    pub steps: Vec<String>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The flow could not get to what is judged (unreachable, an
    /// unexpected page, the deadline...).
    Failed(String),
    Discovered(Discovery),
    LoggedIn(Login),
    /// The provider sent an authorization code to the redirect URI.
    CodeIssued,
    /// The sign-in was refused: the form came back, or an error status.
    LoginRefused {
        status: u16,
    },
    /// The answer to an authorization request naming a foreign redirect URI.
    ForeignRedirect {
        status: u16,
        /// Where the provider redirected, if anywhere (without the query).
        location: Option<String>,
        /// Whether that location is the foreign URI.
        followed: bool,
        /// The start of the provider's answer (its error message).
        answer: String,
    },
    Tamper(Tamper),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Discovery {
    pub issuer: String,
    pub response_types: Vec<String>,
    pub pkce_methods: Vec<String>,
    pub signing_algs: Vec<String>,
    pub jwks_keys: usize,
    pub duplicate_kids: Vec<String>,
    pub missing_endpoints: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Login {
    pub subject: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    /// Seconds until the ID token expires.
    pub expires_in_s: i64,
    pub alg: String,
    /// The userinfo endpoint's `sub` for the access token.
    pub userinfo_subject: Result<String, String>,
    pub login_ms: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tamper {
    /// Userinfo's status for the genuine access token.
    pub genuine_status: u16,
    /// Userinfo's status for the access token with one character changed.
    pub tampered_status: u16,
    /// The ID token with one signature character changed: `Ok(why it was
    /// rejected)`, or `Err` when it verified.
    pub id_token_rejected: Result<String, String>,
}

pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    let expected = expectation(spec);
    let evidence = facts.steps.join("\n");
    let verdict = match (&spec.assertion, &facts.outcome) {
        (_, Outcome::Failed(e)) => Verdict::fail(expected.clone(), e.clone()),
        (AssertKind::Discovery, Outcome::Discovered(d)) => judge_discovery(d),
        (AssertKind::Login, Outcome::LoggedIn(login)) => judge_login(login),
        (AssertKind::Login, Outcome::LoginRefused { status }) => Verdict::fail(
            expected.clone(),
            format!("the provider refused the test user's sign-in (status {status}): check the user name and password"),
        ),
        (AssertKind::WrongPasswordRejected, Outcome::LoginRefused { status }) => Verdict::pass(
            expected.clone(),
            format!("refused (status {status}); no authorization code was issued"),
        ),
        (AssertKind::WrongPasswordRejected, Outcome::CodeIssued) => Verdict::fail(
            expected.clone(),
            "the provider issued an authorization code for a wrong password",
        ),
        (AssertKind::ForeignRedirectRejected, Outcome::ForeignRedirect { status, location, followed, answer }) => {
            if *followed {
                Verdict::fail(
                    expected.clone(),
                    format!(
                        "the provider redirected to the unregistered URI {}",
                        location.as_deref().unwrap_or("")
                    ),
                )
            } else {
                let where_to = location
                    .as_deref()
                    .map(|l| format!(", redirecting to {l}"))
                    .unwrap_or_default();
                Verdict::pass(
                    expected.clone(),
                    format!("refused with status {status}{where_to}: {answer}"),
                )
            }
        }
        (AssertKind::TamperedTokenRejected, Outcome::Tamper(t)) => judge_tamper(t),
        (_, other) => Verdict::fail(expected.clone(), format!("unexpected outcome {other:?}")),
    };
    let mut verdict = verdict.with_evidence(evidence);
    verdict.expected = expected;
    verdict
}

fn expectation(spec: &Spec) -> String {
    let issuer = &spec.issuer;
    match spec.assertion {
        AssertKind::Discovery => format!("{issuer} publishes a valid discovery document (code flow, PKCE S256, signing keys)"),
        AssertKind::Login => format!("the test user signs in at {issuer} (authorization code + PKCE) and gets a valid ID token and userinfo"),
        AssertKind::WrongPasswordRejected => format!("{issuer} refuses a wrong password and issues no code"),
        AssertKind::ForeignRedirectRejected => format!("{issuer} refuses an unregistered redirect_uri and never redirects to it"),
        AssertKind::TamperedTokenRejected => format!("{issuer} rejects a tampered access token, and a tampered ID token fails verification"),
    }
}

fn judge_discovery(d: &Discovery) -> Verdict {
    let mut parts = Vec::new();
    let has = |list: &[String], item: &str| list.iter().any(|x| x == item);
    parts.push(if has(&d.response_types, "code") {
        Verdict::pass("response type `code`", "code flow offered")
    } else {
        Verdict::fail(
            "response type `code`",
            format!("only {:?}", d.response_types),
        )
    });
    parts.push(if has(&d.pkce_methods, "S256") {
        Verdict::pass("PKCE method S256", "PKCE S256 offered")
    } else {
        Verdict::fail(
            "PKCE method S256",
            format!("code_challenge_methods_supported is {:?}", d.pkce_methods),
        )
    });
    parts.push(
        if d.signing_algs.is_empty() || has(&d.signing_algs, "none") {
            Verdict::fail(
                "ID tokens signed (no `none`)",
                format!(
                    "id_token_signing_alg_values_supported is {:?}",
                    d.signing_algs
                ),
            )
        } else {
            Verdict::pass(
                "ID tokens signed (no `none`)",
                format!("ID tokens signed with {}", d.signing_algs.join(", ")),
            )
        },
    );
    parts.push(match (d.jwks_keys, d.duplicate_kids.is_empty()) {
        (0, _) => Verdict::fail("signing keys in the JWKS", "the JWKS has no keys"),
        (_, false) => Verdict::fail(
            "signing keys with unique `kid`s",
            format!("duplicate kids {:?}", d.duplicate_kids),
        ),
        (n, true) => Verdict::pass("signing keys in the JWKS", format!("{n} JWKS keys")),
    });
    parts.push(if d.missing_endpoints.is_empty() {
        Verdict::pass(
            "authorization, token, userinfo and jwks endpoints",
            "all endpoints present",
        )
    } else {
        Verdict::fail(
            "authorization, token, userinfo and jwks endpoints",
            format!("missing {}", d.missing_endpoints.join(", ")),
        )
    });
    all_of(parts).with_metric("jwks_keys", d.jwks_keys as f64)
}

fn judge_login(l: &Login) -> Verdict {
    let mut parts = vec![Verdict::pass(
        "a verified ID token (signature, iss, aud, exp, nonce)",
        format!(
            "sub {} from {} for {} ({}, expires in {} s)",
            l.subject,
            l.issuer,
            l.audiences.join(","),
            l.alg,
            l.expires_in_s
        ),
    )];
    parts.push(match &l.userinfo_subject {
        Ok(sub) if *sub == l.subject => Verdict::pass(
            "userinfo for the access token",
            format!("userinfo agrees (sub {sub})"),
        ),
        Ok(sub) => Verdict::fail(
            "userinfo for the access token names the same subject",
            format!("userinfo says sub {sub}, the ID token {}", l.subject),
        ),
        Err(e) => Verdict::fail("userinfo for the access token", e.clone()),
    });
    all_of(parts).with_metric("login_ms", l.login_ms)
}

fn judge_tamper(t: &Tamper) -> Verdict {
    let parts = vec![
        if t.genuine_status == 200 {
            Verdict::pass(
                "userinfo accepts the genuine access token",
                "genuine access token accepted (200)",
            )
        } else {
            Verdict::fail(
                "userinfo accepts the genuine access token (the control)",
                format!("status {}", t.genuine_status),
            )
        },
        if (400..500).contains(&t.tampered_status) {
            Verdict::pass(
                "userinfo rejects the tampered access token",
                format!("tampered access token refused ({})", t.tampered_status),
            )
        } else {
            Verdict::fail(
                "userinfo rejects the tampered access token",
                format!("status {}", t.tampered_status),
            )
        },
        match &t.id_token_rejected {
            Ok(why) => Verdict::pass(
                "the tampered ID token fails verification",
                format!("tampered ID token rejected: {why}"),
            ),
            Err(e) => Verdict::fail("the tampered ID token fails verification", e.clone()),
        },
    ];
    all_of(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(assertion: AssertKind) -> Spec {
        Spec {
            issuer: "http://idp".into(),
            ca_file: None,
            assertion,
            client: None,
            user: None,
            via: None,
        }
    }

    fn facts(outcome: Outcome) -> Facts {
        Facts {
            steps: vec!["GET http://idp/auth -> 303".into()],
            outcome,
        }
    }

    fn good_discovery() -> Discovery {
        Discovery {
            issuer: "http://idp".into(),
            response_types: vec!["code".into()],
            pkce_methods: vec!["S256".into()],
            signing_algs: vec!["RS256".into()],
            jwks_keys: 1,
            duplicate_kids: vec![],
            missing_endpoints: vec![],
        }
    }

    #[test]
    fn discovery_passes_and_fails_per_property() {
        let v = judge(
            &spec(AssertKind::Discovery),
            &facts(Outcome::Discovered(good_discovery())),
        );
        assert!(v.pass, "{v:?}");
        assert!(v.evidence.contains("GET http://idp/auth"));
        type Break = fn(&mut Discovery);
        let breaks: [(Break, &str); 5] = [
            (
                |d| d.pkce_methods.clear(),
                "code_challenge_methods_supported",
            ),
            (
                |d| d.signing_algs.push("none".into()),
                "id_token_signing_alg_values_supported",
            ),
            (|d| d.jwks_keys = 0, "no keys"),
            (|d| d.duplicate_kids = vec!["k1".into()], "duplicate kids"),
            (
                |d| d.missing_endpoints = vec!["userinfo_endpoint".into()],
                "missing userinfo_endpoint",
            ),
        ];
        for (make_bad, expect) in breaks {
            let mut d = good_discovery();
            make_bad(&mut d);
            let v = judge(&spec(AssertKind::Discovery), &facts(Outcome::Discovered(d)));
            assert!(!v.pass && v.found.contains(expect), "{expect}: {v:?}");
        }
    }

    #[test]
    fn login_needs_a_matching_userinfo_subject() {
        let login = Login {
            subject: "alice".into(),
            issuer: "http://idp".into(),
            audiences: vec!["spinup-smoke".into()],
            expires_in_s: 3600,
            alg: "RS256".into(),
            userinfo_subject: Ok("alice".into()),
            login_ms: 120.0,
        };
        let v = judge(
            &spec(AssertKind::Login),
            &facts(Outcome::LoggedIn(login.clone())),
        );
        assert!(v.pass, "{v:?}");
        assert_eq!(v.metrics.get("login_ms"), Some(&120.0));
        let mut other = login.clone();
        other.userinfo_subject = Ok("mallory".into());
        let v = judge(&spec(AssertKind::Login), &facts(Outcome::LoggedIn(other)));
        assert!(!v.pass && v.found.contains("mallory"), "{v:?}");
        let v = judge(
            &spec(AssertKind::Login),
            &facts(Outcome::LoginRefused { status: 401 }),
        );
        assert!(!v.pass && v.found.contains("refused"), "{v:?}");
    }

    #[test]
    fn wrong_password_passes_only_when_refused() {
        let v = judge(
            &spec(AssertKind::WrongPasswordRejected),
            &facts(Outcome::LoginRefused { status: 401 }),
        );
        assert!(v.pass, "{v:?}");
        let v = judge(
            &spec(AssertKind::WrongPasswordRejected),
            &facts(Outcome::CodeIssued),
        );
        assert!(!v.pass && v.found.contains("wrong password"), "{v:?}");
        let v = judge(
            &spec(AssertKind::WrongPasswordRejected),
            &facts(Outcome::Failed("no form".into())),
        );
        assert!(!v.pass);
    }

    #[test]
    fn a_followed_foreign_redirect_fails() {
        let outcome = |followed| Outcome::ForeignRedirect {
            status: if followed { 303 } else { 400 },
            location: followed.then(|| "https://evil.invalid/cb".to_string()),
            followed,
            answer: "redirect_uri did not match".into(),
        };
        let v = judge(
            &spec(AssertKind::ForeignRedirectRejected),
            &facts(outcome(false)),
        );
        assert!(v.pass && v.found.contains("status 400"), "{v:?}");
        let v = judge(
            &spec(AssertKind::ForeignRedirectRejected),
            &facts(outcome(true)),
        );
        assert!(!v.pass && v.found.contains("evil.invalid"), "{v:?}");
    }

    #[test]
    fn tamper_needs_the_control_and_both_rejections() {
        let good = Tamper {
            genuine_status: 200,
            tampered_status: 401,
            id_token_rejected: Ok("signature verification failed".into()),
        };
        assert!(
            judge(
                &spec(AssertKind::TamperedTokenRejected),
                &facts(Outcome::Tamper(good.clone()))
            )
            .pass
        );
        let cases = [
            (
                Tamper {
                    genuine_status: 500,
                    ..good.clone()
                },
                "status 500",
            ),
            (
                Tamper {
                    tampered_status: 200,
                    ..good.clone()
                },
                "status 200",
            ),
            (
                Tamper {
                    id_token_rejected: Err("it verified".into()),
                    ..good.clone()
                },
                "it verified",
            ),
        ];
        for (t, expect) in cases {
            let v = judge(
                &spec(AssertKind::TamperedTokenRejected),
                &facts(Outcome::Tamper(t)),
            );
            assert!(!v.pass && v.found.contains(expect), "{expect}: {v:?}");
        }
    }
}
