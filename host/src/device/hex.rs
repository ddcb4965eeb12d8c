//! `digits device hex`: the firmware for a real board as an Intel HEX file, the format the
//! micro:bit's USB drive takes by copy (and ST's, Segger's and probe-rs's tools flash).
//!
//! The firmware is built for the chip rather than QEMU (`Firmware::for_real_board`: defmt over
//! RTT, no semihosting call that would stop a chip without a debugger), with the shipped model or
//! `--model`, and its loadable segments are written at their load addresses (`.data`'s initial
//! values at theirs in flash, not at their RAM addresses).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use object::elf::PT_LOAD;
use object::read::elf::{ElfFile32, ProgramHeader};

use super::firmware::Firmware;
use super::model::DeviceModel;
use super::qemu::Board;

/// Options of `digits device hex`.
#[derive(Args)]
pub struct HexArgs {
    /// The board: the BBC micro:bit v1 (the self-test, which prints its answers on the USB
    /// serial port) or a board with the STM32F405 (the `serve` firmware on USART1).
    #[arg(long, value_enum)]
    board: Board,
    /// The model to embed instead of the shipped one: int8 or compact for the micro:bit (it
    /// replaces the shipped model of its kind), f32 for the STM32F405.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Where to write the file [default: digits-BOARD.hex in the current directory].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs `digits device hex`.
pub fn run(args: &HexArgs) -> Result<()> {
    let program = match args.board {
        Board::Microbit => "selftest",
        Board::Netduinoplus2 => "serve",
        other => bail!(
            "the {} is a QEMU machine, not a board to flash: use --board microbit (BBC micro:bit \
             v1) or --board netduinoplus2 (STM32F405)",
            other.name()
        ),
    };
    let model = args
        .model
        .as_deref()
        .map(|path| DeviceModel::load(Some(path)))
        .transpose()?;
    if let Some(model) = &model {
        match args.board {
            Board::Microbit if model.is_f32() => bail!(
                "{} is an f32 model (407 KB of weights), which does not fit the micro:bit's 256 \
                 KiB of flash: pass an int8 model (`digits quantize`) or a compact one (`digits \
                 train --arch`)",
                model.path.display()
            ),
            Board::Netduinoplus2 => {
                model.f32_to_build("hex --board netduinoplus2")?;
            }
            _ => {}
        }
    }
    let firmware = Firmware::new(None).for_board(args.board).for_real_board();
    let elf = firmware.elf(program, model.as_ref())?;
    let bytes = std::fs::read(&elf)
        .with_context(|| format!("cannot read the firmware {}", elf.display()))?;
    let image = FlashImage::of_elf(&bytes)
        .with_context(|| format!("the firmware {} is not a usable ELF", elf.display()))?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("digits-{}.hex", args.board.name())));
    crate::model_io::write_atomically(&out, image.to_hex()?.as_bytes())?;
    println!(
        "wrote {} ({} bytes of flash from {:#010x}: the {program} program{})",
        out.display(),
        image.bytes(),
        image.start(),
        match &model {
            Some(m) => format!(" with {}", m.path.display()),
            None => String::new(),
        }
    );
    print_next_steps(args.board, &out);
    Ok(())
}

fn print_next_steps(board: Board, out: &Path) {
    match board {
        Board::Microbit => println!(
            "next: copy it onto the MICROBIT drive (a micro:bit v1.x; a v2 cannot run it), then \
             read its answers on the USB serial port at 115200 baud, e.g. `screen /dev/ttyACM0 \
             115200`, and press the reset button on the back"
        ),
        _ => println!(
            "next: flash it, e.g. `probe-rs download --chip STM32F405RGTx --binary-format hex {}` \
             or STM32CubeProgrammer, wire a USB-UART to PA9 (TX) and PA10 (RX), and talk to it \
             with the protocol at 115200 baud (see README.md, \"On a real board\")",
            out.display()
        ),
    }
}

/// The bytes a firmware puts into flash: each loadable segment at its load address.
#[derive(Debug, PartialEq)]
pub struct FlashImage {
    /// (load address, bytes), in address order.
    pub segments: Vec<(u32, Vec<u8>)>,
}

