//! A byte-buffered Server-Sent Events decoder, free of I/O.
//!
//! Hand-written rather than taken from `eventsource-stream` because the relay needs what that
//! crate lacks: a bound on event size (a vendor must not make us buffer without limit), and a
//! report of an unterminated event at EOF (so a cut stream is never mistaken for a whole one).
//! It handles LF, CR and CRLF line ends (also split across reads), multi-line `data`,
//! comments, a leading BOM, and reuses its buffers so steady-state decoding does not allocate.

use memchr::memchr2;

/// Default largest event (sum of its `data` lines) the decoder accepts: 4 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 4 << 20;

/// One dispatched event, borrowed from the decoder until the next call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` name, empty when the event had none (the spec's "message").
    pub event: &'a str,
    /// The `data:` lines joined with `\n`.
    pub data: &'a str,
    /// The last `id:` seen, empty when none.
    pub id: &'a str,
}

/// Why the decoder gave up.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SseError {
    /// An event (or a line) exceeded the size bound.
    #[error("server-sent event larger than {limit} bytes")]
    EventTooLarge {
        /// The bound in force.
        limit: usize,
    },
    /// A line was not valid UTF-8.
    #[error("server-sent event line is not valid UTF-8")]
    InvalidUtf8,
}

/// What was left when the byte stream ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SseEof {
    /// An event whose blank terminating line never came, decoded as if it had (`data`, `event`).
    pub unterminated: Option<(String, String)>,
    /// Whether any bytes or fields were pending: the stream was cut inside an event.
    pub truncated: bool,
}

