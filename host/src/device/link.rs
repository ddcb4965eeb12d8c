//! The protocol's client: requests to the device's UART, replies back, over a byte stream
//! (QEMU's socket for UART0, or a serial port: [`Transport`]), one frame each way at a time.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use digits_core::finetune::Gradient;
use digits_core::frame::{self, Feed, FrameReader, FrameWriter, MAX_FRAME};
use digits_core::protocol::{
    Classification, DeviceError, DeviceInfo, Evaluation, MAX_CHUNK, PROTOCOL_VERSION, Request,
    Response, Stats, Trained, Tuning,
};
use digits_core::update::{SlotSummary, UpdateError};

use super::error::Error;
use super::serial;
use super::transport::Transport;

/// The protocol over a byte stream to the device's UART.
///
/// Requests are answered in order, one reply each (see `firmware::serve`), so a request waits
/// for its reply before the next goes out. Every frame is sent after a `0x00`, which ends
/// whatever noise came before as a frame of its own, skipped by the device.
pub struct Link {
    stream: Transport,
    reader: Box<FrameReader<MAX_FRAME>>,
    writer: Box<FrameWriter>,
    /// The bytes of the request being sent: a `0x00`, then its frame.
    outbox: Vec<u8>,
    /// Bytes read but not yet fed to `reader`.
    inbox: Vec<u8>,
    /// The payload of the last reply.
    payload: Vec<u8>,
    timeout: Duration,
}

impl Link {
    /// How long [`Link::call`] waits for a reply by default: far longer than any request but
    /// `Evaluate` takes under QEMU (whose emulated UART is slow: the figures are in
    /// `docs/figures.md`), so that only a device that is gone runs into it.
    pub const TIMEOUT: Duration = Duration::from_secs(10);
    /// How long [`Link::wait_ready`] waits for each ping's answer before it pings again.
    const RETRY: Duration = Duration::from_millis(500);
    /// How long a device that has just started may take to answer (QEMU's start included).
    pub const STARTUP: Duration = Duration::from_secs(20);

    /// A link over the socket `stream`.
    pub fn new(stream: TcpStream) -> Result<Self, Error> {
        Ok(Self::over(Transport::tcp(stream)?))
    }

    /// A link over `stream`.
    pub fn over(stream: Transport) -> Self {
        Self {
            stream,
            reader: Box::new(FrameReader::new()),
            writer: Box::new(FrameWriter::new()),
            outbox: Vec::with_capacity(MAX_FRAME + 1),
            inbox: Vec::new(),
            payload: Vec::new(),
            timeout: Self::TIMEOUT,
        }
    }

