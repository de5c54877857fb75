//! The places `setup` offers for backups, and what it knows of each: which backend kind holds
//! them, the region it suggests, and how the endpoint is found (none for AWS itself, from an
//! account id for Cloudflare R2, from the region for Backblaze B2, a local server for MinIO).

/// Where backups can go, as `setup --storage` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider {
    /// `--storage NAME` and the menu's word.
    pub name: &'static str,
    /// The menu's description.
    pub what: &'static str,
    /// The backend kind in the location registry that holds it (`storage.provider`).
    pub kind: &'static str,
    /// The region suggested (S3-compatible stores); empty for a folder.
    pub region: &'static str,
    pub endpoint: Endpoint,
}

/// How an S3-compatible provider's endpoint is found when `--endpoint` does not give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Not a network store: a folder.
    Folder,
    /// AWS S3 itself: no endpoint is written.
    Aws,
    /// Cloudflare R2: built from the account id ([`r2_endpoint`]).
    R2Account,
    /// Backblaze B2: suggested from the region ([`b2_endpoint`]).
    B2Region,
    /// Asked, with this suggestion.
    Suggest(&'static str),
}

/// Every provider, in the menu's order; the first is the default.
pub const PROVIDERS: &[Provider] = &[
    Provider {
        name: "local",
        what: "a folder or a mounted disk",
        kind: "local",
        region: "",
        endpoint: Endpoint::Folder,
    },
    Provider { name: "r2", what: "Cloudflare R2", kind: "s3", region: "auto", endpoint: Endpoint::R2Account },
    Provider { name: "s3", what: "AWS S3", kind: "s3", region: "us-east-1", endpoint: Endpoint::Aws },
    Provider {
        name: "b2",
        what: "Backblaze B2 (S3 API)",
        kind: "s3",
        region: "us-west-004",
        endpoint: Endpoint::B2Region,
    },
    Provider {
        name: "minio",
        what: "MinIO or another S3-compatible server",
        kind: "s3",
        region: "us-east-1",
        endpoint: Endpoint::Suggest("http://localhost:9000"),
    },
];

/// The names `--storage` takes.
pub const NAMES: [&str; PROVIDERS.len()] = {
    let mut out = [""; PROVIDERS.len()];
    let mut i = 0;
    while i < PROVIDERS.len() {
        out[i] = PROVIDERS[i].name;
        i += 1;
    }
    out
};

/// The provider called `name`.
pub fn find(name: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.name == name)
}

impl Provider {
    /// Whether backups go to a folder (no bucket, endpoint or keys to ask for).
    pub fn is_folder(&self) -> bool {
        self.endpoint == Endpoint::Folder
    }
}

/// Cloudflare R2's endpoint from the account id on the R2 page (hex digits).
pub fn r2_endpoint(account_id: &str) -> Result<String, String> {
    let s = account_id.trim();
    if s.len() >= 8 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(format!("https://{s}.r2.cloudflarestorage.com"))
    } else {
        Err(format!("{s:?} is not an account id (32 hex digits on the R2 page)"))
    }
}

/// Backblaze B2's S3 endpoint for a region.
pub fn b2_endpoint(region: &str) -> String {
    format!("https://s3.{region}.backblazeb2.com")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_is_a_registered_backend_kind() {
        for p in PROVIDERS {
            assert!(crate::repo::location::registry::KINDS.iter().any(|k| k.name == p.kind) || p.kind == "s3", "{p:?}");
            assert_eq!(find(p.name), Some(p));
            assert_eq!(p.is_folder(), p.kind == "local");
        }
        assert_eq!(NAMES, ["local", "r2", "s3", "b2", "minio"]);
        assert!(find("ftp").is_none());
    }

    #[test]
    fn endpoints() {
        assert_eq!(r2_endpoint(" 0123abcdEF ").unwrap(), "https://0123abcdEF.r2.cloudflarestorage.com");
        assert_eq!(r2_endpoint("xyz").unwrap_err(), "\"xyz\" is not an account id (32 hex digits on the R2 page)");
        assert_eq!(r2_endpoint("").unwrap_err(), "\"\" is not an account id (32 hex digits on the R2 page)");
        assert_eq!(b2_endpoint("us-west-004"), "https://s3.us-west-004.backblazeb2.com");
    }
}
