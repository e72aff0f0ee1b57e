//! Where the demo's files are: the IdP (`demo/idp`), the stand-ins
//! (`demo/standins`), `scripts/build-guest-image.sh`, the profiles it runs
//! (`health-checks/`, `scenarios/`), the facts that name the guest's
//! secrets (`health-checks/rave-facts.json`) and, optionally, the `.venv` holding
//! Synapse. Found at run time, never in the build directory:
//!
//! 1. `--assets DIR` (or `SPINUP_SMOKE_ASSETS`), which must hold them;
//! 2. else `<dir of the executable>/../share/spinup-smoke` (an installation);
//! 3. else the current directory, if it is a checkout holding them.

use std::path::{Path, PathBuf};

use spinup_smoke::error::UserError;

/// What a directory must hold to serve as the demo's assets.
pub const REQUIRED: [&str; 4] = [
    "demo/idp/server.mjs",
    "demo/standins/gitlab_grafana_standin.py",
    "scripts/build-guest-image.sh",
    "health-checks/rave-facts.json",
];

/// A directory holding every asset the demo needs (absolute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assets {
    root: PathBuf,
}

impl Assets {
    /// `dir`, if it holds every asset (`REQUIRED` and the demo's profiles).
    pub fn at(dir: &Path) -> Result<Assets, UserError> {
        let missing = missing(dir);
        if !missing.is_empty() {
            return Err(UserError::new(format!(
                "{} does not hold the demo's assets: no {}",
                dir.display(),
                missing.join(", no ")
            ))
            .field("--assets")
            .hint("pass --assets (or SPINUP_SMOKE_ASSETS) with a spinup-smoke checkout or an installed share/spinup-smoke"));
        }
        let root = dir
            .canonicalize()
            .map_err(|e| UserError::new(format!("cannot resolve {}: {e}", dir.display())))?;
        Ok(Assets { root })
    }

    /// Finds the assets in the documented order (see the module comment):
    /// `explicit` is `--assets`, `exe` this program's path, `cwd` the
    /// current directory.
    pub fn find(
        explicit: Option<&Path>,
        exe: Option<&Path>,
        cwd: Option<&Path>,
    ) -> Result<Assets, UserError> {
        if let Some(dir) = explicit {
            return Assets::at(dir);
        }
        let mut looked = Vec::new();
        let installed = exe
            .and_then(Path::parent)
            .and_then(Path::parent)
            .map(|prefix| (prefix.join("share/spinup-smoke"), "beside the executable"));
        let checkout = cwd.map(|dir| (dir.to_path_buf(), "the current directory"));
        for (dir, what) in installed.into_iter().chain(checkout) {
            let missing = missing(&dir);
            if missing.is_empty() {
                return Assets::at(&dir);
            }
            looked.push(format!(
                "\n  {} ({what}): no {}",
                dir.display(),
                missing.join(", no ")
            ));
        }
        Err(UserError::new(format!(
            "cannot find the demo's assets (demo/idp, demo/standins, scripts/build-guest-image.sh, health-checks/, scenarios/); looked in:{}",
            looked.concat()
        ))
        .hint("run it from a spinup-smoke checkout (./scripts/demo.sh does), or pass --assets DIR (or SPINUP_SMOKE_ASSETS) naming one; an installation keeps them in <prefix>/share/spinup-smoke"))
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// An asset's path: `relative` below the directory.
    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.root.join(relative)
    }
}

/// The assets `dir` lacks (empty: it holds them all).
fn missing(dir: &Path) -> Vec<&'static str> {
    REQUIRED
        .iter()
        .chain(crate::PROFILES.iter())
        .copied()
        .filter(|relative| !dir.join(relative).is_file())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory holding every asset.
    fn checkout() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for relative in REQUIRED.iter().chain(crate::PROFILES.iter()) {
            let path = dir.path().join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        dir
    }

    #[test]
    fn the_explicit_directory_wins_and_must_hold_the_assets() {
        let good = checkout();
        let other = checkout();
        let found = Assets::find(Some(good.path()), None, Some(other.path())).unwrap();
        assert_eq!(found.root(), good.path().canonicalize().unwrap());

        let empty = tempfile::tempdir().unwrap();
        let e = Assets::find(Some(empty.path()), None, Some(good.path()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!(
                "{} does not hold the demo's assets",
                empty.path().display()
            )) && e.contains("no demo/idp/server.mjs")
                && e.contains("--assets"),
            "{e}"
        );
    }

    #[test]
    fn an_installation_beside_the_executable_comes_before_the_current_directory() {
        let prefix = checkout();
        let share = prefix.path().join("share/spinup-smoke");
        std::fs::create_dir_all(&share).unwrap();
        std::fs::rename(prefix.path().join("demo"), share.join("demo")).unwrap();
        std::fs::rename(prefix.path().join("scripts"), share.join("scripts")).unwrap();
        std::fs::rename(
            prefix.path().join("health-checks"),
            share.join("health-checks"),
        )
        .unwrap();
        std::fs::rename(prefix.path().join("scenarios"), share.join("scenarios")).unwrap();
        let exe = prefix.path().join("bin/spinup-smoke-demo");
        let cwd = checkout();
        let found = Assets::find(None, Some(&exe), Some(cwd.path())).unwrap();
        assert_eq!(found.root(), share.canonicalize().unwrap());
        // Without an installation, the checkout in the current directory.
        let bare = tempfile::tempdir().unwrap();
        let exe = bare.path().join("bin/spinup-smoke-demo");
        let found = Assets::find(None, Some(&exe), Some(cwd.path())).unwrap();
        assert_eq!(found.root(), cwd.path().canonicalize().unwrap());
    }

    #[test]
    fn nothing_found_names_every_place_looked_and_the_fix() {
        let bare = tempfile::tempdir().unwrap();
        let exe = bare.path().join("bin/spinup-smoke-demo");
        let cwd = tempfile::tempdir().unwrap();
        let e = Assets::find(None, Some(&exe), Some(cwd.path()))
            .unwrap_err()
            .to_string();
        let share = bare.path().join("share/spinup-smoke");
        assert!(
            e.contains(&format!(
                "{} (beside the executable): no demo/idp/server.mjs",
                share.display()
            )) && e.contains(&format!(
                "{} (the current directory): no demo/idp/server.mjs",
                cwd.path().display()
            )) && e.contains("--assets")
                && e.contains("./scripts/demo.sh"),
            "{e}"
        );
    }
}
