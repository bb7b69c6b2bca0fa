//! The AWS event-stream framing (`application/vnd.amazon.eventstream`), read incrementally:
//! bytes in, split anywhere, whole CRC-checked frames out.
//!
//! A frame is a 12-byte prelude (total length u32 BE, headers length u32 BE, CRC32 of those
//! 8 bytes), the headers, the payload, and a CRC32 of everything before it. A header is a
//! name (length u8, UTF-8), a type byte and a value: 0 true, 1 false, 2 byte, 3 int16,
//! 4 int32, 5 int64, 6 bytes (u16 length), 7 string (u16 length), 8 timestamp (i64 ms),
//! 9 uuid (16 bytes).

use crate::types::{Error, ErrorKind};

/// Largest frame accepted (the whole frame, prelude and CRC included): 16 MiB, the limit
/// the AWS SDKs apply. A prelude announcing more is refused before anything is buffered
/// for it.
pub(crate) const MAX_FRAME_BYTES: usize = 16 << 20;

/// Prelude: total length, headers length, prelude CRC.
const PRELUDE_BYTES: usize = 12;
/// The smallest frame: a prelude and the message CRC.
const MIN_FRAME_BYTES: usize = PRELUDE_BYTES + 4;
/// Largest headers block (the length field is a u32, but AWS caps headers at 128 KiB).
const MAX_HEADERS_BYTES: usize = 128 * 1024;

/// A header's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Bytes(Vec<u8>),
    String(String),
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One decoded frame.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) headers: Vec<(String, HeaderValue)>,
    pub(crate) payload: Vec<u8>,
}

impl Frame {
    /// The string value of header `name` (`:event-type`, `:message-type`…).
    pub(crate) fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// What is wrong with a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    PreludeCrc {
        expected: u32,
        computed: u32,
    },
    MessageCrc {
        expected: u32,
        computed: u32,
    },
    /// The total length is below the minimum or above [`MAX_FRAME_BYTES`].
    FrameLength(usize),
    /// The headers do not fit in the frame.
    HeadersLength(usize),
    HeaderNameLength,
    HeaderNameUtf8,
    HeaderValueType(u8),
    /// A header value runs past the headers block, or a string is not UTF-8.
    HeaderValue,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::PreludeCrc { expected, computed } => write!(
                f,
                "prelude CRC mismatch (frame says {expected:#010x}, bytes give {computed:#010x})"
            ),
            FrameError::MessageCrc { expected, computed } => write!(
                f,
                "message CRC mismatch (frame says {expected:#010x}, bytes give {computed:#010x})"
            ),
            FrameError::FrameLength(n) => write!(
                f,
                "frame length {n} is outside {MIN_FRAME_BYTES}..={MAX_FRAME_BYTES} bytes"
            ),
            FrameError::HeadersLength(n) => {
                write!(f, "headers length {n} does not fit in the frame")
            }
            FrameError::HeaderNameLength => f.write_str("invalid header name length"),
            FrameError::HeaderNameUtf8 => f.write_str("header name is not UTF-8"),
            FrameError::HeaderValueType(t) => write!(f, "invalid header value type {t}"),
            FrameError::HeaderValue => f.write_str("invalid header value"),
        }
    }
}

impl std::error::Error for FrameError {}

impl FrameError {
    /// The stream's error: the framing is lost or the bytes were corrupted on the way, so
    /// the answer cannot go on — an interrupted stream (the vendor's side; retryable).
    pub(crate) fn into_error(self) -> Error {
        Error::new(
            ErrorKind::StreamInterrupted,
            format!("corrupt event stream: {self}"),
        )
        .with_source(self)
    }
}

