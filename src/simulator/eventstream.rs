//! AWS event-stream frames (`application/vnd.amazon.eventstream`) as Bedrock writes them, a
//! small base64 encoder for InvokeModelWithResponseStream chunks, and percent-decoding for
//! model ids in Bedrock and Vertex paths.
//!
//! A frame is: total length (u32 BE), headers length (u32 BE), the CRC32 of those eight bytes,
//! the headers (name length u8, name, type u8, value), the payload, and the CRC32 of
//! everything before it. The simulator only writes string headers (type 7, u16 length).

/// The content type of an AWS event stream.
pub(crate) const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// Header value type 7: a string with a u16 big-endian length.
const STRING: u8 = 7;

/// One frame with string `headers` (in order) and `payload`. Names longer than 255 bytes and
/// values longer than 65,535 bytes are truncated (the simulator never writes such).
pub(crate) fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut head = Vec::with_capacity(128);
    for (name, value) in headers {
        let name = &name.as_bytes()[..name.len().min(255)];
        let value = &value.as_bytes()[..value.len().min(usize::from(u16::MAX))];
        head.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        head.extend_from_slice(name);
        head.push(STRING);
        head.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        head.extend_from_slice(value);
    }
    let total = 12 + head.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&u32::try_from(head.len()).unwrap_or(u32::MAX).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

/// An `event` frame: `:event-type`, `:content-type: application/json`, `:message-type: event`,
/// in the order Bedrock sends them.
pub(crate) fn event(event_type: &str, json: &str) -> Vec<u8> {
    frame(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        json.as_bytes(),
    )
}

/// An `exception` frame: `:exception-type`, `:content-type: application/json`,
/// `:message-type: exception`.
pub(crate) fn exception(exception_type: &str, json: &str) -> Vec<u8> {
    frame(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json.as_bytes(),
    )
}

/// Splits a recorded event stream into its frames by their length prefixes. A tail that is
/// not a whole frame (or a length that cannot be right) is kept as one last piece.
pub(crate) fn split_frames(body: &bytes::Bytes) -> Vec<bytes::Bytes> {
    let mut frames = Vec::new();
    let mut start = 0;
    while start < body.len() {
        let len = body
            .get(start..start + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| u32::from_be_bytes(b) as usize);
        match len {
            Some(len) if len >= 16 && start + len <= body.len() => {
                frames.push(body.slice(start..start + len));
                start += len;
            }
            _ => {
                frames.push(body.slice(start..));
                break;
            }
        }
    }
    frames
}

/// Which CRC of a frame [`corrupt`] breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Crc {
    /// Bytes 8..12, the CRC of the prelude.
    Prelude,
    /// The last four bytes, the CRC of the whole message.
    Message,
}

/// `frame` with the chosen CRC inverted (frames too short to hold it are left alone).
pub(crate) fn corrupt(frame: &[u8], crc: Crc) -> Vec<u8> {
    let mut out = frame.to_vec();
    if out.len() >= 16 {
        let range = match crc {
            Crc::Prelude => 8..12,
            Crc::Message => out.len() - 4..out.len(),
        };
        for b in &mut out[range] {
            *b = !*b;
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648 §4).
pub(crate) fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-decodes `s` (`%3A` → `:`); `+` is kept. Malformed escapes are kept verbatim, and
/// bytes that do not form UTF-8 are replaced.
pub(crate) fn percent_decode(s: &str) -> String {
    percent_decode_with(s, false)
}

/// Decodes one `application/x-www-form-urlencoded` value: `+` is a space, then as
/// [`percent_decode`].
pub(crate) fn form_decode(s: &str) -> String {
    percent_decode_with(s, true)
}

fn percent_decode_with(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%3A0%2Fb%zz%4"), "a:0/b%zz%4");
        assert_eq!(percent_decode("a+b"), "a+b");
        assert_eq!(form_decode("a+b%2B"), "a b+");
    }

    #[test]
    fn frame_layout_and_crcs() {
        let f = event("messageStart", r#"{"role":"assistant"}"#);
        let total = u32::from_be_bytes([f[0], f[1], f[2], f[3]]) as usize;
        assert_eq!(total, f.len());
        let prelude = u32::from_be_bytes([f[8], f[9], f[10], f[11]]);
        assert_eq!(prelude, crc32fast::hash(&f[..8]));
        let n = f.len();
        let message = u32::from_be_bytes([f[n - 4], f[n - 3], f[n - 2], f[n - 1]]);
        assert_eq!(message, crc32fast::hash(&f[..n - 4]));
        assert_ne!(corrupt(&f, Crc::Prelude)[8..12], f[8..12]);
        assert_ne!(corrupt(&f, Crc::Message)[n - 4..], f[n - 4..]);
        let two: Vec<u8> = [f.clone(), f.clone(), vec![0, 0]].concat();
        let split = split_frames(&bytes::Bytes::from(two));
        assert_eq!(split.len(), 3);
        assert_eq!(split[1].as_ref(), f.as_slice());
    }
}
