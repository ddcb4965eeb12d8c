//! The byte stream under a [`super::link::Link`]: a TCP socket (QEMU's UART chardev) or a
//! serial port (a board on a USB-UART, or QEMU's UART on a pseudo-terminal).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serialport::SerialPort;

/// Where a link's bytes go.
pub enum Transport {
    /// A socket: `digits device run --listen`, or a QEMU of our own.
    Tcp(TcpStream),
    /// A serial port, opened by [`super::serial::open`].
    Serial(Box<dyn SerialPort>),
}

impl Transport {
    /// A socket, with Nagle's algorithm off: every request is one small write that waits for
    /// its reply, which Nagle would hold back.
    pub fn tcp(stream: TcpStream) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        Ok(Self::Tcp(stream))
    }

    /// Reads what has arrived, waiting at most `timeout` (not zero) for the first byte; a
    /// timeout is an error of kind `TimedOut` or `WouldBlock`.
    pub fn read_within(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        match self {
            Self::Tcp(stream) => {
                stream.set_read_timeout(Some(timeout))?;
                stream.read(buf)
            }
            Self::Serial(port) => {
                port.set_timeout(timeout).map_err(io::Error::from)?;
                port.read(buf)
            }
        }
    }

    /// Writes all of `bytes`.
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Tcp(stream) => stream.write_all(bytes),
            Self::Serial(port) => {
                // The port's timeout bounds each write too: a device that reads nothing (no
                // flow control here) cannot block us for ever.
                port.set_timeout(WRITE_TIMEOUT).map_err(io::Error::from)?;
                port.write_all(bytes)
            }
        }
    }
}

/// How long a write to a serial port may wait for room in its buffer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
