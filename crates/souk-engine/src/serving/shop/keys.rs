//! API keys: each grants scopes (`ingest`, `search`, `admin`; admin grants every scope).
//! A key is shown once, when created; the store keeps only its SHA-256, and the shop keeps
//! the stored keys in memory by that hash, so checking a request's key costs one hash.

use std::collections::HashMap;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Shop;
use crate::error::{Error, Result, ValidationError};
use crate::serving::page_log::now_ms;
use crate::store::Storage;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Send events.
    Ingest,
    /// Read pages: search, recommendations, similar items, trending, items, profiles.
    Search,
    /// Everything: the catalog and users (writes, deletes, records), training, experiments,
    /// keys, statistics.
    Admin,
}

impl Scope {
    pub fn parse(text: &str, field: &str) -> std::result::Result<Scope, ValidationError> {
        match text {
            "ingest" => Ok(Scope::Ingest),
            "search" => Ok(Scope::Search),
            "admin" => Ok(Scope::Admin),
            other => Err(ValidationError::new(
                "invalid_scope",
                field,
                format!("expected ingest, search or admin, found {other:?}"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Search => "search",
            Scope::Admin => "admin",
        }
    }
}

/// A stored key (its secret is not kept).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub scopes: Vec<Scope>,
    pub created_at: i64,
    /// SHA-256 of the key, hex.
    pub hash: String,
    /// Requests per second this key may make (`None`: the server's `[auth] rate_per_second`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<f64>,
}

impl ApiKey {
    /// Whether the key grants `scope` (admin grants every scope).
    pub fn grants(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }
}

/// SHA-256 of a key, hex.
pub fn key_hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buffer);
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stored keys by hash.
pub(super) fn load(store: &dyn Storage) -> Result<HashMap<String, ApiKey>> {
    let mut keys = HashMap::new();
    for (id, doc) in store.api_keys()? {
        let key: ApiKey = serde_json::from_str(&doc)
            .map_err(|e| Error::Internal(format!("stored API key {id:?} is unreadable: {e}")))?;
        keys.insert(key.hash.clone(), key);
    }
    Ok(keys)
}

impl Shop {
    /// Create a key with these scopes; returns it with its secret (shown only now).
    pub fn create_key(&self, scopes: Vec<Scope>, name: Option<String>) -> Result<(ApiKey, String)> {
        self.create_key_with(scopes, name, None)
    }

    /// [`Shop::create_key`] with a rate of the key's own (requests per second).
    pub fn create_key_with(
        &self,
        scopes: Vec<Scope>,
        name: Option<String>,
        rate_per_second: Option<f64>,
    ) -> Result<(ApiKey, String)> {
        if rate_per_second.is_some_and(|r| !(r.is_finite() && r > 0.0 && r <= 1e6)) {
            return Err(
                ValidationError::new("invalid_number", "rate_per_second", "expected a rate in (0, 1000000]").into()
            );
        }
        if scopes.is_empty() {
            return Err(ValidationError::new("invalid_scope", "scopes", "a key needs at least one scope").into());
        }
        if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
            return Err(ValidationError::new("invalid_value", "name", "expected at most 200 characters").into());
        }
        let mut scopes = scopes;
        scopes.sort_unstable();
        scopes.dedup();
        let secret = format!("souk_{}", random_hex(32));
        let key = ApiKey {
            id: format!("k-{}", random_hex(8)),
            name,
            scopes,
            created_at: now_ms(),
            hash: key_hash(&secret),
            rate_per_second,
        };
        let doc = serde_json::to_string(&key).map_err(|e| Error::Internal(format!("encoding a key: {e}")))?;
        let mut keys = self.keys.write();
        self.store().put_api_key(&key.id, &doc)?;
        keys.insert(key.hash.clone(), key.clone());
        Ok((key, secret))
    }

    /// Every key (without secrets), by id.
    pub fn keys(&self) -> Vec<ApiKey> {
        let mut all: Vec<ApiKey> = self.keys.read().values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Revoke a key; false when there was none.
    pub fn delete_key(&self, id: &str) -> Result<bool> {
        let mut keys = self.keys.write();
        let deleted = self.store().delete_api_key(id)?;
        keys.retain(|_, key| key.id != id);
        Ok(deleted)
    }

    /// The stored key a request presents, if it is one.
    pub fn authenticate(&self, secret: &str) -> Option<ApiKey> {
        self.keys.read().get(&key_hash(secret)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::serving::ShopSettings;
    use crate::store::{EmbeddedStore, StoreConfig};

    #[test]
    fn keys_are_stored_hashed_survive_a_restart_and_grant_their_scopes() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            let store = EmbeddedStore::open(dir.path(), &StoreConfig::default()).unwrap();
            Shop::new(Arc::new(store), ShopSettings::default())
        };
        let (key, secret) = {
            let shop = open();
            let (key, secret) =
                shop.create_key(vec![Scope::Search, Scope::Ingest, Scope::Search], Some("web".into())).unwrap();
            assert_eq!(key.scopes, vec![Scope::Ingest, Scope::Search]);
            assert!(secret.starts_with("souk_") && secret.len() == 69, "{secret}");
            let stored = shop.store().api_keys().unwrap();
            assert!(!stored[0].1.contains(&secret), "the secret itself is never stored");
            assert!(shop.create_key(vec![], None).is_err());
            (key, secret)
        };
        let shop = open();
        let found = shop.authenticate(&secret).expect("known after a restart");
        assert_eq!(found, key);
        assert!(found.grants(Scope::Search) && found.grants(Scope::Ingest) && !found.grants(Scope::Admin));
        assert!(shop.authenticate("souk_not-a-key").is_none());
        let (admin, _) = shop.create_key(vec![Scope::Admin], None).unwrap();
        assert!(admin.grants(Scope::Ingest));
        assert_eq!(shop.keys().len(), 2);
        assert!(shop.delete_key(&key.id).unwrap());
        assert!(shop.authenticate(&secret).is_none());
        assert!(!shop.delete_key(&key.id).unwrap());
        assert_eq!(Scope::parse("root", "scopes[0]").unwrap_err().code, "invalid_scope");
    }
}
