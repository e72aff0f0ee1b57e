//! Sizes and disk image formats as profiles write them.

use serde::Deserialize;

/// A disk image format QEMU is told to expect (never probed from content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    #[default]
    Qcow2,
    Raw,
}

impl ImageFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Raw => "raw",
        }
    }
}

/// A size with a binary unit, as written in profiles: "4GiB", "512MiB",
/// "3G" (G, M, K are binary too), or plain bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let s = text.trim();
        let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        if digits == 0 {
            return Err(format!(
                "invalid size `{text}`: write a number with a unit, e.g. \"4GiB\" or \"512MiB\""
            ));
        }
        let number: u64 = s[..digits]
            .parse()
            .map_err(|_| format!("invalid size `{text}`: number too large"))?;
        let shift = match s[digits..].trim() {
            "" | "B" => 0,
            "K" | "KiB" | "k" => 10,
            "M" | "MiB" => 20,
            "G" | "GiB" => 30,
            "T" | "TiB" => 40,
            other => {
                return Err(format!(
                    "invalid size `{text}`: unknown unit `{other}` (use KiB, MiB, GiB or TiB)"
                ))
            }
        };
        number
            .checked_mul(1u64 << shift)
            .map(ByteSize)
            .ok_or_else(|| format!("invalid size `{text}`: too large"))
    }
    pub fn mib(self) -> u64 {
        self.0 >> 20
    }
}

impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let gib = self.0 as f64 / (1u64 << 30) as f64;
        if gib >= 1.0 {
            write!(f, "{gib:.2} GiB")
        } else {
            write!(f, "{:.1} MiB", self.0 as f64 / (1u64 << 20) as f64)
        }
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Bytes(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) => ByteSize::parse(&t).map_err(serde::de::Error::custom),
            Raw::Bytes(b) => Ok(ByteSize(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units_and_reject_nonsense() {
        assert_eq!(ByteSize::parse("4GiB").unwrap().0, 4 << 30);
        assert_eq!(ByteSize::parse("3G").unwrap().0, 3 << 30);
        assert_eq!(ByteSize::parse("512MiB").unwrap().mib(), 512);
        assert_eq!(ByteSize::parse("1024").unwrap().0, 1024);
        assert!(ByteSize::parse("GiB")
            .unwrap_err()
            .contains("write a number"));
        assert!(ByteSize::parse("4 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
    }
}
