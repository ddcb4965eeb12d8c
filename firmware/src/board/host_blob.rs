//! A data blob in a file on the host, read over semihosting an image at a time: where the `eval`
//! programs find their data on a board without PSRAM to load it into. The host names the file
//! as the last word of the semihosting command line
//! (`-semihosting-config enable=on,target=native,arg=eval-int8,arg=BLOB`).

use cortex_m_semihosting::{nr, syscall, syscall1};

use digits_core::blob::{END_MARK, HEADER_LEN, Header, IMAGE_LEN};

use crate::eval::Source;

/// Longest semihosting command line read.
const CMDLINE: usize = 512;

/// A data blob in a host file, read over semihosting.
pub struct HostBlob {
    handle: usize,
    header: Header,
}

/// `len` bytes at `offset` of the file into `buf`.
fn read_at(handle: usize, offset: usize, buf: &mut [u8]) -> Result<(), &'static str> {
    // SAFETY: SYS_SEEK and SYS_READ with a valid handle and a buffer of `buf.len()` bytes that
    // the host writes into (and nothing else).
    let (seek, left) = unsafe {
        (
            syscall!(SEEK, handle, offset),
            syscall!(READ, handle, buf.as_mut_ptr(), buf.len()),
        )
    };
    if seek != 0 || left != 0 {
        return Err("bad data blob: the file is shorter than its count says (truncated?)");
    }
    Ok(())
}

impl HostBlob {
    /// Opens and checks the blob named by the last word of the semihosting command line: magic,
    /// flags, a count of at least one, the file's length and the end mark where the count puts
    /// it. Labels are checked as they are read.
    pub fn open() -> Result<Self, &'static str> {
        let mut line = [0u8; CMDLINE];
        let mut block = [line.as_mut_ptr() as usize, CMDLINE - 1];
        // SAFETY: SYS_GET_CMDLINE writes at most `block[1]` bytes into `line` and the length
        // into `block[1]`.
        // (Not `syscall!`, which would wrap the block's address in another block.)
        let failed = unsafe { syscall1(nr::GET_CMDLINE, block.as_mut_ptr() as usize) };
        if failed != 0 || block[1] >= CMDLINE {
            return Err("no semihosting command line: pass the blob with \
                        -semihosting-config enable=on,target=native,arg=eval-int8,arg=BLOB");
        }
        let text = core::str::from_utf8(&line[..block[1]]).map_err(|_| "command line not UTF-8")?;
        let path = text
            .split_whitespace()
            .last()
            .ok_or("no blob named on the command line")?;
        if path.len() + 1 > CMDLINE {
            return Err("blob path too long");
        }
        let mut name = [0u8; CMDLINE];
        name[..path.len()].copy_from_slice(path.as_bytes());
        // SAFETY: SYS_OPEN reads the NUL-terminated name of `path.len()` bytes.
        let handle = unsafe { syscall!(OPEN, name.as_ptr(), nr::open::R_BINARY, path.len()) };
        if handle == usize::MAX {
            return Err("bad data blob: cannot open the file named on the command line");
        }
        let mut head = [0u8; HEADER_LEN];
        read_at(handle, 0, &mut head).map_err(|_| "bad data blob: shorter than a header")?;
        let header = Header::parse(&head)?;
        // SAFETY: SYS_FLEN of a valid handle.
        let len = unsafe { syscall!(FLEN, handle) };
        if len as u64 != header.blob_len() {
            return Err("bad data blob: its length is not what its count says (truncated?)");
        }
        let mut end = [0u8; 8];
        read_at(handle, len - END_MARK.len(), &mut end)?;
        if end != END_MARK {
            return Err("bad data blob: no \"DIGITEND\" where its count says it ends");
        }
        Ok(Self { handle, header })
    }
}

impl Source for HostBlob {
    fn header(&self) -> Header {
        self.header
    }

    fn read(&mut self, i: usize, image: &mut [u8; IMAGE_LEN]) -> Result<Option<u8>, &'static str> {
        let count = self.header.count as usize;
        if i >= count {
            return Err("image index past the blob");
        }
        read_at(self.handle, HEADER_LEN + i * IMAGE_LEN, image)?;
        if !self.header.has_labels() {
            return Ok(None);
        }
        let mut label = [0u8; 1];
        read_at(self.handle, HEADER_LEN + count * IMAGE_LEN + i, &mut label)?;
        if label[0] > 9 {
            return Err("bad data blob: a label is not a digit 0-9");
        }
        Ok(Some(label[0]))
    }
}
