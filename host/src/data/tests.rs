//! Tests of the data layer: synthetic IDX files in temporary directories, one test per failure
//! class, and the real MNIST from the shared data directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use flate2::Compression;
use flate2::write::GzEncoder;
use tempfile::TempDir;

use super::mnist::{FILES, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use super::source::read_content_limited;
use super::*;

/// The real MNIST, beside the workspace: `shared/data/mnist` next to the repository.
fn real_mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist")
}

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
fn wrong_magic() {
    let dir = synthetic(false);
    // A labels file where the images should be.
    let path = write(dir.path(), TRAIN_IMAGES, &labels(&[1, 2, 3]), false);
    let err = Dataset::load(dir.path(), DatasetKind::Mnist).err().unwrap();
    assert!(
        matches!(
            err,
            DataError::BadMagic {
                found: 2049,
                expected: 2051,
                ..
            }
        ),
        "{err:?}"
    );
    assert_names(&err, &path);
    assert!(err.to_string().contains("labels file"), "{err}");
}

#[test]
fn wrong_dims() {
    let dir = TempDir::new().unwrap();
    let path = write(dir.path(), TRAIN_IMAGES, &images_idx(2051, 2, 32, 32), true);
    let err = read_idx_images(&path).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadDims {
                rows: 32,
                cols: 32,
                ..
            }
        ),
        "{err:?}"
    );
    assert_names(&err, &path);
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

#[test]
fn truncated_raw() {
    let dir = TempDir::new().unwrap();
    let mut bytes = images(3);
    bytes.truncate(bytes.len() - 1);
    let path = write(dir.path(), TRAIN_IMAGES, &bytes, false);
    let err = read_idx_images(&path).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Truncated {
                expected: 2368,
                actual: 2367,
                gzip: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert_names(&err, &path);
}

#[test]
fn truncated_header() {
    let dir = TempDir::new().unwrap();
    let path = write(dir.path(), TRAIN_LABELS, &[0, 0, 8, 1, 0, 0], false);
    let err = read_idx_labels(&path).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Truncated {
                expected: 8,
                actual: 6,
                ..
            }
        ),
        "{err:?}"
    );
    assert_names(&err, &path);
    let empty = write(dir.path(), TEST_LABELS, &[], false);
    let err = read_idx_labels(&empty).unwrap_err();
    assert!(
        matches!(err, DataError::Truncated { actual: 0, .. }),
        "{err:?}"
    );
}

#[test]
fn trailing_bytes() {
    let dir = TempDir::new().unwrap();
    let mut bytes = labels(&[1, 2]);
    bytes.push(0);
    let path = write(dir.path(), TEST_LABELS, &bytes, true);
    let err = read_idx_labels(&path).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::TrailingBytes {
                expected: 10,
                actual: 11,
                gzip: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert_names(&err, &path);
}

#[test]
fn truncated_gzip() {
    let dir = TempDir::new().unwrap();
    let gz = gzip(&images(3));
    let path = dir.path().join(format!("{TRAIN_IMAGES}.gz"));
    std::fs::write(&path, &gz[..gz.len() / 2]).unwrap();
    let err = read_idx_images(&path).unwrap_err();
    assert!(matches!(err, DataError::TruncatedGzip { .. }), "{err:?}");
    assert_names(&err, &path);
    // Cut inside the 8-byte trailer (CRC and size): the data is whole, the file is not.
    std::fs::write(&path, &gz[..gz.len() - 3]).unwrap();
    let err = read_idx_images(&path).unwrap_err();
    assert!(matches!(err, DataError::TruncatedGzip { .. }), "{err:?}");
}

#[test]
fn corrupt_gzip() {
    let dir = TempDir::new().unwrap();
    let mut gz = gzip(&images(3));
    // Flip bits in the middle of the deflate data and, separately, in the CRC.
    let mid = gz.len() / 2;
    gz[mid] ^= 0xff;
    let path = dir.path().join(format!("{TRAIN_IMAGES}.gz"));
    std::fs::write(&path, &gz).unwrap();
    let err = read_idx_images(&path).unwrap_err();
    assert!(matches!(err, DataError::CorruptGzip { .. }), "{err:?}");
    assert_names(&err, &path);

    let mut gz = gzip(&images(3));
    let crc = gz.len() - 8;
    gz[crc] ^= 0x01;
    std::fs::write(&path, &gz).unwrap();
    let err = read_idx_images(&path).unwrap_err();
    assert!(matches!(err, DataError::CorruptGzip { .. }), "{err:?}");
}

#[test]
fn label_out_of_range() {
    let dir = TempDir::new().unwrap();
    let path = write(dir.path(), TRAIN_LABELS, &labels(&[0, 9, 10, 3]), false);
    let err = read_idx_labels(&path).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadLabel {
                index: 2,
                label: 10,
                ..
            }
        ),
        "{err:?}"
    );
    assert_names(&err, &path);
}

