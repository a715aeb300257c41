//! AWS Signature Version 4 verification for the TCP listener.
//!
//! The AWS CLI and SDKs always sign requests; berth checks the signature against the
//! key pair it generated at first start (`berth credentials` prints it). Only the
//! header form (`Authorization: AWS4-HMAC-SHA256 …`) is accepted — the ECS JSON
//! protocol never uses presigned URLs. A request is accepted when the signature matches,
//! `host` and `x-amz-date` are signed, the service is `ecs`, and the clock skew is
//! under 15 minutes (AWS's limit, which bounds replay).

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The largest clock difference accepted, as AWS.
const MAX_SKEW_SECS: i64 = 15 * 60;

/// A key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Why a request was refused. The message is what the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("Missing Authentication Token")]
    Missing,
    #[error(
        "Authorization header is not AWS4-HMAC-SHA256 with Credential, SignedHeaders and Signature"
    )]
    Malformed,
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    #[error("Credential should be scoped to correct service: 'ecs'.")]
    WrongService,
    #[error("X-Amz-Date is missing or malformed")]
    BadDate,
    #[error("Signature expired: request time is more than 15 minutes from the server time")]
    Expired,
    #[error("the host and x-amz-date headers must be signed")]
    UnsignedHeaders,
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method."
    )]
    Mismatch,
}

impl AuthError {
    /// The `__type` the SDKs expect for this refusal.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "MissingAuthenticationTokenException",
            AuthError::UnknownKey => "UnrecognizedClientException",
            AuthError::Expired => "InvalidSignatureException",
            AuthError::Malformed
            | AuthError::WrongService
            | AuthError::BadDate
            | AuthError::UnsignedHeaders
            | AuthError::Mismatch => "InvalidSignatureException",
        }
    }
}

/// The parts of a request the signature covers.
#[derive(Debug, Clone)]
pub(crate) struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// Every header, names in any case.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

struct AuthHeader<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<AuthHeader<'_>, AuthError> {
    let rest = value
        .strip_prefix("AWS4-HMAC-SHA256")
        .ok_or(AuthError::Malformed)?
        .trim();
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(AuthError::Malformed)?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let credential = credential.ok_or(AuthError::Malformed)?;
    let mut scope = credential.split('/');
    let (Some(access_key), Some(date), Some(region), Some(service), Some("aws4_request"), None) = (
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
    ) else {
        return Err(AuthError::Malformed);
    };
    Ok(AuthHeader {
        access_key,
        date,
        region,
        service,
        signed_headers: signed.ok_or(AuthError::Malformed)?.split(';').collect(),
        signature: signature.ok_or(AuthError::Malformed)?,
    })
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Verifies `req` against `creds` at time `now`.
pub(crate) fn verify(
    req: &SignedRequest<'_>,
    creds: &Credentials,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    let auth = header(req.headers, "authorization").ok_or(AuthError::Missing)?;
    let auth = parse_authorization(auth)?;
    if auth.access_key != creds.access_key_id {
        return Err(AuthError::UnknownKey);
    }
    if auth.service != "ecs" {
        return Err(AuthError::WrongService);
    }
    if !auth.signed_headers.contains(&"host") || !auth.signed_headers.contains(&"x-amz-date") {
        return Err(AuthError::UnsignedHeaders);
    }
    let amz_date = header(req.headers, "x-amz-date").ok_or(AuthError::BadDate)?;
    let when = NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| AuthError::BadDate)?
        .and_utc();
    if !amz_date.starts_with(auth.date) {
        return Err(AuthError::BadDate);
    }
    if (now - when).num_seconds().abs() > MAX_SKEW_SECS {
        return Err(AuthError::Expired);
    }
    let expected = signature(req, &auth, amz_date, &creds.secret_access_key)?;
    if constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        Ok(())
    } else {
        Err(AuthError::Mismatch)
    }
}

fn signature(
    req: &SignedRequest<'_>,
    auth: &AuthHeader<'_>,
    amz_date: &str,
    secret: &str,
) -> Result<String, AuthError> {
    let mut canonical_headers = String::new();
    for name in &auth.signed_headers {
        let values: Vec<&str> = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        if values.is_empty() {
            return Err(AuthError::Mismatch);
        }
        let joined = values
            .iter()
            .map(|v| collapse_spaces(v))
            .collect::<Vec<_>>()
            .join(",");
        canonical_headers.push_str(&format!("{name}:{joined}\n"));
    }
    // Always the hash of the body received: a client-supplied x-amz-content-sha256
    // is only a claim, and trusting it would let anyone replay a captured signature
    // with a different body (the header need not even be signed).
    let payload_hash = hex::encode(Sha256::digest(req.body));
    if let Some(claimed) = header(req.headers, "x-amz-content-sha256")
        && !claimed.eq_ignore_ascii_case(&payload_hash)
    {
        return Err(AuthError::Mismatch);
    }
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.path),
        canonical_query(req.query),
        canonical_headers,
        auth.signed_headers.join(";"),
        payload_hash
    );
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    let k_region = hmac(&k_date, auth.region.as_bytes());
    let k_service = hmac(&k_region, auth.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    Ok(hex::encode(hmac(&k_signing, string_to_sign.as_bytes())))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn collapse_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The path as SigV4 canonicalises it for services other than S3: each segment
/// URI-encoded (the SDKs encode it once already, so this re-encodes `%`).
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    path.split('/')
        .map(uri_encode)
        .collect::<Vec<_>>()
        .join("/")
}

