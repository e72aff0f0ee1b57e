//! The demo's certificate authority (`tls/ca.pem`), made at `up`: it signs
//! the TLS front's certificate and the guest's.

use std::path::Path;

use spinup_smoke::error::UserError;

fn cert_error(e: rcgen::Error) -> UserError {
    UserError::new(format!("cannot make the demo certificates: {e}"))
}

/// The demo's certificate authority, made at `up` (`tls/ca.pem`): it signs
/// the TLS front's certificate and the guest's.
pub struct DemoCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl DemoCa {
    /// Makes the CA and writes its certificate to `tls/ca.pem`.
    pub fn create(state: &Path) -> Result<DemoCa, UserError> {
        let key = rcgen::KeyPair::generate().map_err(cert_error)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(cert_error)?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "RAVE demo CA");
        let cert = params.self_signed(&key).map_err(cert_error)?;
        std::fs::write(state.join("tls/ca.pem"), cert.pem())
            .map_err(|e| UserError::new(e.to_string()))?;
        Ok(DemoCa { cert, key })
    }

    /// A certificate for rave.local and 127.0.0.1, valid from yesterday for
    /// 90 days: (the chain, leaf then CA, as PEM; the private key as PEM).
    pub fn leaf(&self) -> Result<(String, String), UserError> {
        let key = rcgen::KeyPair::generate().map_err(cert_error)?;
        let mut params =
            rcgen::CertificateParams::new(vec!["rave.local".to_string(), "127.0.0.1".to_string()])
                .map_err(cert_error)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rave.local");
        let now = chrono::Utc::now();
        use chrono::Datelike;
        let start = now - chrono::Duration::days(1);
        let end = now + chrono::Duration::days(90);
        params.not_before =
            rcgen::date_time_ymd(start.year(), start.month() as u8, start.day() as u8);
        params.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
        let leaf = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(cert_error)?;
        Ok((
            format!("{}{}", leaf.pem(), self.cert.pem()),
            key.serialize_pem(),
        ))
    }
}
