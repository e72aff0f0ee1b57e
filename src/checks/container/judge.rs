//! Judges a container engine's answers: its API version, and one container
//! run (exit code, output) followed by a proven removal.

use super::spec::{ApiVersion, Assertion, RunSpec, Spec};
use crate::check::{all_of, excerpt, Verdict};

/// What the engine said about itself (`GET /version`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Engine {
    /// "Podman Engine", "Engine".
    pub name: String,
    pub version: String,
    pub api_version: String,
    pub min_api_version: Option<String>,
    /// "linux/amd64".
    pub os_arch: String,
}

impl Engine {
    fn describe(&self) -> String {
        let min = self
            .min_api_version
            .as_deref()
            .map(|m| format!(", oldest {m}"))
            .unwrap_or_default();
        format!(
            "{} {} (API {}{min}, {})",
            self.name, self.version, self.api_version, self.os_arch
        )
    }
}

/// A container that ran to its exit.
#[derive(Debug, Clone, PartialEq)]
pub struct Ran {
    /// "name (short id)".
    pub container: String,
    pub exit_code: i64,
    /// stdout and stderr, interleaved as the engine logged them.
    pub output: String,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Facts {
    /// No engine answered on the socket.
    Unreachable(String),
    Version(Engine),
    /// The image is not in the engine's local store.
    ImageMissing {
        engine: Engine,
        image: String,
    },
    Run {
        engine: Engine,
        /// The run, or why it did not get to an exit code.
        ran: Result<Ran, String>,
        /// The removal and its proof; `None` when no container was created.
        removal: Option<Result<(), String>>,
    },
}

pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    let socket = spec.socket.display();
    match (&spec.assertion, facts) {
        (Assertion::Version { min_api_version }, _) => {
            let expected = match min_api_version {
                Some(min) => format!(
                    "a container engine answers the Docker API at {socket} with API {min} or newer"
                ),
                None => format!("a container engine answers the Docker API at {socket}"),
            };
            match facts {
                Facts::Unreachable(e) => Verdict::fail(expected, e.clone()),
                Facts::Version(engine) => judge_version(expected, *min_api_version, engine),
                other => Verdict::fail(expected, format!("unexpected facts {other:?}")),
            }
        }
        (Assertion::Run(run), _) => {
            let command = run.command.join(" ");
            let mut expected = format!("`{command}` in {} exits {}", run.image, run.expect_exit);
            if let Some(text) = &run.expect_output {
                expected.push_str(&format!(" and prints {text:?}"));
            }
            expected.push_str(", and the container is removed");
            match facts {
                Facts::Unreachable(e) => Verdict::fail(expected, e.clone()),
                Facts::Version(engine) => Verdict::fail(
                    expected,
                    format!("only the engine's version was read: {}", engine.describe()),
                ),
                Facts::ImageMissing { engine, image } => Verdict::fail(
                    expected,
                    format!(
                        "image {image} is not in the engine's local store; import or pull it first (e.g. `podman import ROOTFS.tar {image}`)"
                    ),
                )
                .with_evidence(format!("engine: {}", engine.describe())),
                Facts::Run {
                    engine,
                    ran,
                    removal,
                } => judge_run(expected, run, engine, ran, removal.as_ref()),
            }
        }
    }
}

fn judge_version(expected: String, min: Option<ApiVersion>, engine: &Engine) -> Verdict {
    let found = engine.describe();
    let evidence = format!("engine: {found}");
    let api = ApiVersion::parse(&engine.api_version);
    let verdict = match (min, api) {
        (None, _) => Verdict::pass(expected, found),
        (Some(_), None) => Verdict::fail(
            expected,
            format!(
                "{found}: the API version `{}` cannot be read",
                engine.api_version
            ),
        ),
        (Some(min), Some(api)) if api < min => Verdict::fail(
            expected,
            format!("{found}: API {api} is older than {min}; upgrade the engine"),
        ),
        (Some(_), Some(_)) => Verdict::pass(expected, found),
    };
    verdict.with_evidence(evidence)
}

