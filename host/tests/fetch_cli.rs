//! `digits data fetch` end to end against HTTP servers started here on 127.0.0.1: a good one
//! serving the real MNIST files, and broken ones (a flipped byte, a wrong file, a connection
//! cut halfway, a 404, a stall, an absurd size). Whatever the server does, the data directory
//! must end up holding only complete, verified files: no temporary or partial file, and the
//! files that were already there and valid untouched.

mod common;

use common::{full_mnist, output_ok, run_err, text};

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// The four files, gzipped, as a mirror has them.
const FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// Whether the real gzipped files are here, for a test that serves them (the official
/// checksums are of the real files); else a SKIPPED line, or a failure under `CI=true`.
fn have_originals(what: &str) -> bool {
    full_mnist(what).is_some_and(|dir| {
        testkit::needs(
            FILES.iter().all(|f| dir.join(f).is_file()),
            what,
            &format!(
                "{} holds the raw files, not the gzipped ones",
                dir.display()
            ),
        )
    })
}

/// The real gzipped files, read once for all the tests of this binary.
fn original(file: &str) -> &'static [u8] {
    static FILES_READ: OnceLock<HashMap<&'static str, Vec<u8>>> = OnceLock::new();
    &FILES_READ.get_or_init(|| {
        FILES
            .iter()
            .map(|&f| {
                let path = testkit::find_mnist()
                    .expect("checked by have_originals")
                    .join(f);
                let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                (f, bytes)
            })
            .collect()
    })[file]
}

/// What a test server sends for one request.
#[derive(Clone)]
enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// 404.
    NotFound,
    /// 200 announcing `body.len()` bytes (if `announce`), then only the first half of them,
    /// then the connection is closed.
    Cut { body: Vec<u8>, announce: bool },
    /// 200 announcing `body.len()` bytes, then half of them, then nothing for five seconds.
    Stall(Vec<u8>),
    /// 200 announcing this many bytes, then the connection is closed.
    Announce(u64),
}

/// A test server: its base URL and how many requests it has answered.
struct Server {
    url: String,
    requests: Arc<AtomicUsize>,
}

impl Server {
    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Starts an HTTP/1.1 server on 127.0.0.1 (a free port) that answers `GET /mnist/FILE` with
/// `reply(FILE)`, one thread per connection, and closes each connection after one answer.
/// It lives as long as the test process.
fn serve(reply: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let url = format!("http://{}/mnist/", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&requests);
    let reply = Arc::new(reply);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let reply = Arc::clone(&reply);
            let count = Arc::clone(&count);
            std::thread::spawn(move || answer(stream, &*reply, &count));
        }
    });
    Server { url, requests }
}

/// Reads one request from `stream` and sends what `reply` says. Write errors are ignored: the
/// client may hang up first, which is its right.
fn answer(mut stream: TcpStream, reply: &dyn Fn(&str) -> Reply, count: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // The headers, up to the empty line.
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    count.fetch_add(1, Ordering::SeqCst);
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let file = path.strip_prefix("/mnist/").unwrap_or(path);
    let head = |len: Option<u64>| {
        let length = len.map_or(String::new(), |n| format!("Content-Length: {n}\r\n"));
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n{length}Connection: close\r\n\r\n"
        )
    };
    let _ = match reply(file) {
        Reply::Body(body) => stream
            .write_all(head(Some(body.len() as u64)).as_bytes())
            .and_then(|_| stream.write_all(&body)),
        Reply::NotFound => stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
        ),
        Reply::Cut { body, announce } => stream
            .write_all(head(announce.then_some(body.len() as u64)).as_bytes())
            .and_then(|_| stream.write_all(&body[..body.len() / 2])),
        Reply::Stall(body) => {
            let sent = stream
                .write_all(head(Some(body.len() as u64)).as_bytes())
                .and_then(|_| stream.write_all(&body[..body.len() / 2]))
                .and_then(|_| stream.flush());
            std::thread::sleep(Duration::from_secs(5));
            sent
        }
        Reply::Announce(n) => stream.write_all(head(Some(n)).as_bytes()),
    };
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// A server that has all four files.
fn good_server() -> Server {
    serve(|file| match FILES.contains(&file) {
        true => Reply::Body(original(file).to_vec()),
        false => Reply::NotFound,
    })
}

