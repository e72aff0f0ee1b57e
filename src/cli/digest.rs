//! `spinup-smoke digest`: the streamed SHA-256 of a file as `sha256:<hex>`.

use std::path::PathBuf;

use crate::error::UserError;
use crate::exit;

use super::shared::report_user_errors;

#[derive(Debug, clap::Args)]
pub struct DigestArgs {
    pub path: PathBuf,
}

pub fn digest(args: &DigestArgs) -> i32 {
    match crate::digest::sha256_file(&args.path) {
        Ok(d) => {
            println!("{d}");
            exit::SUCCESS
        }
        Err(e) => report_user_errors(
            &UserError::new(format!("cannot read {}: {e}", args.path.display()))
                .hint("pass the path of a readable file")
                .into(),
        ),
    }
}
