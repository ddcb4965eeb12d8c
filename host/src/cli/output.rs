//! Files and directories a command will write, checked before it starts: not a directory where
//! a file goes, a parent directory that exists (none is created behind the user's back), and
//! one the user may write in (a temporary file is created there and removed). The output
//! files are written atomically later ([`crate::model_io::write_atomically`]), by a rename in
//! that same directory: that it can be written in is what must hold.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use clap::builder::TypedValueParser;

/// An output a command will write, judged before it starts by its check: `#[arg(value_parser
/// = Output::FILE)]` for a file, [`Output::DIR`] for a directory written into.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    /// Why a path cannot be this output, if it cannot.
    check: fn(&Path) -> Result<(), String>,
}

impl Output {
    /// A file ([`check_file`]).
    pub const FILE: Output = Output { check: check_file };
    /// A directory: it exists, or its parent does (then the command creates it, that one level
    /// only: [`create_dir`]); see [`check_dir`].
    pub const DIR: Output = Output { check: check_dir };
}

impl TypedValueParser for Output {
    type Value = PathBuf;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<PathBuf, clap::Error> {
        let path = PathBuf::from(value);
        (self.check)(&path).map_err(|why| super::invalid(cmd, arg, value, why))?;
        Ok(path)
    }
}

/// Checks an output file that no option names directly (one derived from another): the error
/// names `option` and the path, as the command-line check would.
pub fn require_file(option: &str, path: &Path) -> anyhow::Result<()> {
    check_file(path).map_err(|why| anyhow::anyhow!("{option} {}: {why}", path.display()))
}

/// Creates the directory that an [`Output::DIR`] option (`option`) names, if it is not there:
/// that one level only, its parent having been checked.
pub fn create_dir(option: &str, path: &Path) -> anyhow::Result<()> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => anyhow::bail!(
            "{option} {}: cannot create the directory: {}",
            path.display(),
            cause(&e)
        ),
    }
}

/// Why `path` cannot become a file written atomically, if it cannot.
pub fn check_file(path: &Path) -> Result<(), String> {
    let text = path.as_os_str().to_string_lossy();
    if text.is_empty() {
        return Err("an empty path; name a file".into());
    }
    if text.ends_with(std::path::MAIN_SEPARATOR) || path.is_dir() {
        return Err("is a directory; name a file (in it, or elsewhere)".into());
    }
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
    {
        return Err("exists and is not a regular file".into());
    }
    writable_dir(parent(path))
}

/// Why `path` cannot become a directory written into, if it cannot.
pub fn check_dir(path: &Path) -> Result<(), String> {
    if path.as_os_str().is_empty() {
        return Err("an empty path; name a directory".into());
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => writable_dir(path),
        Ok(_) => Err("exists and is not a directory".into()),
        Err(_) => writable_dir(parent(path)),
    }
}

/// The directory a relative or absolute path's last component is in.
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Why no file can be created in `dir`, if none can.
fn writable_dir(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(format!(
                "the directory {} does not exist; create it first",
                dir.display()
            ));
        }
        Err(e) => return Err(format!("cannot reach {}: {}", dir.display(), cause(&e))),
        Ok(meta) if !meta.is_dir() => {
            return Err(format!("{} is not a directory", dir.display()));
        }
        Ok(_) => {}
    }
    // Removed again when dropped.
    tempfile::Builder::new()
        .prefix(".digits-check-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| format!("cannot create files in {}: {}", dir.display(), cause(&e)))
}

/// An I/O error's cause in plain words, without the OS's error number.
fn cause(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => e.kind().to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every check on a scratch directory, and nothing left in it afterwards.
    #[test]
    fn outputs_are_judged_without_leaving_anything() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(check_file(&d.join("m.digits")), Ok(()));
        assert!(check_file(d).unwrap_err().contains("is a directory"));
        let slash = PathBuf::from(format!("{}/new/", d.display()));
        assert!(check_file(&slash).unwrap_err().contains("is a directory"));
        let missing = check_file(&d.join("no/such/m.digits")).unwrap_err();
        assert!(
            missing.contains(&format!("{} does not exist", d.join("no/such").display())),
            "{missing}"
        );
        std::fs::write(d.join("file"), b"x").unwrap();
        let under_file = check_file(&d.join("file/m.digits")).unwrap_err();
        assert!(under_file.contains("is not a directory"), "{under_file}");
        assert_eq!(check_dir(&d.join("plots")), Ok(()));
        assert_eq!(check_dir(d), Ok(()));
        assert!(
            check_dir(&d.join("file"))
                .unwrap_err()
                .contains("not a directory")
        );
        assert!(
            check_dir(&d.join("a/b"))
                .unwrap_err()
                .contains("does not exist")
        );
        // Only the file this test wrote: no check file, no directory left behind.
        let left: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap()).collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    /// `/sys` refuses new files even to root.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_directory_that_refuses_new_files_is_refused() {
        let err = check_file(Path::new("/sys/m.jsonl")).unwrap_err();
        assert_eq!(err, "cannot create files in /sys: permission denied");
    }
}
