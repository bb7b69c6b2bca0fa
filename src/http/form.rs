//! `application/x-www-form-urlencoded` bodies and query strings, for the credential
//! endpoints the clouds' codecs call (OAuth token exchanges, STS, the SSO portal).

/// `pairs` as `k=v&k=v` in the WHATWG form encoding: `A–Z a–z 0–9 * - . _` as they are, a
/// space as `+`, every other byte percent-encoded.
#[cfg(any(feature = "bedrock", feature = "vertex"))]
pub(crate) fn form_encode(pairs: &[(&str, &str)]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        for (n, part) in [k, v].into_iter().enumerate() {
            if n > 0 {
                out.push('=');
            }
            for &b in part.as_bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_') {
                    out.push(char::from(b));
                } else if b == b' ' {
                    out.push('+');
                } else {
                    out.push('%');
                    out.push(char::from(DIGITS[usize::from(b >> 4)]));
                    out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
                }
            }
        }
    }
    out
}

#[cfg(all(test, any(feature = "bedrock", feature = "vertex")))]
mod tests {
    use super::form_encode;

    #[test]
    fn unreserved_bytes_stay_and_the_rest_is_percent_encoded() {
        assert_eq!(
            form_encode(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("a b", "x+y/z~*é"),
            ]),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&a+b=x%2By%2Fz%7E*%C3%A9"
        );
        assert_eq!(form_encode(&[]), "");
    }
}
