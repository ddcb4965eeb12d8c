//! Tests of the data layer: synthetic IDX files in temporary directories (the malformed ones in
//! one table), the committed MNIST slice, and the full MNIST and Fashion-MNIST where they are.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use flate2::Compression;
use flate2::write::GzEncoder;
use tempfile::TempDir;

use super::mnist::{FILES, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use super::source::read_content_limited;
use super::*;

/// An IDX images file with `count` images of `rows` x `cols`, image i filled with i.
fn images_idx(magic: u32, count: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut bytes = header(&[magic, count, rows, cols]);
    for i in 0..count {
        bytes.extend(std::iter::repeat_n(i as u8, (rows * cols) as usize));
    }
    bytes
}

/// A valid images file with `count` images.
fn images(count: u32) -> Vec<u8> {
    images_idx(2051, count, 28, 28)
}

/// A valid labels file.
fn labels(labels: &[u8]) -> Vec<u8> {
    let mut bytes = header(&[2049, labels.len() as u32]);
    bytes.extend_from_slice(labels);
    bytes
}

/// Big-endian u32 fields.
fn header(fields: &[u32]) -> Vec<u8> {
    fields.iter().flat_map(|f| f.to_be_bytes()).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Writes `bytes` as `dir/name`, gzipped (with a `.gz` suffix) if asked.
fn write(dir: &Path, name: &str, bytes: &[u8], gz: bool) -> PathBuf {
    let (path, data) = if gz {
        (dir.join(format!("{name}.gz")), gzip(bytes))
    } else {
        (dir.join(name), bytes.to_vec())
    };
    std::fs::write(&path, data).unwrap();
    path
}

/// A complete synthetic dataset: 3 training and 2 test images.
fn synthetic(gz: bool) -> TempDir {
    let dir = TempDir::new().unwrap();
    write(dir.path(), TRAIN_IMAGES, &images(3), gz);
    write(dir.path(), TRAIN_LABELS, &labels(&[7, 0, 9]), gz);
    write(dir.path(), TEST_IMAGES, &images(2), gz);
    write(dir.path(), TEST_LABELS, &labels(&[1, 2]), gz);
    dir
}

/// The file name of `path`, which every message must contain.
fn name_of(path: &Path) -> &str {
    path.file_name().unwrap().to_str().unwrap()
}

/// Asserts the message of `err` contains the file's full path.
fn assert_names(err: &DataError, path: &Path) {
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "message does not name {}: {msg}",
        path.display()
    );
}

fn assert_round_trip(gz: bool) {
    let dir = synthetic(gz);
    let ds = Dataset::load(dir.path(), DatasetKind::Mnist).unwrap();
    assert_eq!(ds.train.labels, [7, 0, 9]);
    assert_eq!(ds.test.labels, [1, 2]);
    assert_eq!(ds.train.images.len(), 3);
    assert_eq!(ds.test.images.len(), 2);
    for (i, image) in ds.train.images.iter().enumerate() {
        assert!(image.iter().all(|&p| p == i as u8), "image {i}");
    }
    assert_eq!(ds.dir, dir.path());
    assert_eq!(ds.kind, DatasetKind::Mnist);
}

#[test]
fn round_trip_raw() {
    assert_round_trip(false);
}

#[test]
fn round_trip_gz() {
    assert_round_trip(true);
}

#[test]
fn gzip_detected_by_magic_bytes_not_name() {
    let dir = TempDir::new().unwrap();
    // Gzipped content under the raw name, raw content under the .gz name.
    let gz_named_raw = dir.path().join(TRAIN_IMAGES);
    std::fs::write(&gz_named_raw, gzip(&images(2))).unwrap();
    let raw_named_gz = dir.path().join(format!("{TRAIN_LABELS}.gz"));
    std::fs::write(&raw_named_gz, labels(&[3, 4])).unwrap();
    assert_eq!(read_idx_images(&gz_named_raw).unwrap().len(), 2);
    assert_eq!(read_idx_labels(&raw_named_gz).unwrap(), [3, 4]);
}

#[test]
fn raw_preferred_when_both_exist() {
    let dir = synthetic(true);
    // A raw training-labels file that differs from the gzipped one.
    write(dir.path(), TRAIN_LABELS, &labels(&[5, 5, 5]), false);
    let ds = Dataset::load(dir.path(), DatasetKind::Mnist).unwrap();
    assert_eq!(ds.train.labels, [5, 5, 5]);
}

#[test]
fn concatenated_gzip_members_are_read_whole() {
    let dir = TempDir::new().unwrap();
    let content = images(2);
    let (a, b) = content.split_at(100);
    let path = dir.path().join("two-members.gz");
    std::fs::write(&path, [gzip(a), gzip(b)].concat()).unwrap();
    assert_eq!(read_idx_images(&path).unwrap().len(), 2);
}

#[test]
fn missing_files_list_the_paths_tried() {
    let dir = synthetic(false);
    std::fs::remove_file(dir.path().join(TRAIN_LABELS)).unwrap();
    std::fs::remove_file(dir.path().join(TEST_IMAGES)).unwrap();
    let err = Dataset::load(dir.path(), DatasetKind::Mnist).err().unwrap();
    let DataError::Missing { missing, tried, .. } = &err else {
        panic!("expected Missing, got {err:?}");
    };
    assert_eq!(missing, &[TRAIN_LABELS, TEST_IMAGES]);
    assert_eq!(tried.len(), 4);
    let msg = err.to_string();
    for name in [TRAIN_LABELS, TEST_IMAGES] {
        assert_names(&err, &dir.path().join(name));
        assert_names(&err, &dir.path().join(format!("{name}.gz")));
    }
    assert!(!msg.contains(&format!("{TRAIN_IMAGES}.gz")), "{msg}");
    assert!(msg.contains("digits data fetch"), "{msg}");
    assert!(msg.contains("--data DIR"), "{msg}");
    assert!(msg.contains("$MNIST_DIR"), "{msg}");
}

#[test]
fn missing_directory_is_said_so() {
    let dir = TempDir::new().unwrap();
    let absent = dir.path().join("nowhere");
    let err = Dataset::load(&absent, DatasetKind::Fashion).err().unwrap();
    assert!(matches!(&err, DataError::Missing { tried, .. } if tried.len() == 8));
    let msg = err.to_string();
    assert!(msg.contains("does not exist"), "{msg}");
    assert!(msg.contains("fashion-mnist"), "{msg}");
    assert!(
        msg.contains("apt-get install dataset-fashion-mnist"),
        "{msg}"
    );
    for name in FILES {
        assert_names(&err, &absent.join(format!("{name}.gz")));
    }
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let err = Dataset::load(&file, DatasetKind::Mnist).err().unwrap();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn count_mismatch_between_images_and_labels() {
    let dir = synthetic(true);
    let labels_path = write(dir.path(), TEST_LABELS, &labels(&[1, 2, 3]), true);
    let err = Dataset::load(dir.path(), DatasetKind::Mnist).err().unwrap();
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                images: 2,
                labels: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_names(&err, &labels_path);
    assert_names(&err, &dir.path().join(format!("{TEST_IMAGES}.gz")));
}

/// A malformed file and what reading it must say.
struct Malformed {
    /// What is wrong, for the failure message.
    what: &'static str,
    /// Which of the four files it stands for (images or labels are read accordingly).
    file: &'static str,
    /// The bytes as stored: raw, or already gzipped when `gz`.
    stored: Vec<u8>,
    /// Stored under the `.gz` name.
    gz: bool,
    /// The error expected.
    expect: fn(&DataError) -> bool,
    /// A phrase the message must hold besides the file's path.
    says: &'static str,
}

/// `bytes` with the count field (bytes 4..8) replaced.
fn with_count(mut bytes: Vec<u8>, count: u32) -> Vec<u8> {
    bytes[4..8].copy_from_slice(&count.to_be_bytes());
    bytes
}

/// `bytes` with the byte at `at` (from the end if negative) flipped by `mask`.
fn flipped(mut bytes: Vec<u8>, at: isize, mask: u8) -> Vec<u8> {
    let i = if at < 0 {
        bytes.len() - at.unsigned_abs()
    } else {
        at as usize
    };
    bytes[i] ^= mask;
    bytes
}

fn malformed_files() -> Vec<Malformed> {
    use DataError as E;
    let cut = |mut b: Vec<u8>, n: usize| {
        b.truncate(n);
        b
    };
    let gz_images = gzip(&images(3));
    vec![
        Malformed {
            what: "a labels file where the images should be",
            file: TRAIN_IMAGES,
            stored: labels(&[1, 2, 3]),
            gz: false,
            expect: |e| {
                matches!(
                    e,
                    E::BadMagic {
                        found: 2049,
                        expected: 2051,
                        ..
                    }
                )
            },
            says: "labels file",
        },
        Malformed {
            what: "32x32 images",
            file: TRAIN_IMAGES,
            stored: gzip(&images_idx(2051, 2, 32, 32)),
            gz: true,
            expect: |e| {
                matches!(
                    e,
                    E::BadDims {
                        rows: 32,
                        cols: 32,
                        ..
                    }
                )
            },
            says: "32",
        },
        Malformed {
            what: "one byte short",
            file: TRAIN_IMAGES,
            stored: cut(images(3), images(3).len() - 1),
            gz: false,
            expect: |e| {
                matches!(
                    e,
                    E::Truncated {
                        expected: 2368,
                        actual: 2367,
                        gzip: false,
                        ..
                    }
                )
            },
            says: "2367",
        },
        Malformed {
            what: "a header cut short",
            file: TRAIN_LABELS,
            stored: vec![0, 0, 8, 1, 0, 0],
            gz: false,
            expect: |e| {
                matches!(
                    e,
                    E::Truncated {
                        expected: 8,
                        actual: 6,
                        ..
                    }
                )
            },
            says: "",
        },
        Malformed {
            what: "an empty file",
            file: TEST_LABELS,
            stored: vec![],
            gz: false,
            expect: |e| matches!(e, E::Truncated { actual: 0, .. }),
            says: "",
        },
        Malformed {
            what: "a byte too many",
            file: TEST_LABELS,
            stored: gzip(&[labels(&[1, 2]), vec![0]].concat()),
            gz: true,
            expect: |e| {
                matches!(
                    e,
                    E::TrailingBytes {
                        expected: 10,
                        actual: 11,
                        gzip: true,
                        ..
                    }
                )
            },
            says: "",
        },
        Malformed {
            what: "gzip cut in half",
            file: TRAIN_IMAGES,
            stored: cut(gz_images.clone(), gz_images.len() / 2),
            gz: true,
            expect: |e| matches!(e, E::TruncatedGzip { .. }),
            says: "",
        },
        Malformed {
            // The data is whole, the file is not.
            what: "gzip cut inside its 8-byte trailer (CRC and size)",
            file: TRAIN_IMAGES,
            stored: cut(gz_images.clone(), gz_images.len() - 3),
            gz: true,
            expect: |e| matches!(e, E::TruncatedGzip { .. }),
            says: "",
        },
        Malformed {
            what: "bits flipped in the deflate data",
            file: TRAIN_IMAGES,
            stored: flipped(gz_images.clone(), (gz_images.len() / 2) as isize, 0xff),
            gz: true,
            expect: |e| matches!(e, E::CorruptGzip { .. }),
            says: "",
        },
        Malformed {
            what: "a bit flipped in the gzip CRC",
            file: TRAIN_IMAGES,
            stored: flipped(gz_images, -8, 0x01),
            gz: true,
            expect: |e| matches!(e, E::CorruptGzip { .. }),
            says: "",
        },
        Malformed {
            what: "a label of 10",
            file: TRAIN_LABELS,
            stored: labels(&[0, 9, 10, 3]),
            gz: false,
            expect: |e| {
                matches!(
                    e,
                    E::BadLabel {
                        index: 2,
                        label: 10,
                        ..
                    }
                )
            },
            says: "",
        },
        Malformed {
            // 3.4 TB: allocating for it would abort the test process.
            what: "u32::MAX images claimed, raw",
            file: TRAIN_IMAGES,
            stored: with_count(images(1), u32::MAX),
            gz: false,
            expect: |e| {
                matches!(
                    e,
                    E::CountTooLarge {
                        count: u32::MAX,
                        ..
                    }
                )
            },
            says: "",
        },
        Malformed {
            what: "u32::MAX images claimed, gzipped",
            file: TRAIN_IMAGES,
            stored: gzip(&with_count(images(1), u32::MAX)),
            gz: true,
            expect: |e| {
                matches!(
                    e,
                    E::CountTooLarge {
                        count: u32::MAX,
                        ..
                    }
                )
            },
            says: "",
        },
        Malformed {
            what: "u32::MAX labels claimed",
            file: TRAIN_LABELS,
            stored: header(&[2049, u32::MAX]),
            gz: false,
            expect: |e| matches!(e, E::CountTooLarge { .. }),
            says: "",
        },
        Malformed {
            // Within the limit, so it is a truncated file.
            what: "60,000 images declared, 1 present",
            file: TRAIN_IMAGES,
            stored: with_count(images(1), 60_000),
            gz: false,
            expect: |e| {
                matches!(
                    e,
                    E::Truncated {
                        expected: 47_040_016,
                        ..
                    }
                )
            },
            says: "",
        },
    ]
}

/// Every malformed file is refused with the expected error, and the message names the file.
#[test]
fn malformed_files_are_refused_and_named() {
    let dir = TempDir::new().unwrap();
    for (k, case) in malformed_files().into_iter().enumerate() {
        // A directory per case: each file stands alone.
        let sub = dir.path().join(k.to_string());
        std::fs::create_dir(&sub).unwrap();
        let name = if case.gz {
            format!("{}.gz", case.file)
        } else {
            case.file.to_string()
        };
        let path = sub.join(name);
        std::fs::write(&path, &case.stored).unwrap();
        let err = if case.file.contains("images") {
            read_idx_images(&path).map(drop).unwrap_err()
        } else {
            read_idx_labels(&path).map(drop).unwrap_err()
        };
        assert!((case.expect)(&err), "{}: got {err:?}", case.what);
        assert_names(&err, &path);
        assert!(err.to_string().contains(case.says), "{}: {err}", case.what);
    }
}

#[test]
fn decompressed_size_is_limited() {
    let dir = TempDir::new().unwrap();
    let path = write(dir.path(), TRAIN_IMAGES, &vec![0u8; 10_000], true);
    let err = read_content_limited(&path, 4096).err().unwrap();
    assert!(
        matches!(
            err,
            DataError::TooLarge {
                limit: 4096,
                gzip: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert_names(&err, &path);
    assert!(read_content_limited(&path, 10_000).is_ok());
    let raw = write(dir.path(), TRAIN_LABELS, &vec![0u8; 10_000], false);
    let err = read_content_limited(&raw, 9_999).err().unwrap();
    assert!(
        matches!(err, DataError::TooLarge { gzip: false, .. }),
        "{err:?}"
    );
}

#[test]
fn gzip_bomb_is_refused() {
    // 101 MiB of zeros compress to about 100 KiB: past the real 100 MiB limit.
    let dir = TempDir::new().unwrap();
    let path = write(dir.path(), TRAIN_IMAGES, &vec![0u8; 101 << 20], true);
    assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20);
    let err = read_idx_images(&path).unwrap_err();
    assert!(matches!(err, DataError::TooLarge { .. }), "{err:?}");
}

#[test]
fn unreadable_path_is_an_io_error() {
    let dir = TempDir::new().unwrap();
    // A directory where the file should be.
    let path = dir.path().join(TRAIN_IMAGES);
    std::fs::create_dir(&path).unwrap();
    let err = read_idx_images(&path).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err:?}");
    assert_names(&err, &path);
}

/// The checks of the four files, every one of which must have been read.
fn checked(dir: &Path, kind: DatasetKind) -> Vec<FileCheck> {
    check(dir, kind)
        .into_iter()
        .map(|r| match r.state {
            FileState::Checked(c) => c,
            other => panic!("{}: {other:?}", r.name),
        })
        .collect()
}

#[test]
fn check_reports_every_file_whatever_became_of_the_others() {
    let dir = synthetic(true);
    // The first file missing, the second damaged: the other two are still checked.
    std::fs::remove_file(dir.path().join(format!("{TRAIN_IMAGES}.gz"))).unwrap();
    let damaged = dir.path().join(format!("{TRAIN_LABELS}.gz"));
    std::fs::write(&damaged, &gzip(&labels(&[7, 0, 9]))[..20]).unwrap();
    let reports = check(dir.path(), DatasetKind::Mnist);
    let names: Vec<&str> = reports.iter().map(|r| r.name).collect();
    assert_eq!(names, FILES);
    match &reports[0].state {
        FileState::Missing(tried) => assert_eq!(
            tried,
            &[
                dir.path().join(TRAIN_IMAGES),
                dir.path().join(format!("{TRAIN_IMAGES}.gz"))
            ]
        ),
        other => panic!("{other:?}"),
    }
    match &reports[1].state {
        FileState::Unreadable(e) => {
            assert!(matches!(e, DataError::TruncatedGzip { .. }), "{e:?}");
            assert_names(e, &damaged);
        }
        other => panic!("{other:?}"),
    }
    for r in &reports[2..] {
        let c = r.checked().unwrap();
        assert!(!c.ok, "synthetic files are not the official ones");
        assert_eq!(c.sha256.len(), 64);
    }
    assert!(reports.iter().all(|r| !r.ok()));
}

#[test]
fn the_test_split_loads_without_the_training_files() {
    let dir = synthetic(false);
    for name in [TRAIN_IMAGES, TRAIN_LABELS] {
        std::fs::remove_file(dir.path().join(name)).unwrap();
    }
    let set = TestSet::load(dir.path(), DatasetKind::Mnist).unwrap();
    assert_eq!(set.test.labels, [1, 2]);
    assert_eq!(set.test.images.len(), 2);
    // The whole dataset does need them, and says which are missing.
    let err = Dataset::load(dir.path(), DatasetKind::Mnist).err().unwrap();
    match err {
        DataError::Missing { missing, .. } => assert_eq!(missing, [TRAIN_IMAGES, TRAIN_LABELS]),
        other => panic!("{other:?}"),
    }
    // And the test split needs its own files.
    std::fs::remove_file(dir.path().join(TEST_LABELS)).unwrap();
    match TestSet::load(dir.path(), DatasetKind::Mnist).err().unwrap() {
        DataError::Missing { missing, .. } => assert_eq!(missing, [TEST_LABELS]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn check_reports_mismatch_with_the_actual_hash() {
    let dir = synthetic(true);
    let checks = checked(dir.path(), DatasetKind::Mnist);
    assert_eq!(checks.len(), 4);
    assert!(checks.iter().all(|c| !c.ok));
    // SHA-256 of the decompressed content, not of the .gz file.
    let sha = super::checksum::sha256_hex(&labels(&[7, 0, 9]));
    assert_eq!(checks[1].sha256, sha);
    assert_eq!(name_of(&checks[1].file), format!("{TRAIN_LABELS}.gz"));
}

#[test]
fn real_mnist_loads_and_verifies() {
    let Some(dir) = testkit::full_mnist("data::tests::real_mnist_loads_and_verifies") else {
        return;
    };
    let start = Instant::now();
    let ds = Dataset::load(&dir, DatasetKind::Mnist).unwrap();
    eprintln!("loaded MNIST in {:.3} s", start.elapsed().as_secs_f64());
    assert_eq!(
        (ds.train.images.len(), ds.train.labels.len()),
        (60_000, 60_000)
    );
    assert_eq!(
        (ds.test.images.len(), ds.test.labels.len()),
        (10_000, 10_000)
    );
    // Every digit occurs, and the well-known first training label is a 5.
    assert_eq!(ds.train.labels[0], 5);
    assert!((0..10).all(|d| ds.test.labels.contains(&d)));
    for c in checked(&dir, DatasetKind::Mnist) {
        assert!(c.ok, "{} has SHA-256 {}", c.file.display(), c.sha256);
    }
}

#[test]
fn raw_and_gz_verify_alike() {
    // The test split decompressed next to the gzipped training split.
    let Some(src) = testkit::full_mnist("data::tests::raw_and_gz_verify_alike") else {
        return;
    };
    let dir = TempDir::new().unwrap();
    for name in FILES {
        let gz = src.join(format!("{name}.gz"));
        if name.starts_with("t10k") {
            let content = read_content_limited(&gz, u64::MAX).unwrap();
            write(dir.path(), name, &content.bytes, false);
        } else {
            std::fs::copy(&gz, dir.path().join(format!("{name}.gz"))).unwrap();
        }
    }
    let checks = checked(dir.path(), DatasetKind::Mnist);
    assert_eq!(name_of(&checks[2].file), TEST_IMAGES);
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    // The Fashion-MNIST checksums must not accept MNIST.
    assert!(
        checked(dir.path(), DatasetKind::Fashion)
            .iter()
            .all(|c| !c.ok)
    );
}

#[test]
fn fashion_mnist_from_debian_package() {
    let dir = resolve_dir(None, DatasetKind::Fashion).path;
    let why = format!(
        "{} absent (apt-get install dataset-fashion-mnist; scripts/test.sh does)",
        dir.display()
    );
    if !testkit::needs(
        dir.is_dir(),
        "data::tests::fashion_mnist_from_debian_package",
        &why,
    ) {
        return;
    }
    let ds = Dataset::load(&dir, DatasetKind::Fashion).unwrap();
    assert_eq!(
        (ds.train.labels.len(), ds.test.labels.len()),
        (60_000, 10_000)
    );
    for c in checked(&dir, DatasetKind::Fashion) {
        assert!(c.ok, "{} has SHA-256 {}", c.file.display(), c.sha256);
    }
}

#[test]
fn the_committed_slice_loads_as_the_independent_reader_reads_it() {
    let ds = Dataset::load(&testkit::slice_dir(), DatasetKind::Mnist).unwrap();
    let slice = testkit::slice();
    assert_eq!(ds.train.labels, slice.train.labels);
    assert_eq!(ds.test.labels, slice.test.labels);
    assert_eq!(ds.train.images, slice.train.images);
    assert_eq!(ds.test.images, slice.test.images);
    // Real MNIST: the well-known first training label is a 5, and every digit occurs.
    assert_eq!(ds.train.labels[0], 5);
    assert!((0..10).all(|d| ds.test.labels.contains(&d)));
}
