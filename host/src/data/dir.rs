//! Where a dataset's files are: `--data DIR`, else (MNIST) `$MNIST_DIR`, else the default
//! place.
//!
//! The default place is per user: `$XDG_DATA_HOME/digits/mnist` (`.../fashion-mnist` for
//! Fashion-MNIST), else `~/.local/share/digits/mnist`. A command that finds nothing there
//! downloads the files there, so an installed `digits` works from any directory and one
//! download serves every clone and every working directory. A place that already holds all
//! four files from before is read instead: `data/mnist/` of the working directory (where
//! `digits data fetch` used to put MNIST) and, for Fashion-MNIST, Debian's package directory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::mnist::{DatasetKind, holds_all};

/// The environment variable naming the MNIST directory.
const MNIST_DIR_VAR: &str = "MNIST_DIR";
/// Where MNIST was looked for by default before the per-user place, relative to the working
/// directory; still read when it holds the files.
const MNIST_WORKING_DIR: &str = "data/mnist";
/// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
const FASHION_DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// A data directory and how it was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir {
    /// The directory.
    pub path: PathBuf,
    /// How it was chosen, for messages: "--data", "$MNIST_DIR" or which default.
    pub source: String,
}

/// What of the environment decides the directory, read once so that tests can pass their own.
#[derive(Default)]
struct Env {
    /// `$MNIST_DIR`.
    mnist_dir: Option<OsString>,
    /// `$XDG_DATA_HOME`.
    xdg_data_home: Option<OsString>,
    /// `$HOME`.
    home: Option<OsString>,
}

impl Env {
    fn of_process() -> Self {
        Env {
            mnist_dir: std::env::var_os(MNIST_DIR_VAR),
            xdg_data_home: std::env::var_os("XDG_DATA_HOME"),
            home: std::env::var_os("HOME"),
        }
    }
}

/// Chooses the data directory of `kind` (see the module documentation). An empty variable
/// counts as unset.
pub fn resolve_dir(explicit: Option<&Path>, kind: DatasetKind) -> DataDir {
    resolve_dir_from(explicit, kind, &Env::of_process(), holds_all)
}

/// [`resolve_dir`] with the environment and the file system's answer passed in, so it can be
/// tested without touching either.
fn resolve_dir_from(
    explicit: Option<&Path>,
    kind: DatasetKind,
    env: &Env,
    holds_files: impl Fn(&Path) -> bool,
) -> DataDir {
    let dir = |path: PathBuf, source: &str| DataDir {
        path,
        source: source.to_string(),
    };
    if let Some(path) = explicit {
        return dir(path.to_path_buf(), "--data");
    }
    let (earlier, earlier_source) = match kind {
        DatasetKind::Mnist => {
            if let Some(path) = set(&env.mnist_dir) {
                return dir(path.into(), "$MNIST_DIR");
            }
            (
                MNIST_WORKING_DIR,
                "data/mnist/ of the working directory, which holds the files; no --data and \
                 $MNIST_DIR unset",
            )
        }
        DatasetKind::Fashion => (
            FASHION_DEBIAN_DIR,
            "Debian's package dataset-fashion-mnist; no --data",
        ),
    };
    if holds_files(Path::new(earlier)) {
        return dir(earlier.into(), earlier_source);
    }
    match user_data_dir(env) {
        Some(data) => dir(
            data.join("digits").join(kind.to_string()),
            match kind {
                DatasetKind::Mnist => "default, per user; no --data and $MNIST_DIR unset",
                DatasetKind::Fashion => "default, per user; no --data",
            },
        ),
        // No home to put a per-user place in: the working directory is all there is.
        None => dir(
            match kind {
                DatasetKind::Mnist => MNIST_WORKING_DIR.into(),
                DatasetKind::Fashion => Path::new("data").join(kind.to_string()),
            },
            "default; $HOME and $XDG_DATA_HOME unset, so under the working directory",
        ),
    }
}

/// The user's data directory as the XDG base directory specification has it:
/// `$XDG_DATA_HOME` if it is an absolute path, else `$HOME/.local/share`.
fn user_data_dir(env: &Env) -> Option<PathBuf> {
    set(&env.xdg_data_home)
        .map(PathBuf::from)
        // The specification says to ignore a relative path.
        .filter(|p| p.is_absolute())
        .or_else(|| set(&env.home).map(|home| Path::new(home).join(".local/share")))
}

