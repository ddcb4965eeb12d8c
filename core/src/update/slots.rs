//! Two model slots (A/B) and the update that keeps one of them runnable whatever happens.
//!
//! - **Boot** ([`Slots::new`]): every slot is checked whole ([`super::slot::verify`]); the valid,
//!   unrevoked one with the highest sequence number runs.
//! - **Push** ([`Slots::begin`], [`Slots::chunk`], [`Slots::commit`]): into the slot that does
//!   not run. Its commit word is cleared first (a half-erased slot never looks committed),
//!   then its sectors are erased and the file streams in; at commit the slot is checked as at
//!   boot, the header is programmed, and then the commit word: the one write after which the
//!   new model runs.
//! - **Rollback** ([`Slots::rollback`]): if the other slot is valid, the running slot's revoke
//!   word is programmed, and the other runs.
//!
//! Only the slot that does not run is ever erased or written, and the running one only gets its
//! revoke word, after the other was checked. So a power cut at any point leaves a valid slot to
//! boot: the old model, or the new one once its commit word is whole.

use core::ops::Range;

use serde::{Deserialize, Serialize};

use super::flash::{ERASED, Flash, FlashError, WORD};
use super::place::{Kind, Parser, Route};
use super::slot::{
    COMMIT_AT, COMMITTED, Content, ContentError, ENVELOPE_AT, HEADER_LEN, Header, IMAGE_AT,
    REVOKE_AT, State, marks, verify, word_at,
};
use crate::model_file::ModelFileError;

/// Why an update request was refused. The running model is untouched in every case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateError {
    /// The model is larger than a slot.
    TooLarge {
        /// Bytes it needs.
        len: u32,
        /// Bytes a slot has for it.
        capacity: u32,
    },
    /// A chunk or a commit without a push under way (none begun, or one refused before).
    NotStarted,
    /// A chunk that does not continue the push: out of order or repeated. The push goes on
    /// from `expected`.
    Offset {
        /// The offset the next chunk must have.
        expected: u32,
        /// The offset received.
        got: u32,
    },
    /// A chunk past the length the push announced.
    Overrun {
        /// The announced length.
        len: u32,
    },
    /// A commit before every byte arrived. The push goes on.
    Incomplete {
        /// Bytes received.
        received: u32,
        /// Bytes announced.
        len: u32,
    },
    /// The model file is refused, for the reason `digits eval` would give.
    Model(ModelFileError),
    /// The model file's metadata is larger than the slot keeps.
    EnvelopeTooLarge {
        /// Bytes of metadata a slot keeps.
        max: u32,
    },
    /// The flash did not take a write.
    Flash(FlashError),
    /// No other valid model to return to.
    NoPrevious,
    /// The sequence numbers are used up (4 billion updates).
    Exhausted,
}

impl core::fmt::Display for UpdateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            UpdateError::TooLarge { len, capacity } => write!(
                f,
                "the model needs {len} bytes of flash but a slot of this device holds {capacity}: \
                 push a smaller model (int8 or compact)"
            ),
            UpdateError::NotStarted => f.write_str("no push under way: begin the push again"),
            UpdateError::Offset { expected, got } => write!(
                f,
                "a chunk at byte {got} where byte {expected} comes next (out of order or repeated)"
            ),
            UpdateError::Overrun { len } => {
                write!(f, "a chunk past the {len} bytes the push announced")
            }
            UpdateError::Incomplete { received, len } => write!(
                f,
                "commit after {received} of {len} bytes: send the rest first"
            ),
            UpdateError::Model(e) => write!(f, "model refused: {e}"),
            UpdateError::EnvelopeTooLarge { max } => write!(
                f,
                "the model file's metadata is larger than the {max} bytes a slot keeps: \
                 train it with shorter options"
            ),
            UpdateError::Flash(e) => write!(f, "{e}; the running model is unchanged"),
            UpdateError::NoPrevious => {
                f.write_str("no previous model to return to (the other slot holds none)")
            }
            UpdateError::Exhausted => f.write_str("the slots' sequence numbers are used up"),
        }
    }
}

impl From<FlashError> for UpdateError {
    fn from(e: FlashError) -> Self {
        UpdateError::Flash(e)
    }
}

impl From<ModelFileError> for UpdateError {
    fn from(e: ModelFileError) -> Self {
        UpdateError::Model(e)
    }
}

/// How far a push has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The slot being written (0 = A, 1 = B).
    pub slot: u8,
    /// Bytes received so far.
    pub received: u32,
    /// Bytes announced.
    pub len: u32,
}

