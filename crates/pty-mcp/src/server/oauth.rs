//! OAuth 2.1 access tokens at the HTTP front door (`serve --http --oauth-issuer URL`): a JWT
//! signed with one of the issuer's keys (its JWKS, found through its metadata, RFC 8414), issued
//! by it, for this server as audience (`--oauth-audience`), not expired. The operator is a claim
//! of the token (`--oauth-user-claim`, `sub` by default). This server also publishes its
//! protected-resource metadata (RFC 9728) and names it in every 401, so MCP clients can find
//! the issuer by themselves.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};

/// Unknown key ids send the server to the issuer's JWKS again (keys rotate), at most this often.
const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(60);
/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;
/// How long a request to the issuer may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// What `--oauth-*` said.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The authorization server (`iss`).
    pub issuer: String,
    /// This server's resource identifier: the URL clients reach MCP at (`aud`).
    pub audience: String,
    /// The claim naming the operator.
    pub user_claim: String,
    /// Extra CA certificates (PEM) trusted for the issuer besides the system's roots.
    pub ca: Option<std::path::PathBuf>,
}

/// The issuer's keys and how to check its tokens.
pub struct OAuth {
    settings: Settings,
    jwks_uri: String,
    http: reqwest::Client,
    keys: tokio::sync::RwLock<JwkSet>,
    /// When the keys were last fetched again for an unknown key id (None: not yet).
    refreshed: Mutex<Option<Instant>>,
}

impl OAuth {
    /// Finds the issuer's keys (its metadata, then its JWKS).
    ///
    /// # Errors
    /// An issuer that is not HTTPS (plain HTTP only on loopback), unreachable, or whose
    /// metadata names no usable JWKS.
    pub async fn discover(settings: Settings) -> anyhow::Result<OAuth> {
        let issuer = settings.issuer.trim_end_matches('/').to_string();
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"].iter().any(|p| issuer.starts_with(p));
        anyhow::ensure!(
            issuer.starts_with("https://") || loopback,
            "--oauth-issuer {issuer}: an https:// URL is needed"
        );
        let tls = audit::tls::client_config(issuer.starts_with("https://"), settings.ca.as_deref().map(Path::new))?;
        let http = reqwest::Client::builder().timeout(FETCH_TIMEOUT).tls_backend_preconfigured(tls).build()?;
        let mut jwks_uri = None;
        for well_known in ["oauth-authorization-server", "openid-configuration"] {
            let url = format!("{issuer}/.well-known/{well_known}");
            let Ok(response) = http.get(&url).send().await else { continue };
            let Ok(meta) = response.error_for_status().map(|r| r.json::<Value>()) else { continue };
            if let Some(uri) = meta.await.ok().and_then(|m| m["jwks_uri"].as_str().map(String::from)) {
                jwks_uri = Some(uri);
                break;
            }
        }
        let jwks_uri = jwks_uri.with_context(|| {
            format!("--oauth-issuer {issuer}: no jwks_uri in its /.well-known/oauth-authorization-server or openid-configuration")
        })?;
        let keys = fetch(&http, &jwks_uri).await?;
        tracing::info!("OAuth issuer {issuer}: {} keys from {jwks_uri}", keys.keys.len());
        Ok(OAuth {
            settings: Settings { issuer, ..settings },
            jwks_uri,
            http,
            keys: tokio::sync::RwLock::new(keys),
            refreshed: Mutex::new(None),
        })
    }

    /// The operator `token` names, if it is a valid access token for this server. Anything
    /// wrong (signature, issuer, audience, time, algorithm, a missing claim) is `None`; why is
    /// logged at debug level only.
    pub async fn operator(&self, token: &str) -> Option<String> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        // Only the issuer's public keys sign: a symmetric algorithm would let anyone who knows
        // a public key forge tokens.
        if matches!(header.alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            tracing::debug!("OAuth token refused: algorithm {:?}", header.alg);
            return None;
        }
        let mut key = self.key(header.kid.as_deref()).await;
        if key.is_none() && self.may_refresh() {
            match fetch(&self.http, &self.jwks_uri).await {
                Ok(keys) => *self.keys.write().await = keys,
                Err(e) => tracing::warn!("OAuth: the issuer's keys could not be fetched again: {e:#}"),
            }
            key = self.key(header.kid.as_deref()).await;
        }
        let key = key?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        match jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation) {
            Ok(data) => {
                let name = data.claims.get(&self.settings.user_claim).and_then(Value::as_str);
                name.filter(|n| !n.is_empty()).map(String::from)
            }
            Err(e) => {
                tracing::debug!("OAuth token refused: {e}");
                None
            }
        }
    }

    /// The key of id `kid` (or the only key, for a token without one).
    async fn key(&self, kid: Option<&str>) -> Option<DecodingKey> {
        let keys = self.keys.read().await;
        let jwk = match kid {
            Some(kid) => keys.find(kid),
            None if keys.keys.len() == 1 => keys.keys.first(),
            None => None,
        }?;
        DecodingKey::from_jwk(jwk).ok()
    }

    /// Whether an unknown key id may send the server to the issuer now: a rotated key is found
    /// at once, a stream of forged key ids costs the issuer one request a minute.
    fn may_refresh(&self) -> bool {
        let mut refreshed = self.refreshed.lock().unwrap_or_else(|e| e.into_inner());
        let due = refreshed.is_none_or(|at| at.elapsed() >= REFRESH_AT_MOST_EVERY);
        if due {
            *refreshed = Some(Instant::now());
        }
        due
    }

    /// This server's protected-resource metadata (RFC 9728).
    pub fn metadata(&self) -> Value {
        json!({
            "resource": self.settings.audience,
            "authorization_servers": [self.settings.issuer],
            "bearer_methods_supported": ["header"],
            "resource_name": "pty-mcp",
        })
    }

    /// Where the metadata is published: `/.well-known/oauth-protected-resource` inserted between
    /// the resource's host and path (RFC 9728, section 3.1).
    pub fn metadata_url(&self) -> String {
        metadata_url(&self.settings.audience)
    }
}

/// See [`OAuth::metadata_url`].
pub fn metadata_url(resource: &str) -> String {
    let (scheme, rest) = resource.split_once("://").unwrap_or(("https", resource));
    let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        format!("{scheme}://{host}/.well-known/oauth-protected-resource")
    } else {
        format!("{scheme}://{host}/.well-known/oauth-protected-resource/{path}")
    }
}

async fn fetch(http: &reqwest::Client, uri: &str) -> anyhow::Result<JwkSet> {
    let response = http.get(uri).send().await.with_context(|| format!("fetching {uri}"))?;
    let keys: JwkSet = response.error_for_status()?.json().await.with_context(|| format!("{uri}: not a JWKS"))?;
    anyhow::ensure!(!keys.keys.is_empty(), "{uri}: the JWKS holds no key");
    Ok(keys)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_metadata_sits_between_host_and_path() {
        assert_eq!(
            super::metadata_url("https://bastion.example.com:8765/mcp"),
            "https://bastion.example.com:8765/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(super::metadata_url("https://b.example/"), "https://b.example/.well-known/oauth-protected-resource");
    }
}