/// The value of a variable that is set and not empty.
fn set(var: &Option<OsString>) -> Option<&OsString> {
    var.as_ref().filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(mnist_dir: Option<&str>, xdg: Option<&str>, home: Option<&str>) -> Env {
        Env {
            mnist_dir: mnist_dir.map(OsString::from),
            xdg_data_home: xdg.map(OsString::from),
            home: home.map(OsString::from),
        }
    }

    fn resolve(kind: DatasetKind, env: &Env) -> DataDir {
        resolve_dir_from(None, kind, env, |_| false)
    }

    #[test]
    fn explicit_dir_wins() {
        let e = env(Some("/env"), Some("/xdg"), Some("/home/u"));
        for kind in [DatasetKind::Mnist, DatasetKind::Fashion] {
            let d = resolve_dir_from(Some(Path::new("/x")), kind, &e, |_| true);
            assert_eq!(
                (d.path.as_path(), d.source.as_str()),
                (Path::new("/x"), "--data")
            );
        }
    }

    #[test]
    fn mnist_dir_then_the_per_user_place() {
        let d = resolve(
            DatasetKind::Mnist,
            &env(Some("/env"), None, Some("/home/u")),
        );
        assert_eq!(
            (d.path.as_path(), d.source.as_str()),
            (Path::new("/env"), "$MNIST_DIR")
        );
        let d = resolve(DatasetKind::Mnist, &env(Some(""), None, Some("/home/u")));
        assert_eq!(d.path, Path::new("/home/u/.local/share/digits/mnist"));
        assert!(d.source.starts_with("default, per user"), "{}", d.source);
        let d = resolve(
            DatasetKind::Mnist,
            &env(None, Some("/xdg"), Some("/home/u")),
        );
        assert_eq!(d.path, Path::new("/xdg/digits/mnist"));
    }

    #[test]
    fn a_relative_or_empty_xdg_data_home_is_ignored() {
        for xdg in ["relative/dir", ""] {
            let d = resolve(DatasetKind::Mnist, &env(None, Some(xdg), Some("/home/u")));
            assert_eq!(
                d.path,
                Path::new("/home/u/.local/share/digits/mnist"),
                "{xdg}"
            );
        }
    }

    #[test]
    fn without_a_home_the_working_directory() {
        let d = resolve(DatasetKind::Mnist, &env(None, None, None));
        assert_eq!(d.path, Path::new("data/mnist"));
        assert!(d.source.contains("$HOME"), "{}", d.source);
        let d = resolve(DatasetKind::Fashion, &env(None, None, Some("")));
        assert_eq!(d.path, Path::new("data/fashion-mnist"));
    }

    #[test]
    fn an_earlier_place_that_holds_the_files_is_read() {
        let e = env(None, Some("/xdg"), Some("/home/u"));
        let d = resolve_dir_from(None, DatasetKind::Mnist, &e, |p| {
            p == Path::new("data/mnist")
        });
        assert_eq!(d.path, Path::new("data/mnist"));
        assert!(d.source.contains("working directory"), "{}", d.source);
        let debian = |p: &Path| p == Path::new(FASHION_DEBIAN_DIR);
        let d = resolve_dir_from(None, DatasetKind::Fashion, &e, debian);
        assert_eq!(d.path, Path::new(FASHION_DEBIAN_DIR));
        assert!(d.source.contains("dataset-fashion-mnist"), "{}", d.source);
        // An explicit choice or $MNIST_DIR is never overridden by what happens to be there.
        let e = env(Some("/env"), None, Some("/home/u"));
        let d = resolve_dir_from(None, DatasetKind::Mnist, &e, |_| true);
        assert_eq!(d.path, Path::new("/env"));
    }

    #[test]
    fn fashion_ignores_mnist_dir() {
        let d = resolve(
            DatasetKind::Fashion,
            &env(Some("/env"), None, Some("/home/u")),
        );
        assert_eq!(
            d.path,
            Path::new("/home/u/.local/share/digits/fashion-mnist")
        );
    }
}
