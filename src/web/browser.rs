//! A minimal headless browser for sign-in flows: no automatic redirects
//! (each one is seen and recorded), cookies kept per origin (a relying
//! party's and the provider's), the provider's sign-in form found and
//! submitted once. Shared by the `oidc` probe and the `matrix` probe's
//! SSO login. Steps are recorded without query strings, so codes and
//! tokens never reach evidence.

use reqwest::Url;

use super::form;
use crate::error::error_chain;

/// Redirects followed in one sign-in before giving up.
const MAX_HOPS: usize = 25;

pub fn without_query(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Visible text of an HTML answer, squeezed, for evidence.
pub fn text_of(body: &str) -> String {
    // Drop style and script elements first.
    let mut visible = String::new();
    let lower = body.to_ascii_lowercase();
    let mut at = 0;
    while at < body.len() {
        let next = ["<style", "<script"]
            .iter()
            .filter_map(|t| lower[at..].find(t).map(|i| (i + at, *t)))
            .min();
        match next {
            Some((start, tag)) => {
                visible.push_str(&body[at..start]);
                let close = format!("</{}", &tag[1..]);
                at = lower[start..]
                    .find(&close)
                    .and_then(|i| lower[start + i..].find('>').map(|j| start + i + j + 1))
                    .unwrap_or(body.len());
            }
            None => {
                visible.push_str(&body[at..]);
                break;
            }
        }
    }
    let mut out = String::new();
    let mut in_tag = false;
    for c in visible.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// How a headless sign-in ended.
#[derive(Debug)]
pub enum SignInEnd {
    /// The browser was redirected to the return URL (with its query).
    Arrived(Url),
    /// The sign-in was refused: the form came back, or an error status.
    Refused { status: u16 },
}

pub struct Page {
    pub status: u16,
    pub location: Option<Url>,
    pub body: String,
    pub url: Url,
}

/// The user a sign-in form is filled with.
pub struct Credentials<'a> {
    pub username: &'a str,
    pub password: &'a str,
    /// The form's user name field, when it is not the last text field.
    pub username_field: Option<&'a str>,
}

/// A minimal browser: no automatic redirects, cookies kept per origin,
/// every request written to `steps`.
pub struct Browser<'a> {
    http: &'a reqwest::Client,
    /// (origin, name, value).
    cookies: Vec<(String, String, String)>,
    pub steps: Vec<String>,
}