/// One slot as [`Slots::summary`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotSummary {
    /// 0 = A, 1 = B.
    pub slot: u8,
    /// What it holds.
    pub state: State,
    /// Whether its model runs.
    pub active: bool,
    /// Its header, if it has a valid one.
    pub header: Option<Header>,
}

/// The running model: its slot, header and content in flash.
#[derive(Clone, Copy, Debug)]
pub struct Active<'a> {
    /// 0 = A, 1 = B.
    pub slot: u8,
    /// Its header.
    pub header: Header,
    /// Its envelope and image, verified.
    pub content: Content<'a>,
}

/// Bytes written into flash in order, a word at a time.
#[derive(Clone, Copy, Debug)]
struct Stream {
    /// Area offset of the word being filled.
    next: u32,
    word: [u8; 4],
    fill: u32,
}

impl Stream {
    const fn new() -> Self {
        Self {
            next: 0,
            word: [0xFF; 4],
            fill: 0,
        }
    }

    /// Writes `bytes` at area offset `at`.
    fn write(
        &mut self,
        flash: &mut impl Flash,
        at: u32,
        mut bytes: &[u8],
    ) -> Result<(), FlashError> {
        if self.fill > 0 && at != self.next + self.fill {
            self.flush(flash)?;
        }
        if self.fill == 0 {
            self.next = at - at % WORD;
            self.fill = at % WORD;
        }
        if self.fill > 0 {
            let n = bytes.len().min((WORD - self.fill) as usize);
            self.word[self.fill as usize..][..n].copy_from_slice(&bytes[..n]);
            self.fill += n as u32;
            bytes = &bytes[n..];
            if self.fill < WORD {
                return Ok(());
            }
            program(flash, self.next, &self.word)?;
            (self.next, self.fill, self.word) = (self.next + WORD, 0, [0xFF; 4]);
        }
        let whole = bytes.len() - bytes.len() % WORD as usize;
        if whole > 0 {
            program(flash, self.next, &bytes[..whole])?;
            self.next += whole as u32;
        }
        let tail = &bytes[whole..];
        self.word[..tail.len()].copy_from_slice(tail);
        self.fill = tail.len() as u32;
        Ok(())
    }

    /// Programs a partly filled word (the rest stays erased).
    fn flush(&mut self, flash: &mut impl Flash) -> Result<(), FlashError> {
        if self.fill > 0 {
            program(flash, self.next, &self.word)?;
            (self.next, self.fill, self.word) = (self.next + WORD, 0, [0xFF; 4]);
        }
        Ok(())
    }
}

/// Programs `bytes` at `at` and reads them back.
fn program(flash: &mut impl Flash, at: u32, bytes: &[u8]) -> Result<(), FlashError> {
    flash.program(at, bytes)?;
    let got = flash.bytes().get(at as usize..at as usize + bytes.len());
    match got {
        Some(got) if got == bytes => Ok(()),
        Some(got) => {
            let k = got.iter().zip(bytes).position(|(a, b)| a != b).unwrap_or(0);
            Err(FlashError::Readback {
                offset: at + k as u32,
            })
        }
        None => Err(FlashError::Bounds { offset: at }),
    }
}

/// Erases the sectors that hold `range` and reads them back.
fn erase(flash: &mut impl Flash, range: Range<u32>) -> Result<(), FlashError> {
    let mut at = range.start;
    while at < range.end {
        let sector = flash.sector(at)?;
        flash.erase(sector.start)?;
        let bytes = &flash.bytes()[sector.start as usize..sector.end as usize];
        if let Some(k) = bytes.iter().position(|&b| b != 0xFF) {
            return Err(FlashError::Readback {
                offset: sector.start + k as u32,
            });
        }
        at = sector.end;
    }
    Ok(())
}

/// A push under way.
struct Push {
    slot: u8,
    seq: u32,
    len: u32,
    parser: Parser,
    envelope: Stream,
    image: Stream,
}

/// The two slots over a flash area; see the module's documentation.
pub struct Slots<F: Flash> {
    flash: F,
    ranges: [Range<u32>; 2],
    headers: [Option<Header>; 2],
    states: [State; 2],
    active: Option<u8>,
    push: Option<Push>,
}

impl<F: Flash> Slots<F> {
    /// The slots at `ranges` of `flash` (each starting on a sector), checked and the newest
    /// valid one chosen to run.
    pub fn new(flash: F, ranges: [Range<u32>; 2]) -> Self {
        let mut slots = Self {
            flash,
            ranges,
            headers: [None; 2],
            states: [State::Empty; 2],
            active: None,
            push: None,
        };
        slots.select();
        slots
    }