/// A server that has all four files but answers for `bad` with `reply`.
fn server_with(bad: &'static str, reply: Reply) -> Server {
    serve(move |file| {
        if file == bad {
            reply.clone()
        } else if FILES.contains(&file) {
            Reply::Body(original(file).to_vec())
        } else {
            Reply::NotFound
        }
    })
}

/// A URL on 127.0.0.1 where nothing listens: the port was free a moment ago.
fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mnist/", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// `digits data fetch --data DIR --mirror URL...` with more arguments, and no proxy from the
/// environment in the way of 127.0.0.1.
fn fetch(dir: &Path, mirrors: &[&str], more: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_digits"));
    c.args(["data", "fetch", "--data"]).arg(dir);
    for m in mirrors {
        c.args(["--mirror", m]);
    }
    c.args(more);
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        c.env_remove(var);
    }
    c
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

/// `names`, sorted, as owned strings.
fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// A fresh directory holding copies of the real `files`.
fn dir_with(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        fs::write(dir.path().join(f), original(f)).unwrap();
    }
    dir
}

fn mtime(path: &Path) -> SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

/// `original(file)` with one byte in the middle of the compressed data flipped.
fn flipped(file: &str) -> Vec<u8> {
    let mut bytes = original(file).to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    bytes
}

/// CRC-32 (IEEE), as gzip's trailer has it; bitwise, which is fast enough for 10 kB.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A valid gzip file of `content` (at most 65,535 bytes), in one stored deflate block.
fn gzip_stored(content: &[u8]) -> Vec<u8> {
    let len = u16::try_from(content.len()).expect("fits one stored block");
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    gz.push(1); // final block, stored
    gz.extend(len.to_le_bytes());
    gz.extend((!len).to_le_bytes());
    gz.extend(content);
    gz.extend(crc32(content).to_le_bytes());
    gz.extend((content.len() as u32).to_le_bytes());
    gz
}

/// A well-formed IDX label file of 10,000 test labels, all 0: right in form, wrong in content.
fn wrong_labels() -> Vec<u8> {
    let mut idx = vec![0, 0, 8, 1];
    idx.extend(10_000u32.to_be_bytes());
    idx.resize(8 + 10_000, 0);
    idx
}

#[test]
fn fetches_into_an_empty_dir_then_check_passes_and_nothing_is_fetched_again() {
    if !have_originals(
        "fetch_cli::fetches_into_an_empty_dir_then_check_passes_and_nothing_is_fetched_again",
    ) {
        return;
    }
    let server = good_server();
    let tmp = tempfile::tempdir().unwrap();
    // A directory that does not exist yet: fetch creates it.
    let dir = tmp.path().join("data").join("mnist");
    let out = output_ok(&mut fetch(&dir, &[&server.url], &[]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(server.requests(), 4, "{}", text(&out));
    assert_eq!(stdout.matches("  fetched  ").count(), 4, "{stdout}");
    assert!(stdout.contains("(4 downloaded)"), "{stdout}");
    assert_eq!(listing(&dir), sorted(&FILES));
    for f in FILES {
        assert!(fs::read(dir.join(f)).unwrap() == original(f), "{f} differs");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644, "{f}: mode {mode:o}");
        }
    }

    let mut check = Command::new(env!("CARGO_BIN_EXE_digits"));
    check.args(["data", "check", "--data"]).arg(&dir);
    let out = output_ok(&mut check);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("all 4 files match"),
        "{}",
        text(&out)
    );

    // Everything is there and valid: nothing is downloaded, nothing rewritten.
    let before: Vec<SystemTime> = FILES.iter().map(|f| mtime(&dir.join(f))).collect();
    let out = output_ok(&mut fetch(&dir, &[&server.url], &[]));
    assert_eq!(server.requests(), 4, "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("(already there)").count(), 4, "{stdout}");
    assert!(stdout.contains("(0 downloaded)"), "{stdout}");
    let after: Vec<SystemTime> = FILES.iter().map(|f| mtime(&dir.join(f))).collect();
    assert_eq!(before, after);

    // --force downloads them all again, and the result is the same.
    output_ok(&mut fetch(&dir, &[&server.url], &["--force"]));
    assert_eq!(server.requests(), 8);
    assert_eq!(listing(&dir), sorted(&FILES));
    output_ok(&mut check);
}

