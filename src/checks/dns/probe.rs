//! Resolves the name through the system resolver (getaddrinfo: /etc/hosts,
//! then DNS), bounded by the deadline. The resolver's own answer is kept:
//! an authoritative "no such name" differs from no answer at all.

use std::ffi::{CStr, CString};
use std::net::IpAddr;

use super::judge::Facts;
use super::spec::Spec;
use crate::check::ProbeContext;

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Facts {
    let name = spec.name.clone();
    // getaddrinfo cannot be cancelled: the lookup runs on a blocking thread
    // of its own and is abandoned at the deadline (the process does not wait
    // for it when it exits, see cli::main).
    let lookup = tokio::task::spawn_blocking(move || getaddrinfo(&name));
    match tokio::time::timeout(ctx.remaining(), lookup).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => Facts::NoAnswer(format!("the lookup stopped: {e}")),
        Err(_) => Facts::NoAnswer("no answer before the deadline".to_string()),
    }
}

/// One blocking lookup, classified by getaddrinfo's return code.
fn getaddrinfo(name: &str) -> Facts {
    let Ok(c_name) = CString::new(name) else {
        return Facts::NotFound(format!("`{name}` holds a NUL byte"));
    };
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: hints are zeroed but for the socket type (as getaddrinfo(3)
    // allows); `list` is freed below exactly once when the call succeeded.
    let code = unsafe {
        let mut hints: libc::addrinfo = std::mem::zeroed();
        hints.ai_socktype = libc::SOCK_STREAM;
        libc::getaddrinfo(c_name.as_ptr(), std::ptr::null(), &hints, &mut list)
    };
    if code != 0 {
        // SAFETY: gai_strerror returns a static string for any code.
        let text = unsafe { CStr::from_ptr(libc::gai_strerror(code)) }
            .to_string_lossy()
            .into_owned();
        return classify(code, text);
    }
    let mut ips = Vec::new();
    let mut node = list;
    while !node.is_null() {
        // SAFETY: `node` walks the list getaddrinfo returned; each ai_addr
        // points at a sockaddr of the family it names.
        unsafe {
            let info = &*node;
            match info.ai_family {
                libc::AF_INET => {
                    let sa = &*(info.ai_addr as *const libc::sockaddr_in);
                    ips.push(IpAddr::from(u32::from_be(sa.sin_addr.s_addr).to_be_bytes()));
                }
                libc::AF_INET6 => {
                    let sa = &*(info.ai_addr as *const libc::sockaddr_in6);
                    ips.push(IpAddr::from(sa.sin6_addr.s6_addr));
                }
                _ => {}
            }
            node = info.ai_next;
        }
    }
    // SAFETY: the list came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(list) };
    ips.sort();
    ips.dedup();
    Facts::Addresses(ips)
}

/// Pure: which getaddrinfo failures are an authoritative "no such name"
/// (EAI_NONAME, EAI_NODATA); every other one (EAI_AGAIN: the resolver did
/// not answer; EAI_FAIL; a system error) is no answer.
pub fn classify(code: i32, text: String) -> Facts {
    const EAI_NODATA: i32 = -5; // glibc; not exported by the libc crate on every target
    if code == libc::EAI_NONAME || code == EAI_NODATA {
        Facts::NotFound(text)
    } else {
        Facts::NoAnswer(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::dns::run;

    #[tokio::test]
    async fn localhost_resolves_and_invalid_names_do_not() {
        let ctx = ProbeContext::for_tests(10);
        let spec = |t: &str| toml::from_str::<Spec>(t).unwrap();
        let v = run(
            &spec("name = \"localhost\"\naddresses_include = [\"127.0.0.1\"]"),
            &ctx,
        )
        .await;
        assert!(v.pass, "{v:?}");
        let v = run(&spec("name = \"no-such-host.invalid\""), &ctx).await;
        assert!(!v.pass, "{v:?}");
        assert!(
            run(
                &spec("name = \"no-such-host.invalid\"\nresolves = false"),
                &ctx
            )
            .await
            .pass
        );
    }

    #[test]
    fn only_no_such_name_is_an_authoritative_negative() {
        assert!(matches!(
            classify(libc::EAI_NONAME, "Name or service not known".into()),
            Facts::NotFound(_)
        ));
        assert!(matches!(
            classify(libc::EAI_AGAIN, "Temporary failure in name resolution".into()),
            Facts::NoAnswer(_)
        ));
        assert!(matches!(
            classify(libc::EAI_FAIL, "Non-recoverable failure".into()),
            Facts::NoAnswer(_)
        ));
    }
}