    /// Checks both slots again and chooses the one to run (what a boot does).
    pub fn select(&mut self) {
        self.push = None;
        for k in 0..2 {
            (self.headers[k], self.states[k]) = self.look(k);
        }
        let valid = |k: usize| self.states[k] == State::Valid;
        let seq = |k: usize| self.headers[k].map_or(0, |h| h.seq);
        self.active = match (valid(0), valid(1)) {
            (true, true) if seq(1) > seq(0) => Some(1),
            (true, _) => Some(0),
            (false, true) => Some(1),
            (false, false) => None,
        };
    }

    fn slot_bytes(&self, k: usize) -> &[u8] {
        let r = &self.ranges[k];
        &self.flash.bytes()[r.start as usize..r.end as usize]
    }

    fn look(&self, k: usize) -> (Option<Header>, State) {
        let slot = self.slot_bytes(k);
        let Some(header) = Header::decode(slot) else {
            return (None, State::Empty);
        };
        let (committed, unrevoked) = marks(slot);
        if !committed {
            return (None, State::Empty);
        }
        match verify(slot, &header) {
            Err(_) => (Some(header), State::Damaged),
            Ok(_) if unrevoked => (Some(header), State::Valid),
            Ok(_) => (Some(header), State::Revoked),
        }
    }