fn canonical_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Signs a request (used by tests and by `berth` when it talks to a remote daemon).
#[cfg(test)]
pub(crate) fn sign(
    req: &SignedRequest<'_>,
    creds: &Credentials,
    amz_date: &str,
    region: &str,
    service: &str,
) -> String {
    let mut names: Vec<String> = req
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let signed: Vec<&str> = names.iter().map(String::as_str).collect();
    let auth = AuthHeader {
        access_key: &creds.access_key_id,
        date: &amz_date[..8],
        region,
        service,
        signed_headers: signed.clone(),
        signature: "",
    };
    let sig = signature(req, &auth, amz_date, &creds.secret_access_key).unwrap();
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{}/{region}/{service}/aws4_request, SignedHeaders={}, Signature={sig}",
        creds.access_key_id,
        &amz_date[..8],
        signed.join(";")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        }
    }

    /// AWS's published SigV4 test suite, case `get-vanilla`.
    #[test]
    fn matches_the_aws_test_suite_vanilla_case() {
        let headers = vec![
            ("Host".to_string(), "example.amazonaws.com".to_string()),
            ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
        ];
        let req = SignedRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        let auth = AuthHeader {
            access_key: "AKIDEXAMPLE",
            date: "20150830",
            region: "us-east-1",
            service: "service",
            signed_headers: vec!["host", "x-amz-date"],
            signature: "",
        };
        let sig = signature(
            &req,
            &auth,
            "20150830T123600Z",
            &example_creds().secret_access_key,
        )
        .unwrap();
        assert_eq!(
            sig,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    fn signed_post(creds: &Credentials, body: &[u8]) -> Vec<(String, String)> {
        let mut headers = vec![
            ("host".to_string(), "127.0.0.1:5450".to_string()),
            ("x-amz-date".to_string(), "20261122T100000Z".to_string()),
            (
                "content-type".to_string(),
                "application/x-amz-json-1.1".to_string(),
            ),
            (
                "x-amz-target".to_string(),
                "AmazonEC2ContainerServiceV20141113.ListClusters".to_string(),
            ),
        ];
        let req = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body,
        };
        let auth = sign(&req, creds, "20261122T100000Z", "us-east-1", "ecs");
        headers.push(("Authorization".to_string(), auth));
        headers
    }

    fn at(s: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
            .unwrap()
            .and_utc()
    }

    #[test]
    fn a_correctly_signed_request_verifies_and_tampering_does_not() {
        let creds = Credentials {
            access_key_id: "BERTHKEY".into(),
            secret_access_key: "s3cret".into(),
        };
        let body = br#"{}"#;
        let headers = signed_post(&creds, body);
        let req = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body,
        };
        assert_eq!(verify(&req, &creds, at("20261122T100500Z")), Ok(()));
        let tampered = SignedRequest {
            body: br#"{"x":1}"#,
            ..req.clone()
        };
        assert_eq!(
            verify(&tampered, &creds, at("20261122T100500Z")),
            Err(AuthError::Mismatch)
        );
        let wrong = Credentials {
            secret_access_key: "other".into(),
            ..creds.clone()
        };
        assert_eq!(
            verify(&req, &wrong, at("20261122T100500Z")),
            Err(AuthError::Mismatch)
        );
        let other_key = Credentials {
            access_key_id: "NOPE".into(),
            ..creds.clone()
        };
        assert_eq!(
            verify(&req, &other_key, at("20261122T100500Z")),
            Err(AuthError::UnknownKey)
        );
        assert_eq!(
            verify(&req, &creds, at("20261122T103000Z")),
            Err(AuthError::Expired)
        );
    }

    #[test]
    fn a_content_hash_header_cannot_stand_in_for_the_body() {
        let creds = Credentials {
            access_key_id: "BERTHKEY".into(),
            secret_access_key: "s3cret".into(),
        };
        let body = br#"{}"#;
        let mut headers = signed_post(&creds, body);
        // A captured request replayed with another body and the original's hash.
        headers.push((
            "x-amz-content-sha256".to_string(),
            hex::encode(Sha256::digest(body)),
        ));
        let replayed = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: br#"{"maxResults":1}"#,
        };
        assert_eq!(
            verify(&replayed, &creds, at("20261122T100500Z")),
            Err(AuthError::Mismatch)
        );
        // The honest header (the body's own hash) is fine.
        let honest = SignedRequest { body, ..replayed };
        assert_eq!(verify(&honest, &creds, at("20261122T100500Z")), Ok(()));
    }

    #[test]
    fn unsigned_and_malformed_requests_are_refused() {
        let creds = Credentials {
            access_key_id: "K".into(),
            secret_access_key: "s".into(),
        };
        let headers = vec![("host".to_string(), "h".to_string())];
        let req = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        assert_eq!(verify(&req, &creds, Utc::now()), Err(AuthError::Missing));
        let headers = vec![("authorization".to_string(), "Basic Zm9v".to_string())];
        let req = SignedRequest {
            headers: &headers,
            ..req
        };
        assert_eq!(verify(&req, &creds, Utc::now()), Err(AuthError::Malformed));
    }

    #[test]
    fn query_strings_canonicalise_sorted_and_encoded() {
        assert_eq!(canonical_query("b=2&a=1&c=x%20y"), "a=1&b=2&c=x%20y");
        assert_eq!(canonical_uri("/"), "/");
    }
}