#[test]
fn a_corrupted_download_is_refused_and_leaves_nothing_behind() {
    if !have_originals("fetch_cli::a_corrupted_download_is_refused_and_leaves_nothing_behind") {
        return;
    }
    let bad = "train-labels-idx1-ubyte.gz";
    let server = server_with(bad, Reply::Body(flipped(bad)));
    // Already there: one valid file, and a damaged copy of the file the server corrupts.
    let dir = dir_with(&["t10k-labels-idx1-ubyte.gz"]);
    let valid = dir.path().join("t10k-labels-idx1-ubyte.gz");
    let damaged = dir.path().join(bad);
    fs::write(&damaged, &original(bad)[..1000]).unwrap();
    let valid_mtime = mtime(&valid);

    let stderr = run_err(&mut fetch(dir.path(), &[&server.url], &[]));
    let url = format!("{}{bad}", server.url);
    assert!(
        stderr.contains(&format!("{bad} from {url}: corrupt gzip data")),
        "{stderr}"
    );
    assert!(stderr.contains("try another --mirror"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: could not fetch 1 of the 4 mnist files into {}: {bad} ",
            dir.path().display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--data DIR"), "{stderr}");
    // The good files were fetched; the valid one was not touched; the damaged one is still
    // the old file, not the corrupt download; and no temporary file is left.
    assert_eq!(listing(dir.path()), sorted(&FILES));
    assert_eq!(mtime(&valid), valid_mtime);
    assert!(fs::read(&valid).unwrap() == original("t10k-labels-idx1-ubyte.gz"));
    assert!(fs::read(&damaged).unwrap() == original(bad)[..1000]);
}

#[test]
fn a_wrong_file_is_a_checksum_mismatch() {
    if !have_originals("fetch_cli::a_wrong_file_is_a_checksum_mismatch") {
        return;
    }
    let bad = "t10k-labels-idx1-ubyte.gz";
    let server = server_with(bad, Reply::Body(gzip_stored(&wrong_labels())));
    let dir = dir_with(&FILES[..3]);
    let stderr = run_err(&mut fetch(dir.path(), &[&server.url], &[]));
    let url = format!("{}{bad}", server.url);
    assert!(
        stderr.contains(&format!(
            "checksum mismatch for {bad} from {url}: expected sha256 \
             ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2, got "
        )),
        "{stderr}"
    );
    assert_eq!(listing(dir.path()), sorted(&FILES[..3]));
    assert_eq!(server.requests(), 1);
}

#[test]
fn a_download_cut_halfway_is_refused_and_leaves_nothing_behind() {
    if !have_originals("fetch_cli::a_download_cut_halfway_is_refused_and_leaves_nothing_behind") {
        return;
    }
    let bad = "t10k-images-idx3-ubyte.gz";
    let present = ["train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];
    for announce in [true, false] {
        let body = original(bad).to_vec();
        let server = server_with(bad, Reply::Cut { body, announce });
        let dir = dir_with(&present);
        let mtimes: Vec<SystemTime> = present.iter().map(|f| mtime(&dir.path().join(f))).collect();
        let stderr = run_err(&mut fetch(dir.path(), &[&server.url], &[]));
        let url = format!("{}{bad}", server.url);
        // With a Content-Length the client sees the connection close early; without one
        // only the gzip stream shows that the file is incomplete.
        let why = if announce {
            format!(
                "{bad} from {url}: the download broke off after {} of {} bytes",
                original(bad).len() / 2,
                original(bad).len()
            )
        } else {
            format!("{bad} from {url}: truncated gzip data")
        };
        assert!(stderr.contains(&why), "announce {announce}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "could not fetch 1 of the 4 mnist files into {}: {bad} ",
                dir.path().display()
            )),
            "{stderr}"
        );
        let mut expected = present.to_vec();
        expected.push("train-labels-idx1-ubyte.gz");
        assert_eq!(listing(dir.path()), sorted(&expected));
        let after: Vec<SystemTime> = present.iter().map(|f| mtime(&dir.path().join(f))).collect();
        assert_eq!(mtimes, after);
    }
}

#[test]
fn mirrors_are_tried_in_order_until_one_has_the_file() {
    if !have_originals("fetch_cli::mirrors_are_tried_in_order_until_one_has_the_file") {
        return;
    }
    let missing = serve(|_| Reply::NotFound);
    let good = good_server();
    let refused = refused_url();
    // Only the small files are fetched, to keep the test quick.
    let dir = dir_with(&["train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"]);
    let out = output_ok(&mut fetch(
        dir.path(),
        &[&refused, &missing.url, &good.url],
        &[],
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The unreachable mirror is tried once, not again for the second file.
    assert_eq!(stderr.matches(refused.as_str()).count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "train-labels-idx1-ubyte.gz from {refused}train-labels-idx1-ubyte.gz: no answer: "
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "t10k-labels-idx1-ubyte.gz from {}t10k-labels-idx1-ubyte.gz: the server answered HTTP 404",
            missing.url
        )),
        "{stderr}"
    );
    assert_eq!((missing.requests(), good.requests()), (2, 2));
    assert_eq!(listing(dir.path()), sorted(&FILES));
}

#[test]
fn unreachable_mirrors_are_a_clear_error() {
    let refused = refused_url();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("mnist");
    let stderr = run_err(&mut fetch(&target, &[&refused], &[]));
    assert!(
        stderr.contains(&format!(
            "train-images-idx3-ubyte.gz from {refused}train-images-idx3-ubyte.gz: no answer: "
        )),
        "{stderr}"
    );
    assert!(stderr.contains("no mirror could be reached"), "{stderr}");
    assert!(stderr.contains("--mirror URL"), "{stderr}");
    assert!(stderr.contains("--data DIR"), "{stderr}");
    // The directory it created for nothing is gone again.
    assert!(!target.exists());
}

#[test]
fn a_stalled_server_times_out() {
    if !have_originals("fetch_cli::a_stalled_server_times_out") {
        return;
    }
    let bad = "t10k-labels-idx1-ubyte.gz";
    let server = server_with(bad, Reply::Stall(original(bad).to_vec()));
    let dir = dir_with(&FILES[..3]);
    let start = Instant::now();
    let stderr = run_err(&mut fetch(dir.path(), &[&server.url], &["--timeout", "1"]));
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert!(
        stderr.contains(&format!(
            "{bad} from {}{bad}: the download broke off after",
            server.url
        )),
        "{stderr}"
    );
    assert!(stderr.contains("timeout"), "{stderr}");
    assert_eq!(listing(dir.path()), sorted(&FILES[..3]));
}

#[test]
fn absurd_answers_are_refused() {
    if !have_originals("fetch_cli::absurd_answers_are_refused") {
        return;
    }
    let dir = dir_with(&FILES[..3]);
    let bad = "t10k-labels-idx1-ubyte.gz";
    let huge = server_with(bad, Reply::Announce(1 << 40));
    let stderr = run_err(&mut fetch(dir.path(), &[&huge.url], &[]));
    assert!(
        stderr.contains("the server sends 1099511627776 bytes, more than the 67108864-byte limit"),
        "{stderr}"
    );
    let html = server_with(bad, Reply::Body(b"<html>moved</html>".to_vec()));
    let stderr = run_err(&mut fetch(dir.path(), &[&html.url], &[]));
    assert!(
        stderr.contains(&format!("{bad} from {}{bad}: not gzip data", html.url)),
        "{stderr}"
    );
    assert_eq!(listing(dir.path()), sorted(&FILES[..3]));
    let stderr = run_err(&mut fetch(dir.path(), &["ftp://example.org/mnist/"], &[]));
    assert!(
        stderr.contains("--mirror ftp://example.org/mnist/: expected the http"),
        "{stderr}"
    );
}

#[test]
fn leftovers_of_a_killed_run_are_removed() {
    if !have_originals("fetch_cli::leftovers_of_a_killed_run_are_removed") {
        return;
    }
    let dir = dir_with(&FILES);
    let leftover = dir.path().join(".digits-fetch-AbC123.tmp");
    fs::write(&leftover, b"half a file").unwrap();
    // Everything is valid, so the (unreachable) mirror is not even asked.
    let out = output_ok(&mut fetch(dir.path(), &[&refused_url()], &[]));
    assert!(!leftover.exists(), "{}", text(&out));
    assert_eq!(listing(dir.path()), sorted(&FILES));
}

#[test]
fn a_damaged_raw_file_is_replaced_by_the_verified_content() {
    if !have_originals("fetch_cli::a_damaged_raw_file_is_replaced_by_the_verified_content") {
        return;
    }
    let server = good_server();
    let dir = dir_with(&FILES[..3]);
    // The loader reads the raw form when there is one, so that is the one to repair.
    let raw = dir.path().join("t10k-labels-idx1-ubyte");
    fs::write(&raw, wrong_labels()).unwrap();
    let out = output_ok(&mut fetch(dir.path(), &[&server.url], &[]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("MISMATCH"),
        "{}",
        text(&out)
    );
    assert_eq!(server.requests(), 1);
    let mut expected = FILES[..3].to_vec();
    expected.push("t10k-labels-idx1-ubyte");
    assert_eq!(listing(dir.path()), sorted(&expected));
    let mut check = Command::new(env!("CARGO_BIN_EXE_digits"));
    check.args(["data", "check", "--data"]).arg(dir.path());
    output_ok(&mut check);
}

/// A fresh machine: an empty home (no data anywhere) and an empty working directory, in one
/// temporary directory.
struct Fresh {
    root: tempfile::TempDir,
}

impl Fresh {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        for d in ["home", "work"] {
            fs::create_dir(root.path().join(d)).unwrap();
        }
        Fresh { root }
    }

    fn home(&self) -> std::path::PathBuf {
        self.root.path().join("home")
    }

    fn work(&self) -> std::path::PathBuf {
        self.root.path().join("work")
    }

    /// Where the first run puts MNIST with `$XDG_DATA_HOME` unset.
    fn default_place(&self) -> std::path::PathBuf {
        self.home().join(".local/share/digits/mnist")
    }

    /// `digits ARGS...` run in the empty working directory, with the empty home, no
    /// `$MNIST_DIR` or `$XDG_DATA_HOME`, and no proxy in the way of 127.0.0.1.
    fn digits(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_digits"));
        c.args(args)
            .current_dir(self.work())
            .env("HOME", self.home())
            .env_remove("MNIST_DIR")
            .env_remove("XDG_DATA_HOME");
        for var in [
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ] {
            c.env_remove(var);
        }
        c
    }
}

/// Every file under `dir`, as paths relative to it, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            found.push(path.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    found.sort();
    found
}

