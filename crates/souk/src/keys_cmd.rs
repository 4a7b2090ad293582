//! `souk keys create|list|revoke`: API keys on the data directory (the same keys as
//! `/v1/keys`; the directory lock means no server runs on it meanwhile).

use clap::Subcommand;
use souk_engine::serving::shop::keys::Scope;

use crate::config::Config;
use crate::shared::{open_shop, open_store};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; its secret is printed once.
    Create {
        /// Comma list of ingest, search, admin.
        #[arg(long)]
        scopes: String,
        /// A name to tell the key by.
        #[arg(long)]
        name: Option<String>,
        /// Requests per second this key may make (default: `[auth] rate_per_second`).
        #[arg(long)]
        rate: Option<f64>,
        /// Print the key as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the keys (without secrets).
    List {
        /// Print the result as one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its id.
    Revoke { id: String },
}

pub fn run(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
    let store = open_store(config)?;
    let shop = open_shop(config, store, config.recommend.clone(), None);
    match command {
        KeysCommand::Create { scopes, name, rate, json } => {
            let scopes = scopes
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .enumerate()
                .map(|(i, s)| Scope::parse(s, &format!("scopes[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            let (key, secret) = shop.create_key_with(scopes, name, rate)?;
            let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
            if json {
                println!(
                    "{}",
                    serde_json::json!({"id": key.id, "key": secret, "scopes": scopes, "name": key.name,
                        "rate_per_second": key.rate_per_second})
                );
            } else {
                println!("{} ({}): {secret}", key.id, scopes.join(", "));
                eprintln!("souk: the key is shown only now; store it where your client reads it");
            }
        }
        KeysCommand::List { json } => {
            let keys = shop.keys();
            if json {
                let list: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
                        serde_json::json!({"id": k.id, "scopes": scopes, "name": k.name, "created_at": k.created_at})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for k in &keys {
                    let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
                    println!("{}  {}  {}", k.id, scopes.join(","), k.name.as_deref().unwrap_or(""));
                }
            }
        }
        KeysCommand::Revoke { id } => {
            if !shop.delete_key(&id)? {
                return Err(souk_engine::Error::not_found("key", id).into());
            }
            eprintln!("souk: revoked {id}");
        }
    }
    Ok(())
}