impl<'a> Browser<'a> {
    /// `http` must not follow redirects.
    pub fn new(http: &'a reqwest::Client) -> Browser<'a> {
        Browser {
            http,
            cookies: Vec::new(),
            steps: Vec::new(),
        }
    }

    pub async fn get(&mut self, url: &Url) -> Result<Page, String> {
        let request = self.http.get(url.clone());
        self.send("GET", url, request).await
    }

    pub async fn post_form(
        &mut self,
        url: &Url,
        fields: &[(String, String)],
    ) -> Result<Page, String> {
        let request = self.http.post(url.clone()).form(fields);
        self.send("POST", url, request).await
    }

    async fn send(
        &mut self,
        method: &str,
        url: &Url,
        mut request: reqwest::RequestBuilder,
    ) -> Result<Page, String> {
        let origin = url.origin().ascii_serialization();
        let header = self
            .cookies
            .iter()
            .filter(|(o, _, _)| *o == origin)
            .map(|(_, k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        if !header.is_empty() {
            request = request.header(reqwest::header::COOKIE, header);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {}: {}", without_query(url), error_chain(&e)))?;
        let status = response.status().as_u16();
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            if let Ok(text) = value.to_str() {
                self.store_cookie(&origin, text);
            }
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url.join(l).ok());
        let body = response.text().await.unwrap_or_default();
        self.steps.push(match &location {
            Some(l) => format!(
                "{method} {} -> {status} {}",
                without_query(url),
                without_query(l)
            ),
            None => format!("{method} {} -> {status}", without_query(url)),
        });
        Ok(Page {
            status,
            location,
            body,
            url: url.clone(),
        })
    }

    fn store_cookie(&mut self, origin: &str, header: &str) {
        let first = header.split(';').next().unwrap_or("");
        let Some((name, value)) = first.split_once('=') else {
            return;
        };
        let (name, value) = (name.trim().to_string(), value.trim().to_string());
        let lower = header.to_ascii_lowercase();
        let expired = value.is_empty()
            || lower.contains("max-age=0")
            || lower.contains("expires=thu, 01 jan 1970");
        self.cookies
            .retain(|(o, n, _)| !(o == origin && *n == name));
        if !expired {
            self.cookies.push((origin.to_string(), name, value));
        }
    }

    /// Follows redirects from `start` through the provider's sign-in form
    /// (submitted once) until a redirect to a URL starting with `return_to`.
    pub async fn sign_in(
        &mut self,
        start: &Url,
        return_to: &str,
        user: &Credentials<'_>,
    ) -> Result<SignInEnd, String> {
        let mut page = self.get(start).await?;
        let mut submitted = false;
        for _ in 0..MAX_HOPS {
            if let Some(next) = page.location.clone() {
                if next.as_str().starts_with(return_to) {
                    return Ok(SignInEnd::Arrived(next));
                }
                page = self.get(&next).await?;
                continue;
            }
            let login_form = form::find_login_form(&page.body, user.username_field);
            if submitted && (page.status >= 400 || login_form.is_some()) {
                return Ok(SignInEnd::Refused {
                    status: page.status,
                });
            }
            if page.status >= 400 {
                return Err(format!(
                    "{} answered {}: {}",
                    without_query(&page.url),
                    page.status,
                    crate::text::excerpt(&text_of(&page.body), 300)
                ));
            }
            let Some(login_form) = login_form else {
                return Err(format!(
                    "{} (status {}) shows no sign-in form and does not redirect: {}",
                    without_query(&page.url),
                    page.status,
                    crate::text::excerpt(&text_of(&page.body), 300)
                ));
            };
            let action = page
                .url
                .join(&login_form.action)
                .map_err(|e| format!("the form's action `{}`: {e}", login_form.action))?;
            let mut fields = login_form.hidden.clone();
            fields.push((login_form.username_field.clone(), user.username.to_string()));
            fields.push((login_form.password_field.clone(), user.password.to_string()));
            submitted = true;
            page = if login_form.method == "post" {
                self.post_form(&action, &fields).await?
            } else {
                let mut url = action.clone();
                url.query_pairs_mut().extend_pairs(&fields);
                self.get(&url).await?
            };
        }
        Err(format!(
            "the sign-in did not reach {return_to} within {MAX_HOPS} redirects"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_kept_per_origin_replaced_and_expired() {
        let http = reqwest::Client::new();
        let mut b = Browser::new(&http);
        let idp = "http://idp:3000";
        b.store_cookie(idp, "_interaction=abc; path=/interaction/x; httponly");
        b.store_cookie(idp, "_session=s1; path=/");
        b.store_cookie(idp, "_session=s2; path=/");
        b.store_cookie("http://rp:8008", "_session=rp; Secure");
        let at = |b: &Browser, origin: &str| -> Vec<(String, String)> {
            b.cookies
                .iter()
                .filter(|(o, _, _)| o == origin)
                .map(|(_, n, v)| (n.clone(), v.clone()))
                .collect()
        };
        assert_eq!(
            at(&b, idp),
            vec![
                ("_interaction".into(), "abc".into()),
                ("_session".into(), "s2".into())
            ]
        );
        assert_eq!(
            at(&b, "http://rp:8008"),
            vec![("_session".into(), "rp".into())]
        );
        b.store_cookie(
            idp,
            "_interaction=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT",
        );
        assert_eq!(at(&b, idp), vec![("_session".into(), "s2".into())]);
    }

    #[test]
    fn evidence_urls_lose_their_queries() {
        let url = Url::parse("http://idp/cb?code=SECRET&state=x#frag").unwrap();
        assert_eq!(without_query(&url), "http://idp/cb");
        assert_eq!(
            text_of("<p>bad <b>redirect_uri</b></p>"),
            "bad redirect_uri"
        );
        assert_eq!(
            text_of("<style>h1{x:y}</style><h1>oops</h1><SCRIPT>a<b</SCRIPT> invalid_redirect_uri"),
            "oops invalid_redirect_uri"
        );
    }
}
