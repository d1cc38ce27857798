//! Reading durable records, from any LSN.
//!
//! A reader finds the segment holding its start LSN, jumps to the nearest
//! sparse-index entry before it, and reads frames sequentially through a
//! buffer with positioned reads (never a memory map: the active segment is
//! being written while it is read). Every frame is verified again (header
//! checksum, LSN, payload checksum), so rot that happens after the log was
//! opened is reported as [`WalError::Corrupt`], never returned as data.

use std::sync::Arc;

use super::record::{self, HeaderSlot, RECORD_HEADER_SIZE_BYTES};
use super::segment::Segment;
use super::{CorruptReason, Lsn, Shared, WalError};

/// Positioned reads fetch at least this much at a time.
const READ_CHUNK_BYTES: usize = 1 << 20;

/// A cursor over durable records `[from, to)`.
pub struct WalReader {
    shared: Arc<Shared>,
    next_lsn: Lsn,
    end_lsn: Lsn,
    segment: Option<SegmentCursor>,
    buffer: Vec<u8>,
}

impl std::fmt::Debug for WalReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalReader")
            .field("next_lsn", &self.next_lsn)
            .field("end_lsn", &self.end_lsn)
            .finish()
    }
}

struct SegmentCursor {
    segment: Segment,
    /// LSN of the frame at `offset`.
    lsn: Lsn,
    offset: u64,
    /// File offset of `buffer[0]` and number of valid bytes in the buffer.
    buffer_offset: u64,
    buffer_len: usize,
}

impl WalReader {
    pub(super) fn new(shared: Arc<Shared>, from_lsn: Lsn, to_lsn: Lsn) -> Result<Self, WalError> {
        let first_lsn = shared.first_lsn();
        let next_lsn = shared
            .durable_next_lsn
            .load(std::sync::atomic::Ordering::SeqCst);
        if from_lsn < first_lsn || from_lsn > next_lsn {
            return Err(WalError::LsnOutOfRange {
                lsn: from_lsn,
                first_lsn,
                next_lsn,
            });
        }
        Ok(WalReader {
            shared,
            next_lsn: from_lsn,
            end_lsn: to_lsn.min(next_lsn),
            segment: None,
            buffer: Vec::new(),
        })
    }

    /// The LSN the next call returns.
    pub fn next_lsn(&self) -> Lsn {
        self.next_lsn
    }

    /// Returns the next record, or `None` at the end of the range. The
    /// payload borrows the reader's buffer until the next call.
    pub fn next_record(&mut self) -> Result<Option<(Lsn, &[u8])>, WalError> {
        if self.next_lsn >= self.end_lsn {
            return Ok(None);
        }
        if self
            .segment
            .as_ref()
            .is_none_or(|c| self.next_lsn >= c.segment.end_lsn)
        {
            self.segment = Some(self.locate(self.next_lsn)?);
        }
        loop {
            let (lsn, payload_start, payload_len, frame_size) = self.read_frame()?;
            let cursor = self.segment.as_mut().expect("located above");
            cursor.offset += frame_size;
            cursor.lsn += 1;
            if lsn == self.next_lsn {
                self.next_lsn += 1;
                let payload = &self.buffer[payload_start..payload_start + payload_len];
                return Ok(Some((lsn, payload)));
            }
        }
    }

    /// Positions a cursor at the indexed frame at or before `lsn`.
    fn locate(&self, lsn: Lsn) -> Result<SegmentCursor, WalError> {
        let segments = self.shared.segments.read();
        let position = segments.partition_point(|s| s.base_lsn <= lsn);
        let segment = position
            .checked_sub(1)
            .map(|p| &segments[p])
            .filter(|s| lsn < s.end_lsn)
            .ok_or(WalError::LsnOutOfRange {
                lsn,
                first_lsn: segments.first().map_or(lsn, |s| s.base_lsn),
                next_lsn: segments.last().map_or(lsn, |s| s.end_lsn),
            })?;
        let (hint_lsn, hint_offset) = segment.seek_hint(lsn);
        Ok(SegmentCursor {
            segment: segment.clone(),
            lsn: hint_lsn,
            offset: hint_offset,
            buffer_offset: 0,
            buffer_len: 0,
        })
    }

