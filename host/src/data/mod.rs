//! Temporary minimal MNIST loader (to be replaced by the validated loader).
use std::path::{Path, PathBuf};

/// Images and labels.
pub struct Split {
    /// 28x28 images.
    pub images: Vec<[u8; 784]>,
    /// Labels 0-9.
    pub labels: Vec<u8>,
}
/// Train and test splits.
pub struct Dataset {
    /// Training split.
    pub train: Split,
    /// Test split.
    pub test: Split,
    /// Where it was read from.
    #[allow(dead_code)]
    pub dir: PathBuf,
    /// Which dataset.
    pub kind: DatasetKind,
}
/// Which dataset.
#[derive(Clone, Copy)]
pub enum DatasetKind {
    /// MNIST.
    Mnist,
    /// Fashion-MNIST.
    Fashion,
}
impl std::fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::Fashion => "fashion-mnist",
        })
    }
}
/// A resolved directory.
pub struct DataDir {
    /// Path.
    pub path: PathBuf,
    /// How it was chosen.
    pub source: String,
}
/// Resolves the data directory.
pub fn resolve_dir(explicit: Option<&Path>, _kind: DatasetKind) -> DataDir {
    match explicit {
        Some(p) => DataDir {
            path: p.to_path_buf(),
            source: "--data".into(),
        },
        None => match std::env::var_os("MNIST_DIR") {
            Some(p) => DataDir {
                path: p.into(),
                source: "$MNIST_DIR".into(),
            },
            None => DataDir {
                path: "data/mnist".into(),
                source: "default".into(),
            },
        },
    }
}
impl Dataset {
    /// Loads the four files.
    pub fn load(dir: &Path, kind: DatasetKind) -> anyhow::Result<Dataset> {
        use std::io::Read;
        let read = |name: &str| -> anyhow::Result<Vec<u8>> {
            let mut v = Vec::new();
            flate2::read::GzDecoder::new(std::fs::File::open(dir.join(name))?)
                .read_to_end(&mut v)?;
            Ok(v)
        };
        let split = |i: &str, l: &str| -> anyhow::Result<Split> {
            let im = read(i)?;
            let lb = read(l)?;
            Ok(Split {
                images: im[16..]
                    .chunks_exact(784)
                    .map(|c| c.try_into().unwrap())
                    .collect(),
                labels: lb[8..].to_vec(),
            })
        };
        Ok(Dataset {
            train: split("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")?,
            test: split("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")?,
            dir: dir.to_path_buf(),
            kind,
        })
    }
}