/// Incremental frame decoder: [`feed`](Self::feed) bytes as they arrive, take whole frames
/// with [`next_frame`](Self::next_frame). Buffers at most one frame plus what arrived after
/// it; a prelude is checked (CRC, lengths) before its frame is waited for.
#[derive(Debug, Default)]
pub(crate) struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`.
    pos: usize,
}

impl FrameDecoder {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Buffers bytes read from the network.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos >= 64 * 1024 && self.pos * 2 >= self.buf.len() {
            // Drop what was read once it is most of the buffer.
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet returned as a frame (a cut frame at the end of a body).
    pub(crate) fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next whole frame, `None` when more bytes are needed. An error leaves the decoder
    /// where it was: the framing cannot be trusted after it.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let rest = &self.buf[self.pos..];
        if rest.len() < PRELUDE_BYTES {
            return Ok(None);
        }
        let total = be_u32(&rest[0..4]) as usize;
        let headers_len = be_u32(&rest[4..8]) as usize;
        let expected = be_u32(&rest[8..12]);
        let computed = crc32fast::hash(&rest[..8]);
        if expected != computed {
            return Err(FrameError::PreludeCrc { expected, computed });
        }
        if !(MIN_FRAME_BYTES..=MAX_FRAME_BYTES).contains(&total) {
            return Err(FrameError::FrameLength(total));
        }
        if headers_len > MAX_HEADERS_BYTES || headers_len > total - MIN_FRAME_BYTES {
            return Err(FrameError::HeadersLength(headers_len));
        }
        if rest.len() < total {
            return Ok(None);
        }
        let frame = &rest[..total];
        let expected = be_u32(&frame[total - 4..]);
        let computed = crc32fast::hash(&frame[..total - 4]);
        if expected != computed {
            return Err(FrameError::MessageCrc { expected, computed });
        }
        let headers = parse_headers(&frame[PRELUDE_BYTES..PRELUDE_BYTES + headers_len])?;
        let payload = frame[PRELUDE_BYTES + headers_len..total - 4].to_vec();
        self.pos += total;
        Ok(Some(Frame { headers, payload }))
    }
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

/// Takes `n` bytes off the front of `b`.
fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], FrameError> {
    if b.len() < n {
        return Err(FrameError::HeaderValue);
    }
    let (head, tail) = b.split_at(n);
    *b = tail;
    Ok(head)
}

fn take_array<const N: usize>(b: &mut &[u8]) -> Result<[u8; N], FrameError> {
    let mut a = [0u8; N];
    a.copy_from_slice(take(b, N)?);
    Ok(a)
}

fn parse_headers(mut b: &[u8]) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let name_len = usize::from(b[0]);
        b = &b[1..];
        if name_len == 0 || name_len > b.len() {
            return Err(FrameError::HeaderNameLength);
        }
        let (name, tail) = b.split_at(name_len);
        b = tail;
        let name = std::str::from_utf8(name).map_err(|_| FrameError::HeaderNameUtf8)?;
        let ty = take(&mut b, 1)?[0];
        let value = match ty {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(take_array(&mut b)?)),
            3 => HeaderValue::Int16(i16::from_be_bytes(take_array(&mut b)?)),
            4 => HeaderValue::Int32(i32::from_be_bytes(take_array(&mut b)?)),
            5 => HeaderValue::Int64(i64::from_be_bytes(take_array(&mut b)?)),
            6 | 7 => {
                let len = usize::from(u16::from_be_bytes(take_array(&mut b)?));
                let bytes = take(&mut b, len)?;
                if ty == 6 {
                    HeaderValue::Bytes(bytes.to_vec())
                } else {
                    let s = std::str::from_utf8(bytes).map_err(|_| FrameError::HeaderValue)?;
                    HeaderValue::String(s.to_owned())
                }
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(take_array(&mut b)?)),
            9 => HeaderValue::Uuid(take_array(&mut b)?),
            other => return Err(FrameError::HeaderValueType(other)),
        };
        out.push((name.to_owned(), value));
    }
    Ok(out)
}

/// Encodes one frame (tests, and the simulator's counterpart can share the layout).
#[cfg(test)]
pub(crate) fn encode_frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = PRELUDE_BYTES + h.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&u32::try_from(h.len()).unwrap_or(u32::MAX).to_be_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}