fn judge_run(
    expected: String,
    run: &RunSpec,
    engine: &Engine,
    ran: &Result<Ran, String>,
    removal: Option<&Result<(), String>>,
) -> Verdict {
    let mut evidence = format!("engine: {}\n", engine.describe());
    let mut parts = Vec::new();
    match ran {
        Err(e) => parts.push(Verdict::fail(
            format!("`{}` runs in {}", run.command.join(" "), run.image),
            e.clone(),
        )),
        Ok(ran) => {
            evidence.push_str(&format!(
                "container: {}\nexit code: {}\noutput:\n{}\n",
                ran.container,
                ran.exit_code,
                excerpt(&ran.output, 4000)
            ));
            let exit = format!("exit code {}", run.expect_exit);
            parts.push(if ran.exit_code == run.expect_exit {
                Verdict::pass(exit, format!("exit code {}", ran.exit_code))
            } else {
                Verdict::fail(exit, format!("exit code {}", ran.exit_code))
            });
            if let Some(text) = &run.expect_output {
                let want = format!("output contains {text:?}");
                parts.push(if ran.output.contains(text.as_str()) {
                    Verdict::pass(want, "it does")
                } else {
                    Verdict::fail(
                        want,
                        format!("output was {:?}", excerpt(ran.output.trim_end(), 300)),
                    )
                });
            }
        }
    }
    match removal {
        None => evidence.push_str("removal: no container was created\n"),
        Some(Ok(())) => {
            evidence.push_str("removal: removed (the engine no longer knows it)\n");
            parts.push(Verdict::pass(
                "the container is removed",
                "removed (the engine no longer knows it)",
            ))
        }
        Some(Err(e)) => {
            evidence.push_str(&format!("removal: FAILED: {e}\n"));
            parts.push(Verdict::fail("the container is removed", e.clone()))
        }
    }
    let mut verdict = all_of(parts).with_evidence(evidence);
    verdict.expected = expected;
    if let Ok(ran) = ran {
        verdict = verdict.with_metric("container_run_ms", ran.seconds * 1000.0);
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn podman() -> Engine {
        Engine {
            name: "Podman Engine".into(),
            version: "4.3.1".into(),
            api_version: "1.41".into(),
            min_api_version: Some("1.24".into()),
            os_arch: "linux/amd64".into(),
        }
    }

    fn version_spec(min: Option<&str>) -> Spec {
        Spec {
            socket: "/run/p.sock".into(),
            via: None,
            assertion: Assertion::Version {
                min_api_version: min.and_then(ApiVersion::parse),
            },
        }
    }

    fn run_spec(expect_output: Option<&str>) -> Spec {
        Spec {
            socket: "/run/p.sock".into(),
            via: None,
            assertion: Assertion::Run(RunSpec {
                image: "localhost/bb".into(),
                command: vec!["/bin/sh".into(), "-c".into(), "echo hi".into()],
                expect_exit: 0,
                expect_output: expect_output.map(String::from),
                network: "none".into(),
                memory: None,
            }),
        }
    }

    fn ran(exit_code: i64, output: &str) -> Result<Ran, String> {
        Ok(Ran {
            container: "spinup-smoke-1 (abc)".into(),
            exit_code,
            output: output.into(),
            seconds: 0.3,
        })
    }

    #[test]
    fn version_passes_at_or_above_the_minimum() {
        let v = judge(&version_spec(Some("1.40")), &Facts::Version(podman()));
        assert!(v.pass, "{v:?}");
        assert!(v.found.contains("Podman Engine 4.3.1 (API 1.41"), "{v:?}");
        let v = judge(&version_spec(None), &Facts::Version(podman()));
        assert!(v.pass);
    }

    #[test]
    fn version_fails_below_the_minimum_or_when_unreadable() {
        let v = judge(&version_spec(Some("1.43")), &Facts::Version(podman()));
        assert!(!v.pass);
        assert!(v.found.contains("API 1.41 is older than 1.43"), "{v:?}");
        let mut odd = podman();
        odd.api_version = "v2".into();
        let v = judge(&version_spec(Some("1.40")), &Facts::Version(odd));
        assert!(!v.pass && v.found.contains("cannot be read"), "{v:?}");
        let v = judge(
            &version_spec(None),
            &Facts::Unreachable("no socket at /run/p.sock".into()),
        );
        assert!(!v.pass && v.found.contains("no socket"), "{v:?}");
    }

    #[test]
    fn run_passes_with_exit_output_and_removal() {
        let facts = Facts::Run {
            engine: podman(),
            ran: ran(0, "hi\n"),
            removal: Some(Ok(())),
        };
        let v = judge(&run_spec(Some("hi")), &facts);
        assert!(v.pass, "{v:?}");
        assert!(v.evidence.contains("exit code: 0"), "{v:?}");
        assert_eq!(v.metrics.get("container_run_ms"), Some(&300.0));
    }

    #[test]
    fn run_fails_for_each_broken_property() {
        let cases = [
            (ran(3, "hi"), Some(Ok(())), "exit code 3"),
            (ran(0, "bye"), Some(Ok(())), "output was \"bye\""),
            (
                ran(0, "hi"),
                Some(Err("abc is still there after its removal".to_string())),
                "still there",
            ),
            (
                Err("abc did not exit within 9.0s".to_string()),
                Some(Ok(())),
                "did not exit",
            ),
            (
                Err(
                    "creating a container from localhost/bb: the engine answered 500: boom"
                        .to_string(),
                ),
                None,
                "answered 500",
            ),
        ];
        for (ran, removal, expect) in cases {
            let facts = Facts::Run {
                engine: podman(),
                ran,
                removal,
            };
            let v = judge(&run_spec(Some("hi")), &facts);
            assert!(!v.pass, "{facts:?}");
            assert!(v.found.contains(expect), "{expect}: {v:?}");
        }
    }

    #[test]
    fn a_missing_image_says_how_to_bring_it_in() {
        let facts = Facts::ImageMissing {
            engine: podman(),
            image: "localhost/bb".into(),
        };
        let v = judge(&run_spec(None), &facts);
        assert!(!v.pass);
        assert!(
            v.found.contains("podman import ROOTFS.tar localhost/bb"),
            "{v:?}"
        );
    }
}
