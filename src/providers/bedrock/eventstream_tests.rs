//! The event-stream frame decoder against smithy-rs's codec vectors and the recorded
//! ConverseStream bodies, fed whole and split at every byte offset.

use serde_json::Value;

use super::eventstream::*;

macro_rules! fixture {
    ($name:expr) => {
        include_bytes!(concat!("../../../tests/fixtures/bedrock/", $name)).as_slice()
    };
}

/// Every frame in `bytes`, fed in pieces cut at `cuts`; the decoder's error if one comes.
fn frames_split(bytes: &[u8], cuts: &[usize]) -> Result<(Vec<Frame>, usize), FrameError> {
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        d.feed(&bytes[at..cut]);
        at = cut;
        while let Some(f) = d.next_frame()? {
            out.push(f);
        }
    }
    Ok((out, d.pending()))
}

fn frames(bytes: &[u8]) -> Result<Vec<Frame>, FrameError> {
    let (f, pending) = frames_split(bytes, &[])?;
    assert_eq!(pending, 0, "bytes left after the last frame");
    Ok(f)
}

#[test]
fn valid_vectors_decode() {
    let f = frames(fixture!("eventstream_codec/valid_no_headers")).expect("no headers");
    assert_eq!(f.len(), 1);
    assert!(f[0].headers.is_empty());
    assert_eq!(f[0].payload, b"another test payload");

    let f = frames(fixture!("eventstream_codec/valid_empty_payload")).expect("empty payload");
    assert_eq!(f.len(), 1);
    assert!(f[0].payload.is_empty());
    assert_eq!(f[0].headers.len(), 1);

    let f = frames(fixture!(
        "eventstream_codec/valid_with_all_headers_and_payload"
    ))
    .expect("all headers");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].payload, b"some payload");
    let kinds: Vec<u8> = f[0]
        .headers
        .iter()
        .map(|(_, v)| match v {
            HeaderValue::Bool(true) => 0,
            HeaderValue::Bool(false) => 1,
            HeaderValue::Byte(_) => 2,
            HeaderValue::Int16(_) => 3,
            HeaderValue::Int32(_) => 4,
            HeaderValue::Int64(_) => 5,
            HeaderValue::Bytes(_) => 6,
            HeaderValue::String(_) => 7,
            HeaderValue::Timestamp(_) => 8,
            HeaderValue::Uuid(_) => 9,
        })
        .collect();
    let mut sorted = kinds.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..10).collect::<Vec<u8>>(), "all 10 header types");
}

#[test]
fn invalid_vectors_are_refused() {
    let crc = frames(fixture!("eventstream_codec/invalid_prelude_checksum"));
    assert_eq!(
        crc.expect_err("prelude"),
        FrameError::PreludeCrc {
            expected: 0xDEAD_BEEF,
            computed: 0x8BB4_95FB
        }
    );
    let crc = frames(fixture!("eventstream_codec/invalid_message_checksum"));
    assert_eq!(
        crc.expect_err("message"),
        FrameError::MessageCrc {
            expected: 0xDEAD_BEEF,
            computed: 0x01A0_5860
        }
    );
    // The others also carry a wrong message CRC (see tests/fixtures/README.md): whichever
    // check fires first, none decodes.
    for name in [
        "invalid_header_name_length",
        "invalid_header_name_length_too_long",
        "invalid_header_string_length_cut_off",
        "invalid_header_string_value_length",
        "invalid_header_value_type",
        "invalid_headers_length",
    ] {
        let path = format!(
            "{}/tests/fixtures/bedrock/eventstream_codec/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).expect("vector");
        let mut d = FrameDecoder::new();
        d.feed(&bytes);
        match d.next_frame() {
            Err(_) => {}
            // A cut-off vector is a frame still waiting for its bytes: never a frame.
            Ok(None) => assert!(d.pending() > 0, "{name}"),
            Ok(Some(f)) => panic!("{name} decoded: {f:?}"),
        }
    }
}

/// Header parsing on its own (with good CRCs), for the header errors the vectors hide
/// behind their message CRC.
#[test]
fn header_errors_with_good_crcs() {
    fn frame_with_headers(h: &[u8]) -> Vec<u8> {
        let total = 12 + h.len() + 4;
        let mut out = Vec::new();
        out.extend_from_slice(&(total as u32).to_be_bytes());
        out.extend_from_slice(&(h.len() as u32).to_be_bytes());
        let c = crc32fast::hash(&out);
        out.extend_from_slice(&c.to_be_bytes());
        out.extend_from_slice(h);
        let c = crc32fast::hash(&out);
        out.extend_from_slice(&c.to_be_bytes());
        out
    }
    let cases: [(&[u8], FrameError); 5] = [
        (b"\x01a\x60", FrameError::HeaderValueType(0x60)),
        (b"\x00", FrameError::HeaderNameLength),
        (b"\x05ab", FrameError::HeaderNameLength),
        (b"\x01a\x07\x00\x09abc", FrameError::HeaderValue),
        (b"\x02\xff\xfe\x00", FrameError::HeaderNameUtf8),
    ];
    for (h, want) in cases {
        let got = frames(&frame_with_headers(h)).expect_err("bad header");
        assert_eq!(got, want, "{h:?}");
    }
}

#[test]
fn oversized_and_undersized_frames_are_refused_from_the_prelude() {
    for total in [MAX_FRAME_BYTES as u32 + 1, u32::MAX, 15, 0] {
        let mut p = Vec::new();
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&0u32.to_be_bytes());
        let c = crc32fast::hash(&p);
        p.extend_from_slice(&c.to_be_bytes());
        // Only the prelude arrived: the refusal does not wait for (or buffer) the frame.
        let mut d = FrameDecoder::new();
        d.feed(&p);
        assert_eq!(
            d.next_frame().expect_err("length"),
            FrameError::FrameLength(total as usize)
        );
    }
    // Headers longer than the frame.
    let mut p = Vec::new();
    p.extend_from_slice(&32u32.to_be_bytes());
    p.extend_from_slice(&17u32.to_be_bytes());
    let c = crc32fast::hash(&p);
    p.extend_from_slice(&c.to_be_bytes());
    let mut d = FrameDecoder::new();
    d.feed(&p);
    assert_eq!(
        d.next_frame().expect_err("headers"),
        FrameError::HeadersLength(17)
    );
}