#[test]
fn the_first_train_on_a_fresh_machine_downloads_mnist_then_trains() {
    if !have_originals("fetch_cli::the_first_train_on_a_fresh_machine_downloads_mnist_then_trains")
    {
        return;
    }
    let server = good_server();
    let fresh = Fresh::new();
    let quick = [
        "train",
        "--epochs",
        "1",
        "--limit",
        "2000",
        "--validation",
        "500",
    ];
    let mut first = fresh.digits(&quick);
    first.args(["--mirror", &server.url]);
    let out = output_ok(&mut first);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let place = fresh.default_place();
    assert!(
        stderr.contains(&format!(
            "mnist: the dataset is not in {} (default, per user;",
            place.display()
        )),
        "{}",
        text(&out)
    );
    assert_eq!(server.requests(), 4, "{}", text(&out));
    assert_eq!(stderr.matches("  fetched  ").count(), 4, "{stderr}");
    for f in FILES {
        assert!(
            fs::read(place.join(f)).unwrap() == original(f),
            "{f} differs"
        );
    }
    assert_eq!(listing(&place), sorted(&FILES));
    // It went on to train and wrote the model in the working directory.
    assert!(
        stderr.contains(&format!(
            "mnist: 60000 training and 10000 test images from {}",
            place.display()
        )),
        "{stderr}"
    );
    assert!(
        fresh.work().join("model.digits").is_file(),
        "{}",
        text(&out)
    );

    // The second run, from another directory, finds the data there: nothing is downloaded.
    let elsewhere = fresh.root.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let mut again = fresh.digits(&quick);
    again
        .args(["--mirror", &server.url])
        .current_dir(&elsewhere);
    let out = output_ok(&mut again);
    assert_eq!(server.requests(), 4, "{}", text(&out));
    assert!(!text(&out).contains("downloading"), "{}", text(&out));
    assert!(elsewhere.join("model.digits").is_file());
}