#[test]
fn absurd_count_is_refused_before_allocating() {
    // Claims u32::MAX images (3.4 TB): allocating for it would abort the test process.
    let dir = TempDir::new().unwrap();
    let mut bytes = images(1);
    bytes[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    for gz in [false, true] {
        let path = write(dir.path(), TRAIN_IMAGES, &bytes, gz);
        let err = read_idx_images(&path).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::CountTooLarge {
                    count: u32::MAX,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_names(&err, &path);
    }
    let labels_path = write(dir.path(), TRAIN_LABELS, &header(&[2049, u32::MAX]), false);
    let err = read_idx_labels(&labels_path).unwrap_err();
    assert!(matches!(err, DataError::CountTooLarge { .. }), "{err:?}");
}

#[test]
fn plausible_count_in_a_short_file_is_truncation() {
    // 60,000 images declared, 1 present: within the limit, so it is a truncated file.
    let dir = TempDir::new().unwrap();
    let mut bytes = images(1);
    bytes[4..8].copy_from_slice(&60_000u32.to_be_bytes());
    let path = write(dir.path(), TRAIN_IMAGES, &bytes, false);
    let err = read_idx_images(&path).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Truncated {
                expected: 47_040_016,
                ..
            }
        ),
        "{err:?}"
    );
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

#[test]
fn check_reports_mismatch_with_the_actual_hash() {
    let dir = synthetic(true);
    let checks = check(dir.path(), DatasetKind::Mnist).unwrap();
    assert_eq!(checks.len(), 4);
    assert!(checks.iter().all(|c| !c.ok));
    // SHA-256 of the decompressed content, not of the .gz file.
    let sha = super::checksum::sha256_hex(&labels(&[7, 0, 9]));
    assert_eq!(checks[1].sha256, sha);
    assert_eq!(name_of(&checks[1].file), format!("{TRAIN_LABELS}.gz"));
}

#[test]
fn real_mnist_loads_and_verifies() {
    let dir = real_mnist_dir();
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
    for c in check(&dir, DatasetKind::Mnist).unwrap() {
        assert!(c.ok, "{} has SHA-256 {}", c.file.display(), c.sha256);
    }
}

#[test]
fn raw_and_gz_verify_alike() {
    // The test split decompressed next to the gzipped training split.
    let src = real_mnist_dir();
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
    let checks = check(dir.path(), DatasetKind::Mnist).unwrap();
    assert_eq!(name_of(&checks[2].file), TEST_IMAGES);
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    // The Fashion-MNIST checksums must not accept MNIST.
    assert!(
        check(dir.path(), DatasetKind::Fashion)
            .unwrap()
            .iter()
            .all(|c| !c.ok)
    );
}

#[test]
fn fashion_mnist_from_debian_package() {
    let dir = resolve_dir(None, DatasetKind::Fashion).path;
    if !dir.is_dir() {
        // CI installs the package (scripts/test.sh): there, a missing dataset is a failure.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} absent under CI=true: apt-get install dataset-fashion-mnist",
            dir.display()
        );
        eprintln!(
            "skipped: {} absent (apt-get install dataset-fashion-mnist)",
            dir.display()
        );
        return;
    }
    let ds = Dataset::load(&dir, DatasetKind::Fashion).unwrap();
    assert_eq!(
        (ds.train.labels.len(), ds.test.labels.len()),
        (60_000, 10_000)
    );
    for c in check(&dir, DatasetKind::Fashion).unwrap() {
        assert!(c.ok, "{} has SHA-256 {}", c.file.display(), c.sha256);
    }
}