    /// Connects to a device whose UART listens at `addr` (`digits device run`).
    pub fn connect(addr: SocketAddr) -> Result<Self, Error> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        Self::new(stream)
    }

    /// Opens the serial port `path` at `baud` (a board on a USB-UART, or `digits device run
    /// --pty`'s). A device may not answer at once (QEMU's pty drops what the device sends
    /// until it sees us): [`Link::wait_ready`] pings until it does.
    pub fn open_serial(path: &Path, baud: u32) -> Result<Self, Error> {
        Ok(Self::over(Transport::Serial(serial::open(path, baud)?)))
    }

    /// Sets how long to wait for a reply.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Writes `bytes` as they are (for tests that inject noise).
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.stream.write_all(bytes)?;
        Ok(())
    }

    /// Sends one request.
    pub fn send(&mut self, request: &Request<'_>) -> Result<(), Error> {
        let frame = self
            .writer
            .encode(request)
            .map_err(|e| Error::Unexpected(format!("cannot frame the request: {e}")))?;
        // One write for delimiter and frame, as one piece on the socket.
        self.outbox.clear();
        self.outbox.push(0);
        self.outbox.extend_from_slice(frame);
        self.stream.write_all(&self.outbox)?;
        Ok(())
    }

    /// Waits for the next intact reply (damaged frames from the device are skipped).
    pub fn receive(&mut self) -> Result<Response<'_>, Error> {
        let deadline = Instant::now() + self.timeout;
        'frame: loop {
            for (i, &b) in self.inbox.iter().enumerate() {
                if let Feed::Frame(payload) = self.reader.push(b) {
                    self.payload.clear();
                    self.payload.extend_from_slice(payload);
                    self.inbox.drain(..=i);
                    break 'frame;
                }
            }
            self.inbox.clear();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout(self.timeout));
            }
            let mut buf = [0u8; 2048];
            match self.stream.read_within(&mut buf, left) {
                Ok(0) => {
                    return Err(Error::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the device closed the connection",
                    )));
                }
                Ok(n) => self.inbox.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(Error::Timeout(self.timeout));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        frame::decode(&self.payload).map_err(|e| Error::Unexpected(format!("{e}")))
    }

    /// Sends `request` and waits for its reply.
    pub fn call(&mut self, request: &Request<'_>) -> Result<Response<'_>, Error> {
        self.send(request)?;
        self.receive()
    }

    /// Ping with `nonce`; checks the echo.
    pub fn ping(&mut self, nonce: u32) -> Result<(), Error> {
        match self.call(&Request::Ping { nonce })? {
            Response::Pong { nonce: n } if n == nonce => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Pings until the device answers, for at most `within`. A device that has just started may
    /// not have turned its UART on yet, and a UART that is off drops what reaches it (the
    /// STM32F405's does): each unanswered ping is sent again with a new nonce, and late
    /// answers to earlier ones are skipped.
    pub fn wait_ready(&mut self, within: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + within;
        let patience = std::mem::replace(&mut self.timeout, Self::RETRY);
        let result = self.ping_until(deadline, within);
        self.timeout = patience;
        result
    }

    fn ping_until(&mut self, deadline: Instant, within: Duration) -> Result<(), Error> {
        for nonce in 0x5EED_0000u32.. {
            self.send(&Request::Ping { nonce })?;
            loop {
                match self.receive() {
                    Ok(Response::Pong { nonce: n }) if n == nonce => return Ok(()),
                    Ok(Response::Pong { .. }) => {}
                    Ok(other) => return Err(unexpected(other)),
                    Err(Error::Timeout(_)) => break,
                    Err(e) => return Err(e),
                }
            }
            if Instant::now() > deadline {
                break;
            }
        }
        Err(Error::Timeout(within))
    }

    /// Who the device is.
    pub fn info(&mut self) -> Result<DeviceInfo<'_>, Error> {
        match self.call(&Request::Info)? {
            Response::Info(info) => Ok(info),
            other => Err(unexpected(other)),
        }
    }

    /// Classifies one image on the device.
    pub fn classify(&mut self, pixels: &[u8]) -> Result<Classification, Error> {
        match self.call(&Request::Classify { pixels })? {
            Response::Classified(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    /// The device's counters.
    pub fn stats(&mut self) -> Result<Stats, Error> {
        match self.call(&Request::Stats)? {
            Response::Stats(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// Starts fine-tuning over from the flash weights.
    pub fn reset(&mut self) -> Result<Tuning, Error> {
        match self.call(&Request::Reset)? {
            Response::Tuning(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }

    /// Sends one labeled sample for the next training step.
    pub fn sample(&mut self, label: u8, pixels: &[u8]) -> Result<Tuning, Error> {
        match self.call(&Request::Sample { label, pixels })? {
            Response::Tuning(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }

    /// One training step on the samples sent since the last.
    pub fn train(
        &mut self,
        method: Gradient,
        learning_rate: f32,
        momentum: f32,
    ) -> Result<Trained, Error> {
        let request = Request::Train {
            method,
            learning_rate,
            momentum,
        };
        match self.call(&request)? {
            Response::Trained(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }

    /// Says hello with this host's protocol version; fails with a message naming the side to
    /// update when the device speaks another one.
    pub fn hello(&mut self) -> Result<(), Error> {
        let host = PROTOCOL_VERSION;
        match self.call(&Request::Hello { protocol: host })? {
            Response::Hello { protocol, .. } if protocol == host => Ok(()),
            // A firmware older than protocol 4 does not know the request.
            Response::Error(DeviceError::UnknownRequest { .. }) => {
                Err(Error::Device(DeviceError::Version {
                    device: host - 1,
                    host,
                }))
            }
            other => Err(unexpected(other)),
        }
    }

    /// Pushes the model file `file` into the device's free slot, in chunks, and commits it;
    /// `progress` hears of every chunk (bytes sent, bytes in all). A chunk the device did not
    /// expect (one it had, or one after a gap) is answered with where it stands, and the push
    /// goes on from there, at most 3 times.
    pub fn push(
        &mut self,
        file: &[u8],
        mut progress: impl FnMut(u32, u32),
    ) -> Result<SlotSummary, Error> {
        let len = u32::try_from(file.len())
            .map_err(|_| Error::Unexpected("a model file over 4 GiB".into()))?;
        match self.call(&Request::PushBegin { len })? {
            Response::Push(_) => {}
            other => return Err(unexpected(other)),
        }
        let mut offset = 0u32;
        let mut retries = 0;
        while offset < len {
            let end = (offset as usize + MAX_CHUNK).min(file.len());
            let request = Request::PushChunk {
                offset,
                bytes: &file[offset as usize..end],
            };
            match self.call(&request) {
                Ok(Response::Push(p)) => offset = p.received,
                Ok(Response::Error(DeviceError::Update(UpdateError::Offset {
                    expected, ..
                }))) if retries < 3 => {
                    retries += 1;
                    offset = expected;
                }
                Ok(other) => return Err(unexpected(other)),
                Err(e) => return Err(e),
            }
            progress(offset, len);
        }
        match self.call(&Request::PushCommit)? {
            Response::Committed(summary) => Ok(summary),
            other => Err(unexpected(other)),
        }
    }

    /// Returns to the model that ran before the last push.
    pub fn rollback(&mut self) -> Result<SlotSummary, Error> {
        match self.call(&Request::Rollback)? {
            Response::RolledBack(summary) => Ok(summary),
            other => Err(unexpected(other)),
        }
    }

    /// Classifies images `first..first + count` of the data blob in the device's PSRAM.
    pub fn evaluate(&mut self, first: u32, count: u32) -> Result<Evaluation, Error> {
        match self.call(&Request::Evaluate { first, count })? {
            Response::Evaluated(e) => Ok(e),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(response: Response<'_>) -> Error {
    match response {
        Response::Error(e) => Error::Device(e),
        other => Error::Unexpected(format!("{other:?}")),
    }
}