#[test]
fn eval_downloads_the_test_split_alone_into_xdg_data_home() {
    if !have_originals("fetch_cli::eval_downloads_the_test_split_alone_into_xdg_data_home") {
        return;
    }
    let server = good_server();
    let fresh = Fresh::new();
    let xdg = fresh.root.path().join("xdg");
    let model = common::workspace().join("firmware/models/mnist.digits");
    let mut eval = fresh.digits(&["eval", "--json", "--mirror", &server.url, "--model"]);
    eval.arg(&model).env("XDG_DATA_HOME", &xdg);
    let out = output_ok(&mut eval);
    // Only the two test files were asked for, and stdout is still one JSON document.
    assert_eq!(server.requests(), 2, "{}", text(&out));
    let place = xdg.join("digits/mnist");
    assert_eq!(
        listing(&place),
        sorted(&["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"])
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(report["dataset"], "mnist", "{report}");
    assert!(tree(&fresh.home()).is_empty(), "{:?}", tree(&fresh.home()));
}

#[test]
fn offline_the_first_run_fails_in_one_line_and_leaves_nothing() {
    let fresh = Fresh::new();
    let refused = refused_url();
    let mut train = fresh.digits(&["train", "--epochs", "1", "--mirror", &refused]);
    let stderr = run_err(&mut train);
    let place = fresh.default_place();
    let lines: Vec<&str> = stderr.lines().collect();
    // What it is about to do, then the error: one line that says what to do.
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].contains("downloading"), "{stderr}");
    let error = lines[1];
    assert!(
        error.starts_with(&format!(
            "error: mnist not found in {} and no mirror could be reached ({refused}: no answer: ",
            place.display()
        )),
        "{stderr}"
    );
    for what_to_do in [
        "copy train-images-idx3-ubyte.gz, ",
        "--mirror URL",
        "--data DIR",
    ] {
        assert!(error.contains(what_to_do), "{what_to_do}: {stderr}");
    }
    // Nothing written: not the data directories, not a model, not a temporary file.
    assert!(tree(&fresh.home()).is_empty(), "{:?}", tree(&fresh.home()));
    assert!(tree(&fresh.work()).is_empty(), "{:?}", tree(&fresh.work()));
}

#[test]
fn no_download_says_where_it_looked_and_what_to_type() {
    let fresh = Fresh::new();
    let stderr = run_err(&mut fresh.digits(&["train", "--no-download"]));
    let place = fresh.default_place();
    assert!(
        stderr.contains(&format!(
            "mnist data not found: no train-images-idx3-ubyte, train-labels-idx1-ubyte, \
             t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (raw or .gz) in {}",
            place.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("`digits data fetch`"), "{stderr}");
    assert!(stderr.contains("--no-download was given"), "{stderr}");
    assert!(tree(&fresh.home()).is_empty(), "{:?}", tree(&fresh.home()));
    assert!(tree(&fresh.work()).is_empty(), "{:?}", tree(&fresh.work()));
    // A mirror with downloads turned off is a contradiction, refused as such.
    let stderr = run_err(&mut fresh.digits(&[
        "train",
        "--no-download",
        "--mirror",
        "http://127.0.0.1:9/mnist/",
    ]));
    assert!(stderr.contains("--no-download"), "{stderr}");
    assert!(stderr.contains("--mirror"), "{stderr}");
}
