//! What the HTTP channel connectors share: turning a provider's answer into a
//! delivery, and signatures in the Standard Webhooks convention
//! (<https://www.standardwebhooks.com>): `webhook-id`, `webhook-timestamp`
//! and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use kith_sdk::http::Response;
use kith_sdk::{Delivery, Error, InboundRequest};
use sha2::Sha256;

/// Seconds a provider is asked to wait when it is busy and does not say.
pub const DEFAULT_RETRY_AFTER: u32 = 30;

/// A provider's answer as a delivery: 2xx accepted (with the id `id_of`
/// finds in the body), 408/429/5xx retried after `Retry-After` seconds,
/// other statuses rejected with the start of the body.
pub fn classify(response: &Response, id_of: impl FnOnce(&[u8]) -> Option<String>) -> Delivery {
    match response.status {
        200..=299 => Delivery::Accepted(id_of(&response.body)),
        408 | 429 | 500..=599 => {
            Delivery::RetryAfter(response.header("retry-after").and_then(|s| s.trim().parse().ok()).unwrap_or(DEFAULT_RETRY_AFTER))
        }
        status => {
            let body = String::from_utf8_lossy(&response.body);
            let snippet: String = body.chars().take(200).collect();
            Delivery::Rejected(format!("provider answered {status}: {snippet}"))
        }
    }
}

/// `POST` a JSON body with `Authorization: Bearer <api_key>` and the
/// message id as `Idempotency-Key`, the way the gateway connectors send.
pub fn post_json(url: &str, api_key: &str, message_id: &str, body: &str) -> Result<Response, Error> {
    let auth = format!("Bearer {api_key}");
    kith_sdk::http::request(
        "POST",
        url,
        &[("content-type", "application/json"), ("authorization", &auth), ("idempotency-key", message_id)],
        body.as_bytes(),
    )
}

/// The key of a `whsec_<base64>` secret (a secret without the prefix is used as it is).
fn key(secret: &str) -> Result<Vec<u8>, Error> {
    match secret.strip_prefix("whsec_") {
        Some(encoded) => STANDARD.decode(encoded).map_err(|e| Error::Invalid(format!("the signing secret is not whsec_<base64>: {e}"))),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

/// `v1,<signature>` of a message with this id and timestamp (seconds).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, Error> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key(secret)?).map_err(|e| Error::Invalid(e.to_string()))?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// A header of a posted request, case-insensitively.
pub fn header<'a>(request: &'a InboundRequest, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Check a posted request signed in the Standard Webhooks convention, with
/// its timestamp within `tolerance_s` of `now_s`.
pub fn verify(secret: &str, request: &InboundRequest, now_s: i64, tolerance_s: i64) -> Result<(), Error> {
    let missing = |name: &str| Error::Invalid(format!("the `{name}` header is missing"));
    let id = header(request, "webhook-id").ok_or_else(|| missing("webhook-id"))?;
    let timestamp: i64 = header(request, "webhook-timestamp")
        .ok_or_else(|| missing("webhook-timestamp"))?
        .parse()
        .map_err(|_| Error::Invalid("`webhook-timestamp` is not a number of seconds".into()))?;
    if (now_s - timestamp).abs() > tolerance_s {
        return Err(Error::Invalid(format!("the timestamp is more than {tolerance_s}s away from now")));
    }
    let expected = sign(secret, id, timestamp, &request.body)?;
    let signatures = header(request, "webhook-signature").ok_or_else(|| missing("webhook-signature"))?;
    // Several space-separated signatures may be sent while a secret rotates.
    if signatures.split(' ').any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes())) {
        Ok(())
    } else {
        Err(Error::Invalid("the signature does not match".into()))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let request = InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            headers: vec![
                ("webhook-id".into(), "msg_p5jXN8AQM9LWM0D4loKWxJek".into()),
                ("Webhook-Timestamp".into(), "1614265330".into()),
                ("webhook-signature".into(), format!("v1,bogus {sig}")),
            ],
            body: body.to_vec(),
        };
        assert!(verify(secret, &request, 1614265330 + 10, 300).is_ok());
        assert!(verify(secret, &request, 1614265330 + 1000, 300).is_err(), "too old");
        assert!(verify("whsec_c2VjcmV0", &request, 1614265330, 300).is_err(), "other secret");
    }
}
