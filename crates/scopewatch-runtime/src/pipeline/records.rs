//! One record of a stream (a Kafka message's value, a line of a followed file) → the events it
//! holds, with everything else counted and dead-lettered. Shared by the Kafka service and file
//! following so both account for input the same way.

use crate::event::{parse_event, Event, Reject, RejectKind};
use crate::ingest::format::{decode_line, DecodeOptions, Decoded};
use crate::ingest::{DeadLetter, DeadLetterWriter, SourceCounts};

/// Where a record came from, for its dead-letter entry.
pub struct RecordOrigin<'a> {
    pub source: &'a str,
    /// 1-based line number, when known (a file read from its start).
    pub line: Option<u64>,
    /// Byte offset of the line, or the Kafka offset of the message.
    pub offset: Option<u64>,
}

/// Decodes `bytes` and returns one entry per record: `Some(event)` for an accepted one, `None`
/// for one dead-lettered or skipped (it still moves the position). A blank record is counted
/// as blank and returns nothing. `rejected` (a line over the length limit, say) dead-letters the
/// record with that reason instead of decoding it; `len` is the record's full length.
pub fn decode_record(
    bytes: &[u8],
    len: u64,
    rejected: Option<Reject>,
    decode: &DecodeOptions,
    counts: &mut SourceCounts,
    dead_letter: &mut DeadLetterWriter,
    origin: &RecordOrigin<'_>,
) -> std::io::Result<Vec<Option<Event>>> {
    let mut decoded = Vec::new();
    match (rejected, std::str::from_utf8(bytes)) {
        (Some(reject), _) => decoded.push(Decoded::Rejected(reject)),
        (None, Ok(text)) if !text.trim().is_empty() => {
            decode_line(text, decode, &mut |d| decoded.push(d))
        }
        (None, Ok(_)) => counts.blank += 1,
        (None, Err(_)) => decoded.push(Decoded::Rejected(
            // The canonical parser words the UTF-8 error (byte and column).
            parse_event(bytes)
                .err()
                .unwrap_or_else(|| Reject::new(RejectKind::NotUtf8, "not UTF-8")),
        )),
    }
    let mut records = Vec::with_capacity(decoded.len());
    for d in decoded {
        match d {
            Decoded::Event(e) => {
                counts.record_accept();
                records.push(Some(e));
            }
            Decoded::Skipped(reason) => {
                counts.record_skip(reason);
                records.push(None);
            }
            Decoded::Rejected(reject) => {
                counts.record_reject(reject.kind);
                dead_letter.write(&DeadLetter::new(
                    origin.source,
                    origin.line,
                    origin.offset,
                    reject.kind,
                    reject.reason,
                    bytes,
                    len,
                ))?;
                records.push(None);
            }
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn accepted_rejected_blank_and_over_long_records_are_each_accounted_for() {
        let out = Shared::default();
        let mut dl = DeadLetterWriter::new(Box::new(out.clone()));
        let mut counts = SourceCounts::new("f");
        let origin = RecordOrigin {
            source: "f",
            line: Some(7),
            offset: Some(120),
        };
        let good = br#"{"type":"token","event":"issued","time":"2024-03-01T12:00:00Z","client_id":"app","token_id":"t","scope_granted":"system/*.rs"}"#;
        let opts = DecodeOptions::default();
        let r = decode_record(good, 0, None, &opts, &mut counts, &mut dl, &origin).unwrap();
        assert!(matches!(r.as_slice(), [Some(_)]));
        let r = decode_record(b"  ", 2, None, &opts, &mut counts, &mut dl, &origin).unwrap();
        assert!(r.is_empty());
        let r = decode_record(b"{nope", 5, None, &opts, &mut counts, &mut dl, &origin).unwrap();
        assert!(matches!(r.as_slice(), [None]));
        let long = Reject::new(RejectKind::LineTooLong, "too long");
        let r = decode_record(
            b"xx",
            9000,
            Some(long),
            &opts,
            &mut counts,
            &mut dl,
            &origin,
        )
        .unwrap();
        assert!(matches!(r.as_slice(), [None]));
        assert_eq!(
            (
                counts.read,
                counts.accepted,
                counts.dead_lettered,
                counts.blank
            ),
            (3, 1, 2, 1)
        );
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let records: Vec<DeadLetter> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records.len(), 2);
        assert_eq!((records[0].line, records[0].offset), (Some(7), Some(120)));
        assert_eq!(records[1].kind, RejectKind::LineTooLong);
        assert_eq!(records[1].raw_bytes, 9000);
    }
}