    /// Makes `len` bytes at file offset `offset` available in the buffer;
    /// returns their start index in the buffer.
    fn fill(&mut self, offset: u64, len: usize) -> Result<usize, WalError> {
        let cursor = self.segment.as_mut().expect("fill needs a cursor");
        let buffered_end = cursor.buffer_offset + cursor.buffer_len as u64;
        if offset >= cursor.buffer_offset && offset + len as u64 <= buffered_end {
            return Ok((offset - cursor.buffer_offset) as usize);
        }
        let available = cursor.segment.size_bytes.saturating_sub(offset);
        let want = len.max(READ_CHUNK_BYTES).min(available as usize);
        if want < len {
            return Err(corrupt(cursor, CorruptReason::Length { len: len as u64 }));
        }
        if self.buffer.len() < want {
            self.buffer.resize(want, 0);
        }
        cursor
            .segment
            .file
            .read_exact_at(&mut self.buffer[..want], offset)
            .map_err(|e| WalError::io("read", &cursor.segment.path, e))?;
        cursor.buffer_offset = offset;
        cursor.buffer_len = want;
        Ok(0)
    }

    /// Reads and verifies the frame at the cursor (skipping the zero
    /// padding that ends a submission): (lsn, payload start in the buffer,
    /// payload length, bytes from the cursor to the frame's end).
    fn read_frame(&mut self) -> Result<(Lsn, usize, usize, u64), WalError> {
        let (cursor_offset, expected_lsn) = {
            let cursor = self.segment.as_ref().expect("read_frame needs a cursor");
            (cursor.offset, cursor.lsn)
        };
        let mut offset = cursor_offset;
        let header = loop {
            let start = self.fill(offset, RECORD_HEADER_SIZE_BYTES)?;
            let slot = record::decode_header(&self.buffer[start..start + RECORD_HEADER_SIZE_BYTES]);
            let cursor = self.segment.as_ref().expect("filled above");
            match slot {
                HeaderSlot::Valid(header) if header.lsn == expected_lsn => break header,
                HeaderSlot::Valid(header) => {
                    return Err(corrupt(cursor, CorruptReason::Lsn { found: header.lsn }));
                }
                HeaderSlot::Invalid {
                    expected_crc,
                    actual_crc,
                } => {
                    let reason = CorruptReason::HeaderChecksum {
                        expected_crc,
                        actual_crc,
                    };
                    return Err(corrupt(cursor, reason));
                }
                // The padding after a submission: the next frame starts at
                // the sector boundary (recovery checked the padding).
                HeaderSlot::Zero if !offset.is_multiple_of(record::SECTOR_BYTES as u64) => {
                    offset = record::sector_align_up(offset);
                }
                HeaderSlot::Zero => {
                    let reason = CorruptReason::Truncated {
                        next_base_lsn: cursor.segment.end_lsn,
                    };
                    return Err(corrupt(cursor, reason));
                }
            }
        };
        let frame_size = header.frame_size_at(offset) as usize;
        let start = self.fill(offset, frame_size)?;
        let frame = &self.buffer[start..start + frame_size];
        if let Err(fault) = record::verify_body(frame, offset, &header) {
            let cursor = self.segment.as_ref().expect("filled above");
            let reason = match fault {
                record::BodyFault::Checksum {
                    expected_crc,
                    actual_crc,
                } => CorruptReason::BodyChecksum {
                    expected_crc,
                    actual_crc,
                },
                record::BodyFault::Stamp { at } => CorruptReason::Stamp { at: at as u64 },
                record::BodyFault::Padding => CorruptReason::Padding,
            };
            return Err(corrupt(cursor, reason));
        }
        let payload_start = start + RECORD_HEADER_SIZE_BYTES;
        let payload_len = record::strip_stamps(
            &mut self.buffer[payload_start..start + frame_size],
            offset + RECORD_HEADER_SIZE_BYTES as u64,
            header.payload_len as usize,
        );
        let advance = offset + frame_size as u64 - cursor_offset;
        Ok((header.lsn, payload_start, payload_len, advance))
    }
}

fn corrupt(cursor: &SegmentCursor, reason: CorruptReason) -> WalError {
    WalError::Corrupt {
        path: cursor.segment.path.clone(),
        offset: cursor.offset,
        expected_lsn: cursor.lsn,
        reason,
    }
}

/// An iterator of owned `(lsn, payload)` pairs.
#[derive(Debug)]
pub struct WalIter {
    reader: Option<Result<WalReader, WalError>>,
}

impl WalIter {
    pub(super) fn new(reader: Result<WalReader, WalError>) -> WalIter {
        WalIter {
            reader: Some(reader),
        }
    }
}

impl Iterator for WalIter {
    type Item = Result<(Lsn, Vec<u8>), WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.reader.take()? {
            Err(error) => Some(Err(error)),
            Ok(mut reader) => match reader.next_record() {
                Ok(Some((lsn, payload))) => {
                    let item = (lsn, payload.to_vec());
                    self.reader = Some(Ok(reader));
                    Some(Ok(item))
                }
                Ok(None) => None,
                Err(error) => Some(Err(error)),
            },
        }
    }
}