/// Incremental SSE decoder: [`feed`](Self::feed) bytes as they arrive, pull events with
/// [`next_event`](Self::next_event), call [`finish`](Self::finish) at EOF.
#[derive(Debug)]
pub struct SseDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    pos: usize,
    /// Where the search for the pending line's end resumes (`>= pos`): the bytes between
    /// `pos` and here hold no line end, so each byte is scanned once however the line is
    /// split across reads.
    scan: usize,
    /// Bytes searched for a line end so far (the linear-scan test reads it).
    #[cfg(test)]
    scanned: usize,
    /// The pending event's data, when it is not [`single`](Self::single).
    data: String,
    /// The pending event's one `data` line, as a range of `buf` not copied into `data` (the
    /// usual event: one line, whole in one read), so an open stream holds no copy of its
    /// last event. Its bytes are checked as UTF-8 once, when the event is handed out, or
    /// before anything else is reported (an error of a later line, a wait for more bytes):
    /// the same error comes at the same call as if the line had been checked when read.
    /// Copied into `data` before `buf` moves ([`feed`](Self::feed)) or a second line comes.
    single: Option<(usize, usize)>,
    has_data: bool,
    event: String,
    id: String,
    /// A CR ended the previous read; a LF starting the next one belongs to it.
    skip_lf: bool,
    bom_checked: bool,
    max_event_bytes: usize,
    /// Ready to dispatch: `data`/`event` hold a complete event.
    ready: bool,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    /// A decoder with the default event bound ([`DEFAULT_MAX_EVENT_BYTES`]).
    pub fn new() -> Self {
        Self::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A decoder that rejects events larger than `max` bytes.
    pub fn with_max_event_bytes(max: usize) -> Self {
        SseDecoder {
            buf: Vec::new(),
            pos: 0,
            scan: 0,
            #[cfg(test)]
            scanned: 0,
            data: String::new(),
            single: None,
            has_data: false,
            event: String::new(),
            id: String::new(),
            skip_lf: false,
            bom_checked: false,
            max_event_bytes: max,
            ready: false,
        }
    }

    /// Appends bytes read from the network.
    pub fn feed(&mut self, bytes: &[u8]) {
        // Drop consumed bytes before growing, so the buffer holds at most one partial line
        // plus the new read (a pending data line kept in place is copied out first).
        if self.pos > 0 {
            if self.single.is_some() {
                if self.ready {
                    // The handed-out event's line: reset by the next call anyway.
                    self.single = None;
                } else {
                    // Checked when `next_event` last ran out of bytes.
                    self.spill();
                }
            }
            self.buf.drain(..self.pos);
            self.scan = self.scan.saturating_sub(self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event, if the buffered bytes hold one.
    pub fn next_event(&mut self) -> Result<Option<SseEvent<'_>>, SseError> {
        if self.ready {
            // The previous event was handed out; start a fresh one.
            self.ready = false;
            self.data.clear();
            self.single = None;
            self.has_data = false;
            self.event.clear();
        }
        loop {
            if !self.bom_checked {
                if self.buf.len() - self.pos < 3
                    && b"\xEF\xBB\xBF".starts_with(&self.buf[self.pos..])
                {
                    return Ok(None); // might still be a BOM; wait for more bytes
                }
                if self.buf[self.pos..].starts_with(b"\xEF\xBB\xBF") {
                    self.pos += 3;
                }
                self.bom_checked = true;
            }
            if self.skip_lf && self.pos < self.buf.len() {
                if self.buf[self.pos] == b'\n' {
                    self.pos += 1;
                }
                self.skip_lf = false;
            }
            // Resume the search where the previous one stopped: the pending line's bytes
            // before `scan` were already searched.
            let from = self.scan.max(self.pos);
            let unscanned = &self.buf[from..];
            #[cfg(test)]
            {
                self.scanned += unscanned.len();
            }
            let Some(end) = memchr2(b'\n', b'\r', unscanned) else {
                self.scan = self.buf.len();
                self.check_single()?;
                if self.buf.len() - self.pos > self.max_event_bytes {
                    return Err(SseError::EventTooLarge {
                        limit: self.max_event_bytes,
                    });
                }
                return Ok(None);
            };
            let line_start = self.pos;
            let line_end = from + end;
            let terminator = unscanned[end];
            self.pos = line_end + 1;
            self.scan = self.pos;
            if terminator == b'\r' {
                if self.pos < self.buf.len() {
                    if self.buf[self.pos] == b'\n' {
                        self.pos += 1;
                    }
                } else {
                    self.skip_lf = true;
                }
            }
            if line_start == line_end {
                // Blank line: dispatch if there is data, else just reset the event name.
                if self.has_data {
                    let data = match self.single {
                        // Its one UTF-8 check.
                        Some((s, e)) => std::str::from_utf8(&self.buf[s..e])
                            .map_err(|_| SseError::InvalidUtf8)?,
                        None => {
                            if self.data.ends_with('\n') {
                                self.data.pop();
                            }
                            &self.data
                        }
                    };
                    self.ready = true;
                    return Ok(Some(SseEvent {
                        event: &self.event,
                        data,
                        id: &self.id,
                    }));
                }
                self.event.clear();
                continue;
            }
            if let Err(e) = self.process_line(line_start, line_end) {
                // An earlier bad data line is reported first, as if checked when read.
                self.check_single()?;
                return Err(e);
            }
        }
    }

    /// Checks the pending data line kept in `buf` (see [`single`](Self::single)).
    #[inline]
    fn check_single(&self) -> Result<(), SseError> {
        match self.single {
            Some((s, e)) if !self.ready => std::str::from_utf8(&self.buf[s..e])
                .map(drop)
                .map_err(|_| SseError::InvalidUtf8),
            _ => Ok(()),
        }
    }

    fn process_line(&mut self, start: usize, end: usize) -> Result<(), SseError> {
        let line = &self.buf[start..end];
        if line[0] == b':' {
            return Ok(()); // comment / keep-alive
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" => {
                // Where the value lies in `buf`: it ends the line.
                let range = (end - value.len(), end);
                if !self.has_data {
                    if value.len() + 1 > self.max_event_bytes {
                        std::str::from_utf8(value).map_err(|_| SseError::InvalidUtf8)?;
                        return Err(SseError::EventTooLarge {
                            limit: self.max_event_bytes,
                        });
                    }
                    // The event's first line stays in place, checked when it is handed out.
                    self.single = Some(range);
                    self.has_data = true;
                    return Ok(());
                }
                self.check_single()?;
                let value = std::str::from_utf8(value).map_err(|_| SseError::InvalidUtf8)?;
                let held = match self.single {
                    Some((s, e)) => e - s + 1,
                    None => self.data.len(),
                };
                if held + value.len() + 1 > self.max_event_bytes {
                    return Err(SseError::EventTooLarge {
                        limit: self.max_event_bytes,
                    });
                }
                self.spill();
                self.data
                    .push_str(&String::from_utf8_lossy(&self.buf[range.0..range.1]));
                self.data.push('\n');
            }
            b"event" => {
                let value = std::str::from_utf8(value).map_err(|_| SseError::InvalidUtf8)?;
                self.event.clear();
                self.event.push_str(value);
            }
            b"id" if !value.contains(&0) => {
                let value = std::str::from_utf8(value).map_err(|_| SseError::InvalidUtf8)?;
                self.id.clear();
                self.id.push_str(value);
            }
            _ => {} // `retry` and unknown fields are ignored, as the spec says
        }
        Ok(())
    }

    /// Copies a data line kept in `buf` into `data` (checked as UTF-8 before any call, so
    /// the lossy reading is exact).
    #[inline]
    fn spill(&mut self) {
        if let Some((s, e)) = self.single.take() {
            self.data
                .push_str(&String::from_utf8_lossy(&self.buf[s..e]));
            self.data.push('\n');
        }
    }

    /// Ends the stream: reports an event left without its blank line and whether the stream
    /// was cut mid-event. Call after [`next_event`](Self::next_event) returned `None`.
    pub fn finish(&mut self) -> Result<SseEof, SseError> {
        if self.ready {
            self.ready = false;
            self.data.clear();
            self.single = None;
            self.has_data = false;
            self.event.clear();
        }
        let mut truncated = false;
        if self.pos < self.buf.len() {
            // A last line without its line end.
            let (start, end) = (self.pos, self.buf.len());
            self.pos = end;
            truncated = true;
            if let Err(e) = self.process_line(start, end) {
                self.check_single()?;
                return Err(e);
            }
        }
        truncated |= self.has_data || !self.event.is_empty();
        self.check_single()?;
        self.spill();
        let unterminated = self.has_data.then(|| {
            if self.data.ends_with('\n') {
                self.data.pop();
            }
            (
                std::mem::take(&mut self.data),
                std::mem::take(&mut self.event),
            )
        });
        self.has_data = false;
        self.event.clear();
        Ok(SseEof {
            unterminated,
            truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[&[u8]]) -> (Vec<(String, String)>, SseEof) {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for part in input {
            d.feed(part);
            while let Some(ev) = d.next_event().unwrap() {
                out.push((ev.event.to_owned(), ev.data.to_owned()));
            }
        }
        (out, d.finish().unwrap())
    }

    #[test]
    fn line_endings_comments_bom_and_multiline_data() {
        let (evs, eof) = all(&[b"\xEF\xBB\xBF: hi\r\nevent: a\r\ndata: 1\r\ndata:2\r\n\r\ndata: x\rdata: y\r\rdata: z\n\n"]);
        assert_eq!(
            evs,
            vec![
                ("a".into(), "1\n2".into()),
                ("".into(), "x\ny".into()),
                ("".into(), "z".into())
            ]
        );
        assert!(!eof.truncated);
    }

    #[test]
    fn cr_split_from_lf_across_reads() {
        let (evs, _) = all(&[b"data: a\r", b"\n\r", b"\ndata: b\n\n"]);
        assert_eq!(evs, vec![("".into(), "a".into()), ("".into(), "b".into())]);
    }

    #[test]
    fn truncation_is_reported() {
        let (evs, eof) = all(&[b"data: a\n\ndata: {\"partial"]);
        assert_eq!(evs.len(), 1);
        assert!(eof.truncated);
        assert_eq!(eof.unterminated, Some(("{\"partial".into(), "".into())));
        let (_, eof) = all(&[b"data: a\n"]);
        assert!(eof.truncated);
    }

    #[test]
    fn oversized_events_are_rejected() {
        let mut d = SseDecoder::with_max_event_bytes(16);
        d.feed(b"data: 0123456789\ndata: 0123456789\n\n");
        assert_eq!(d.next_event(), Err(SseError::EventTooLarge { limit: 16 }));
        let mut d = SseDecoder::with_max_event_bytes(16);
        d.feed(&[b'x'; 64]);
        assert!(d.next_event().is_err());
    }

    #[test]
    fn a_whole_one_line_event_is_not_copied() {
        let mut d = SseDecoder::new();
        d.feed(b"data: {\"a\":1}\n\ndata: x\n");
        assert_eq!(d.next_event().unwrap().map(|e| e.data), Some("{\"a\":1}"));
        assert_eq!(d.next_event().unwrap(), None);
        assert_eq!(d.data.capacity(), 0, "the event's line was copied");
        // Split across reads, the pending line is copied out before the buffer moves.
        d.feed(b"\ndata: y\n\n");
        assert_eq!(d.next_event().unwrap().map(|e| e.data), Some("x"));
        assert_eq!(d.next_event().unwrap().map(|e| e.data), Some("y"));
    }

    #[test]
    fn a_bad_data_line_is_reported_before_what_follows_it() {
        // Whatever comes after an invalid data line (a bad `id`, an oversized second line,
        // a wait for bytes, the end), the data line's error comes at the same call.
        let cases: [&[u8]; 5] = [
            b"data: \xff\nid: \xfe\n\n",
            b"data: \xff\ndata: 0123456789abcdef0123456789\n\n",
            b"data: \xff\n",
            b"data: \xff\n\n",
            b"data: \xff0123456789abcdef0123456789\n\n",
        ];
        for input in cases {
            let mut d = SseDecoder::with_max_event_bytes(16);
            d.feed(input);
            assert_eq!(d.next_event(), Err(SseError::InvalidUtf8), "{input:?}");
        }
        let mut d = SseDecoder::new();
        d.feed(b"data: ok\ndata");
        assert_eq!(d.next_event(), Ok(None));
        d.feed(b": \xff");
        assert_eq!(d.finish(), Err(SseError::InvalidUtf8));
        let mut d = SseDecoder::new();
        d.feed(b"data: \xff");
        assert_eq!(d.next_event(), Ok(None));
        assert_eq!(d.finish(), Err(SseError::InvalidUtf8));
    }

    #[test]
    fn split_bom_and_multibyte_chars() {
        let text = "data: héllo 世界\n\n".as_bytes();
        let mut input: Vec<&[u8]> = vec![b"\xEF", b"\xBB\xBF"];
        input.extend(text.chunks(1));
        let (evs, _) = all(&input);
        assert_eq!(evs, vec![("".into(), "héllo 世界".into())]);
    }

    #[test]
    fn a_line_fed_byte_by_byte_is_scanned_once() {
        // A line just under the 4 MiB bound, one byte per read: each byte is searched for a
        // line end once (a rescan from the line's start per read would be ~8e12 bytes).
        let mut line = b"data: ".to_vec();
        line.resize(DEFAULT_MAX_EVENT_BYTES - 16, b'x');
        line.extend_from_slice(b"\r\n\r\n");
        let mut d = SseDecoder::new();
        let mut events = 0;
        for b in line.chunks(1) {
            d.feed(b);
            while let Some(ev) = d.next_event().expect("within the bound") {
                assert_eq!(ev.data.len(), DEFAULT_MAX_EVENT_BYTES - 16 - 6);
                events += 1;
            }
        }
        assert_eq!(events, 1);
        assert!(
            d.scanned <= 2 * line.len(),
            "{} bytes scanned for a {}-byte line",
            d.scanned,
            line.len()
        );
        // Past the bound, fed in small reads, the line is still refused.
        let mut d = SseDecoder::with_max_event_bytes(1024);
        let mut refused = false;
        for b in vec![b'x'; 4096].chunks(7) {
            d.feed(b);
            if d.next_event().is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused);
        assert!(d.scanned <= 2048, "{}", d.scanned);
    }
}
