//! Session tokens (docs/spec.md section 9): an HS256 JWT with `sub` (the tenant),
//! `exp`, and optional `lim` (limits that may only lower the server's),
//! from `Authorization: Bearer T` or, for browsers, the subprotocol list
//! `miniworker.v1, token.T`. Checked before the upgrade: a bad token is a
//! 401 and no instance is made. jsonwebtoken parses and validates; the
//! signature is HMAC-SHA256 by the `hmac` crate (an HS256-only crypto
//! provider), the only algorithm accepted.

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use miniworker::Limits;
use serde::Deserialize;
use sha2::Sha256;
use std::time::Duration;

/// The tenant of sessions without a token (a server without a key).
pub const ANONYMOUS: &str = "anonymous";

/// Limits a token may set, each only below the server's ceiling; the names
/// are those of `opened`'s `limits`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenLimits {
    pub memory: Option<u64>,
    pub stack: Option<u64>,
    pub cpu_time: Option<f64>,
    pub message: Option<u64>,
    pub queue_messages: Option<u64>,
    pub queue_bytes: Option<u64>,
    pub timers: Option<u64>,
    pub console: Option<u64>,
}

impl TokenLimits {
    /// `ceilings`, each lowered to the token's value where it is lower.
    pub fn lower(&self, ceilings: &Limits) -> Limits {
        let min = |ceiling: usize, asked: Option<u64>| {
            asked.map_or(ceiling, |a| ceiling.min(usize::try_from(a).unwrap_or(usize::MAX)))
        };
        let cpu_time = match self.cpu_time {
            Some(s) if s.is_finite() && s > 0.0 => ceilings
                .cpu_time_per_turn()
                .min(Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)),
            _ => ceilings.cpu_time_per_turn(),
        };
        // (`Limits::stack` keeps the stack above the floor the preludes need.)
        ceilings
            .clone()
            .memory(min(ceilings.memory_bytes(), self.memory))
            .stack(min(ceilings.stack_bytes(), self.stack))
            .cpu_time(cpu_time)
            .message_size(min(ceilings.message_bytes(), self.message))
            .queue_messages(min(ceilings.queue_message_count(), self.queue_messages))
            .queue_bytes(min(ceilings.queue_byte_count(), self.queue_bytes))
            .timers(min(ceilings.timer_count(), self.timers))
            .console_per_turn(min(ceilings.console_bytes_per_turn(), self.console))
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    lim: TokenLimits,
}

/// Who a session is for.
#[derive(Clone, Debug)]
pub struct Grant {
    pub tenant: String,
    pub limits: TokenLimits,
}

/// The server's key, if sessions need tokens.
pub struct Auth {
    key: Option<DecodingKey>,
    validation: Validation,
}

/// HMAC-SHA256 of a key: the one algorithm the server takes.
struct Hs256(Hmac<Sha256>);

impl Hs256 {
    fn mac(&self, msg: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(msg);
        mac
    }
}

impl signature::Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        // Constant-time comparison (hmac's verify_slice).
        self.mac(msg)
            .verify_slice(signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

fn hs256_verifier(alg: &Algorithm, key: &DecodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    if *alg != Algorithm::HS256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let mac =
        Hmac::<Sha256>::new_from_slice(key.try_get_as_bytes()?).map_err(|_| ErrorKind::InvalidKeyFormat)?;
    Ok(Box::new(Hs256(mac)))
}

/// The server verifies tokens and never signs one.
fn no_signer(_: &Algorithm, _: &EncodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    Err(ErrorKind::InvalidAlgorithm.into())
}

/// jsonwebtoken's crypto, HS256 only.
static HS256_ONLY: CryptoProvider = CryptoProvider {
    signer_factory: no_signer,
    verifier_factory: hs256_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

impl Auth {
    pub fn new(secret: Option<&[u8]>) -> Result<Auth, String> {
        // Once per process; a second call finds it installed.
        let _ = HS256_ONLY.install_default();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 0;
        Ok(Auth {
            key: secret
                .map(DecodingKey::from_secret)
                .transpose()
                .map_err(|e| format!("the auth key: {e}"))?,
            validation,
        })
    }

    /// The grant of a request, or why it has none (the 401's body).
    pub fn check(&self, headers: &HeaderMap) -> Result<Grant, String> {
        let Some(key) = &self.key else {
            return Ok(Grant {
                tenant: ANONYMOUS.into(),
                limits: TokenLimits::default(),
            });
        };
        let token = bearer(headers)
            .or_else(|| subprotocol_token(headers))
            .ok_or("no token")?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|e| format!("a bad token: {e}"))?;
        Ok(Grant {
            tenant: data.claims.sub,
            limits: data.claims.lim,
        })
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn subprotocol_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix("token."))
}