    /// The running model, if any slot holds a valid one.
    pub fn active(&self) -> Option<Active<'_>> {
        let k = self.active?;
        let header = self.headers[k as usize]?;
        Some(Active {
            slot: k,
            header,
            content: Content::at(self.slot_bytes(k as usize), &header),
        })
    }

    /// Both slots, A then B.
    pub fn summary(&self) -> [SlotSummary; 2] {
        core::array::from_fn(|k| SlotSummary {
            slot: k as u8,
            state: self.states[k],
            active: self.active == Some(k as u8),
            header: self.headers[k],
        })
    }

    /// The slot a push goes to: the one that does not run.
    fn target(&self) -> usize {
        match self.active {
            Some(k) => 1 - k as usize,
            None => 0,
        }
    }

    /// Bytes of model file the next push may have at most (a compact network's; a network of
    /// `f32` or int8 also needs its image to fit the slot).
    pub fn capacity(&self) -> u32 {
        let r = &self.ranges[self.target()];
        (r.end - r.start).saturating_sub(ENVELOPE_AT)
    }

    /// The push under way, if any.
    pub fn progress(&self) -> Option<Progress> {
        self.push.as_ref().map(|p| Progress {
            slot: p.slot,
            received: p.parser.position(),
            len: p.len,
        })
    }

    /// The flash, to read.
    pub fn flash(&self) -> &F {
        &self.flash
    }

    /// The flash back.
    pub fn into_flash(self) -> F {
        self.flash
    }

    /// Starts a push of a model file of `len` bytes into the slot that does not run: clears
    /// its commit word and erases what the file will need. A push under way is dropped.
    pub fn begin(&mut self, len: u32) -> Result<Progress, UpdateError> {
        self.push = None;
        let capacity = self.capacity();
        if len > capacity {
            return Err(UpdateError::TooLarge { len, capacity });
        }
        if len < 13 {
            return Err(UpdateError::Model(ModelFileError::TooShort {
                len: len as usize,
            }));
        }
        let target = self.target();
        let seq = match self.active() {
            Some(a) => a.header.seq.checked_add(1).ok_or(UpdateError::Exhausted)?,
            None => 0,
        };
        let base = self.ranges[target].start;
        let end = self.ranges[target].end;
        // From here on the target slot no longer counts, whatever happens next.
        self.states[target] = State::Empty;
        self.headers[target] = None;
        if word_at(self.slot_bytes(target), COMMIT_AT) != ERASED {
            program(&mut self.flash, base + COMMIT_AT, &[0; 4])?;
        }
        erase(&mut self.flash, base..end.min(base + IMAGE_AT + len))?;
        let mut envelope = Stream::new();
        envelope.next = base + ENVELOPE_AT;
        self.push = Some(Push {
            slot: target as u8,
            seq,
            len,
            parser: Parser::new(len),
            envelope,
            image: Stream::new(),
        });
        Ok(self.progress().expect("just begun"))
    }

    /// Takes the push's next bytes, which start at byte `offset` of the file. A chunk out of
    /// order is refused and the push goes on; a bad file or a flash failure ends the push.
    pub fn chunk(&mut self, offset: u32, bytes: &[u8]) -> Result<Progress, UpdateError> {
        let push = self.push.as_ref().ok_or(UpdateError::NotStarted)?;
        let received = push.parser.position();
        if offset != received {
            return Err(UpdateError::Offset {
                expected: received,
                got: offset,
            });
        }
        if bytes.len() as u64 > u64::from(push.len - received) {
            let len = push.len;
            self.push = None;
            return Err(UpdateError::Overrun { len });
        }
        let result = self.place(bytes);
        if result.is_err() {
            self.push = None;
        }
        result.map(|()| self.progress().expect("under way"))
    }

    fn place(&mut self, mut bytes: &[u8]) -> Result<(), UpdateError> {
        let push = self.push.as_mut().expect("under way");
        let base = self.ranges[push.slot as usize].start;
        let slot_len = self.ranges[push.slot as usize].end - base;
        while !bytes.is_empty() {
            match push.parser.route() {
                Route::Done => return Err(UpdateError::Overrun { len: push.len }),
                Route::Envelope => {
                    let at = ENVELOPE_AT + push.parser.envelope_len();
                    let taken = push.parser.envelope(bytes)?;
                    let limit = match push.parser.kind() {
                        Some(Kind::Compact) | None => slot_len,
                        Some(_) => IMAGE_AT,
                    };
                    if at + taken as u32 > limit {
                        return Err(UpdateError::EnvelopeTooLarge {
                            max: IMAGE_AT - ENVELOPE_AT,
                        });
                    }
                    push.envelope
                        .write(&mut self.flash, base + at, &bytes[..taken])?;
                    bytes = &bytes[taken..];
                }
                Route::Payload { at, left, .. } => {
                    let kind = push.parser.kind().expect("a payload has a kind");
                    if IMAGE_AT + kind.image_len() > slot_len {
                        return Err(UpdateError::TooLarge {
                            len: IMAGE_AT + kind.image_len(),
                            capacity: slot_len,
                        });
                    }
                    let n = bytes.len().min(left as usize);
                    push.parser.payload(&bytes[..n])?;
                    push.image
                        .write(&mut self.flash, base + IMAGE_AT + at, &bytes[..n])?;
                    bytes = &bytes[n..];
                }
            }
        }
        Ok(())
    }

    /// Ends the push: checks the slot as a boot would, programs its header and then its commit
    /// word, and runs the new model. An incomplete push goes on; a bad one ends.
    pub fn commit(&mut self) -> Result<SlotSummary, UpdateError> {
        let push = self.push.as_ref().ok_or(UpdateError::NotStarted)?;
        if push.parser.position() != push.len {
            return Err(UpdateError::Incomplete {
                received: push.parser.position(),
                len: push.len,
            });
        }
        let result = self.seal();
        self.push = None;
        result
    }

    fn seal(&mut self) -> Result<SlotSummary, UpdateError> {
        let mut push = self.push.take().expect("under way");
        push.envelope.flush(&mut self.flash)?;
        push.image.flush(&mut self.flash)?;
        let parsed = push.parser.finish()?;
        let k = push.slot as usize;
        let header = Header {
            seq: push.seq,
            file_len: push.len,
            file_crc: parsed.crc,
            envelope_len: parsed.envelope_len,
            kind: parsed.kind,
            version: parsed.version,
        };
        verify(self.slot_bytes(k), &header).map_err(|e| match e {
            ContentError::Model(e) => UpdateError::Model(e),
            ContentError::EnvelopeTooLarge => UpdateError::EnvelopeTooLarge {
                max: IMAGE_AT - ENVELOPE_AT,
            },
        })?;
        let base = self.ranges[k].start;
        program(&mut self.flash, base, &header.encode())?;
        program(&mut self.flash, base + COMMIT_AT, &COMMITTED.to_le_bytes())?;
        self.headers[k] = Some(header);
        self.states[k] = State::Valid;
        self.active = Some(k as u8);
        Ok(self.summary()[k])
    }

    /// Returns to the model that ran before the last push, if its slot is valid: revokes the
    /// running slot.
    pub fn rollback(&mut self) -> Result<SlotSummary, UpdateError> {
        let k = self.active.ok_or(UpdateError::NoPrevious)? as usize;
        let other = 1 - k;
        if self.states[other] != State::Valid || self.push.is_some() {
            return Err(UpdateError::NoPrevious);
        }
        program(&mut self.flash, self.ranges[k].start + REVOKE_AT, &[0; 4])?;
        self.states[k] = State::Revoked;
        self.active = Some(other as u8);
        Ok(self.summary()[other])
    }
}

const _: () = assert!(HEADER_LEN <= COMMIT_AT && REVOKE_AT + 4 <= ENVELOPE_AT);