/// The recorded bodies: each frame's headers and payload as the CRC-checked decode in
/// `.decoded.jsonl` has them, whole and split at every byte offset.
#[test]
fn recorded_bodies_decode_as_recorded_at_every_split() {
    for (name, body, decoded) in super::stream_tests::RECORDED {
        let want: Vec<Value> = decoded
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("jsonl"))
            .collect();
        let got = frames(body).expect(name);
        assert_eq!(got.len(), want.len(), "{name}: frame count");
        for (f, w) in got.iter().zip(&want) {
            assert_eq!(
                f.payload,
                w["payload"].as_str().expect("payload").as_bytes(),
                "{name}"
            );
            let headers = w["headers"].as_object().expect("headers");
            assert_eq!(f.headers.len(), headers.len(), "{name}");
            for (k, v) in headers {
                assert_eq!(f.header_str(k), v.as_str(), "{name}: {k}");
            }
        }
        for cut in 1..body.len() {
            let (split, pending) = frames_split(body, &[cut]).expect(name);
            assert_eq!(pending, 0);
            assert_eq!(split, got, "{name} split at {cut}");
        }
        // Byte by byte.
        let cuts: Vec<usize> = (1..body.len()).collect();
        assert_eq!(frames_split(body, &cuts).expect(name).0, got, "{name}");
    }
}

#[test]
fn a_cut_body_leaves_pending_bytes_and_no_frame() {
    let body = fixture!("converse_stream_text_nova.eventstream");
    let whole = frames(body).expect("whole").len();
    for cut in [5, 12, 100, body.len() - 1] {
        let (f, pending) = frames_split(&body[..cut], &[]).expect("cut");
        assert!(f.len() < whole);
        assert!(pending > 0, "cut at {cut}");
    }
}

#[test]
fn a_flipped_byte_anywhere_is_caught() {
    let body = fixture!("converse_stream_text_after_tool_nova.eventstream");
    let whole = frames(body).expect("whole");
    for at in (0..body.len()).step_by(7) {
        let mut bad = body.to_vec();
        bad[at] ^= 0x20;
        match frames_split(&bad, &[]) {
            Err(_) => {}
            // A flipped length may announce a longer frame that never comes.
            Ok((f, pending)) => assert!(pending > 0 && f.len() < whole.len(), "byte {at}"),
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = fastrand::Rng::with_seed(26);
    for _ in 0..2000 {
        let len = rng.usize(0..64);
        let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        let _ = frames_split(&bytes, &[len / 2]);
    }
}

#[test]
fn encoded_frames_round_trip() {
    let f = encode_frame(&[(":event-type", "messageStart")], b"{}");
    let got = frames(&f).expect("frame");
    assert_eq!(got[0].header_str(":event-type"), Some("messageStart"));
    assert_eq!(got[0].payload, b"{}");
}
