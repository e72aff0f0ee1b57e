//! `spinup-smoke keygen`: writes an ed25519 key pair (PREFIX.key, PREFIX.pub).

use std::path::PathBuf;

use crate::exit;

use super::shared::report_user_errors;

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Writes PREFIX.key and PREFIX.pub; refuses to overwrite.
    #[arg(long, value_name = "PREFIX")]
    pub out: PathBuf,
}

pub fn keygen(args: &KeygenArgs) -> i32 {
    match crate::sign::keys::write_keypair(&args.out) {
        Ok((key, public, key_id)) => {
            println!("private key: {} (mode 0600; keep it secret)", key.display());
            println!("public key:  {}", public.display());
            println!("key id:      {key_id}");
            exit::SUCCESS
        }
        Err(e) => report_user_errors(&e.into()),
    }
}
