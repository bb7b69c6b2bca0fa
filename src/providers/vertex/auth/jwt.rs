//! The RS256 JWT a service account signs to ask Google's token endpoint for an access token
//! (RFC 7523 "JWT bearer" grant), and the PEM private key it is signed with.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;

/// The scope Vertex AI calls need.
pub(crate) const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// How long an assertion is valid (Google's maximum, and google-auth's default).
pub(crate) const ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);

/// Why a private key was refused (never the key's bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadKey(pub(crate) &'static str);

/// A PEM RSA private key parsed for signing: `-----BEGIN PRIVATE KEY-----` (PKCS#8, what
/// Google's key files hold) or `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1).
pub(crate) fn parse_private_key(pem: &str) -> Result<RsaKeyPair, BadKey> {
    let (label, der) = pem_body(pem).ok_or(BadKey("no PEM private key block"))?;
    match label {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
        _ => return Err(BadKey("the PEM block is not an RSA private key")),
    }
    .map_err(|_| BadKey("the RSA private key does not parse"))
}

/// The label and decoded bytes of the first PEM block in `pem`.
pub(crate) fn pem_body(pem: &str) -> Option<(&str, Vec<u8>)> {
    let start = pem.find("-----BEGIN ")?;
    let rest = &pem[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----")?;
    let label = &rest[..label_end];
    let body = &rest[label_end + 5..];
    let end = body.find("-----END ")?;
    let b64: String = body[..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = STANDARD.decode(b64).ok()?;
    Some((label, der))
}

/// Seconds since the Unix epoch (0 for a clock before it).
pub(crate) fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a service account's assertion says.
pub(crate) struct Claims<'a> {
    /// The service account's email (`iss`).
    pub(crate) issuer: &'a str,
    /// The token endpoint (`aud`).
    pub(crate) audience: &'a str,
    /// The key's id (`kid` in the header), when the key file names one.
    pub(crate) key_id: Option<&'a str>,
    /// `iat`; `exp` is an hour later.
    pub(crate) issued_at: SystemTime,
}

/// The signed assertion: `base64url(header).base64url(claims).base64url(signature)`.
pub(crate) fn assertion(claims: &Claims<'_>, key: &RsaKeyPair) -> Result<String, BadKey> {
    let mut header = json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = claims.key_id.filter(|k| !k.is_empty()) {
        header["kid"] = json!(kid);
    }
    let iat = unix_seconds(claims.issued_at);
    let body = json!({
        "iss": claims.issuer,
        "scope": CLOUD_PLATFORM_SCOPE,
        "aud": claims.audience,
        "iat": iat,
        "exp": iat.saturating_add(ASSERTION_LIFETIME.as_secs()),
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(body.to_string())
    );
    let mut signature = vec![0u8; key.public_modulus_len()];
    let rng = aws_lc_rs::rand::SystemRandom::new();
    key.sign(
        &RSA_PKCS1_SHA256,
        &rng,
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| BadKey("signing with the RSA private key failed"))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use serde_json::Value;

    const KEY_FILE: &str = include_str!(
        "../../../../tests/fixtures/vertex/auth/google_auth_test_service_account.json"
    );
    const PUBLIC_KEY: &str =
        include_str!("../../../../tests/fixtures/vertex/auth/google_auth_test_privatekey.pub");

    fn test_key() -> RsaKeyPair {
        let file: Value = serde_json::from_str(KEY_FILE).expect("key file");
        parse_private_key(file["private_key"].as_str().expect("pem")).expect("key")
    }

    fn part(jwt: &str, i: usize) -> Value {
        let seg = jwt.split('.').nth(i).expect("segment");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).expect("base64url")).expect("json")
    }

    #[test]
    fn assertion_is_signed_by_the_key_and_verifies_with_its_public_key() {
        let key = test_key();
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let claims = Claims {
            issuer: "service-account@example.com",
            audience: "https://oauth2.googleapis.com/token",
            key_id: Some("1"),
            issued_at: at,
        };
        let jwt = assertion(&claims, &key).expect("signed");
        assert_eq!(jwt.split('.').count(), 3);
        assert_eq!(
            part(&jwt, 0),
            json!({"alg": "RS256", "typ": "JWT", "kid": "1"})
        );
        assert_eq!(
            part(&jwt, 1),
            json!({
                "iss": "service-account@example.com",
                "scope": "https://www.googleapis.com/auth/cloud-platform",
                "aud": "https://oauth2.googleapis.com/token",
                "iat": 1_700_000_000u64,
                "exp": 1_700_003_600u64,
            })
        );
        let (label, der) = pem_body(PUBLIC_KEY).expect("public key");
        assert_eq!(label, "RSA PUBLIC KEY");
        let (input, sig) = jwt.rsplit_once('.').expect("signature");
        let sig = URL_SAFE_NO_PAD.decode(sig).expect("signature bytes");
        let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &der);
        public.verify(input.as_bytes(), &sig).expect("verifies");
        // A changed claim does not verify; RSASSA-PKCS1-v1_5 is deterministic.
        let other = input.replacen('e', "f", 1);
        assert!(public.verify(other.as_bytes(), &sig).is_err());
        assert_eq!(assertion(&claims, &key).expect("again"), jwt);
    }

    #[test]
    fn pkcs8_keys_parse_and_garbage_is_refused() {
        // The same key as PKCS#8, as Google's own key files hold it.
        let pkcs1 = pem_body(
            serde_json::from_str::<Value>(KEY_FILE).expect("file")["private_key"]
                .as_str()
                .expect("pem"),
        )
        .expect("pem")
        .1;
        let pkcs8 = pkcs1_to_pkcs8(&pkcs1);
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(&pkcs8)
        );
        let key = parse_private_key(&pem).expect("pkcs8");
        assert_eq!(key.public_modulus_len(), 256);
        for bad in [
            "",
            "not pem",
            "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
        ] {
            assert!(parse_private_key(bad).is_err(), "{bad:?}");
        }
    }

    /// Wraps a PKCS#1 RSAPrivateKey in a PKCS#8 PrivateKeyInfo (DER).
    fn pkcs1_to_pkcs8(pkcs1: &[u8]) -> Vec<u8> {
        fn der(tag: u8, content: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            let len = content.len();
            if len < 128 {
                out.push(len as u8);
            } else {
                let bytes: Vec<u8> = len
                    .to_be_bytes()
                    .into_iter()
                    .skip_while(|b| *b == 0)
                    .collect();
                out.push(0x80 | bytes.len() as u8);
                out.extend(bytes);
            }
            out.extend_from_slice(content);
            out
        }
        // AlgorithmIdentifier { rsaEncryption, NULL }
        let alg = der(
            0x30,
            &[
                0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
            ],
        );
        let mut content = vec![0x02, 0x01, 0x00];
        content.extend(alg);
        content.extend(der(0x04, pkcs1));
        der(0x30, &content)
    }
}