impl FlashImage {
    /// The loadable segments (with bytes in the file) of a 32-bit little-endian ELF.
    pub fn of_elf(elf: &[u8]) -> Result<Self> {
        let file = ElfFile32::<object::LittleEndian>::parse(elf)?;
        let endian = file.endian();
        let mut segments = Vec::new();
        for header in file.elf_program_headers() {
            if header.p_type(endian) != PT_LOAD || header.p_filesz(endian) == 0 {
                continue;
            }
            let data = header
                .data(endian, elf)
                .map_err(|()| anyhow::anyhow!("a segment lies outside the file"))?;
            segments.push((header.p_paddr(endian), data.to_vec()));
        }
        if segments.is_empty() {
            bail!("it has nothing to load");
        }
        segments.sort_by_key(|(address, _)| *address);
        Ok(Self { segments })
    }

    /// The lowest address written.
    pub fn start(&self) -> u32 {
        self.segments[0].0
    }

    /// Bytes written.
    pub fn bytes(&self) -> usize {
        self.segments.iter().map(|(_, data)| data.len()).sum()
    }

    /// The image as Intel HEX: 16 bytes to a data record, an extended linear address record
    /// where the upper 16 bits of the address change, and the end-of-file record.
    pub fn to_hex(&self) -> Result<String> {
        use ihex::Record;
        let mut records = Vec::new();
        let mut upper = None;
        for (start, data) in &self.segments {
            for (k, chunk) in data.chunks(16).enumerate() {
                let address = start + (k * 16) as u32;
                if upper != Some(address >> 16) {
                    upper = Some(address >> 16);
                    records.push(Record::ExtendedLinearAddress((address >> 16) as u16));
                }
                // A record must not cross a 64 KiB boundary: the chunk's tail goes into the
                // next record, after the new upper address.
                let room = (0x1_0000 - (address & 0xFFFF)) as usize;
                let (here, there) = chunk.split_at(chunk.len().min(room));
                records.push(Record::Data {
                    offset: address as u16,
                    value: here.to_vec(),
                });
                if !there.is_empty() {
                    let next = address + here.len() as u32;
                    upper = Some(next >> 16);
                    records.push(Record::ExtendedLinearAddress((next >> 16) as u16));
                    records.push(Record::Data {
                        offset: next as u16,
                        value: there.to_vec(),
                    });
                }
            }
        }
        records.push(Record::EndOfFile);
        Ok(ihex::create_object_file_representation(&records)?)
    }

    /// An Intel HEX file read back into address -> byte runs (for tests and checks).
    pub fn of_hex(text: &str) -> Result<Self> {
        use ihex::Record;
        let mut upper = 0u32;
        let mut segments: Vec<(u32, Vec<u8>)> = Vec::new();
        for record in ihex::Reader::new(text) {
            match record? {
                Record::ExtendedLinearAddress(high) => upper = (high as u32) << 16,
                Record::Data { offset, value } => {
                    let address = upper | offset as u32;
                    match segments.last_mut() {
                        Some((start, data)) if *start + data.len() as u32 == address => {
                            data.extend_from_slice(&value)
                        }
                        _ => segments.push((address, value)),
                    }
                }
                Record::EndOfFile => return Ok(Self { segments }),
                other => bail!("unexpected record {other:?}"),
            }
        }
        bail!("no end-of-file record (truncated?)")
    }
}

#[cfg(test)]
mod tests {
    use super::FlashImage;

    #[test]
    fn hex_reads_back_as_the_image_across_a_64k_boundary() {
        let image = FlashImage {
            segments: vec![
                (0x0800_FFF8, (0..=255).collect()),
                (0x0801_2000, vec![7; 33]),
            ],
        };
        let hex = image.to_hex().unwrap();
        assert!(hex.trim_end().ends_with(":00000001FF"), "{hex}");
        let back = FlashImage::of_hex(&hex).unwrap();
        assert_eq!(back, image);
        let mut truncated = hex.clone();
        truncated.truncate(hex.len() - 12);
        assert!(FlashImage::of_hex(&truncated).is_err());
    }
}
