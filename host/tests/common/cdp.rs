//! A small, synchronous Chrome DevTools Protocol client for the tests that drive headless
//! Chromium: launch a browser, open pages, evaluate JavaScript, draw with the mouse or a finger,
//! take screenshots, catch downloads, and read what the page transferred and which errors it
//! threw.
//!
//! One WebSocket to the browser carries everything: each page is a flattened session (its
//! `sessionId` rides in the messages), replies are matched by `id`, and the events that arrive
//! while a reply is awaited are filed into the records of the page (or the browser) they belong
//! to. Every wait has a deadline, and the socket has a read timeout, so a hung or dead browser
//! fails a test with a message saying what was awaited instead of hanging it.
//!
//! The binary is `chromium` from `PATH` (or `chromium-browser`, `google-chrome`), or the one
//! named by `$DIGITS_CHROMIUM`.
// Each test uses its own part of this module.
#![allow(dead_code)]

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::ErrorKind;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// How long any one wait (a reply, the browser's start, a download) may take unless told
/// otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The environment variable that, set to anything but `0`, prints every DevTools message to
/// stderr (cut to 200 characters): what a failing browser test was doing.
pub const TRACE_ENV: &str = "DIGITS_CDP_TRACE";

/// The environment variable that names the Chromium binary to use instead of the one in `PATH`.
pub const CHROMIUM_ENV: &str = "DIGITS_CHROMIUM";

/// The names tried in `PATH` when `$DIGITS_CHROMIUM` is not set.
const CANDIDATES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// How a browser is started.
#[derive(Clone, Debug)]
pub struct LaunchOptions {
    /// The window size in CSS pixels (`--window-size`); pages can override the viewport.
    pub window_size: (u32, u32),
    /// More command-line switches, after the defaults.
    pub extra_args: Vec<String>,
    /// The deadline for starting and for every later wait that is not given its own.
    pub timeout: Duration,
}

impl Default for LaunchOptions {
    fn default() -> Self {
        Self {
            window_size: (1280, 800),
            extra_args: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A headless Chromium with one DevTools connection. Dropping it kills the browser with all its
/// helper processes and removes its temporary profile.
pub struct Browser {
    // Pages hold the connection too; the browser's `Drop` closes the browser all the same.
    conn: Shared,
    process: Process,
}

impl Browser {
    /// The Chromium binary that [`Browser::launch`] would start: `$DIGITS_CHROMIUM` (a path, or
    /// a name looked up in `PATH`), else the first of `chromium`, `chromium-browser`,
    /// `google-chrome` in `PATH`.
    pub fn binary() -> Option<PathBuf> {
        match std::env::var_os(CHROMIUM_ENV) {
            Some(name) if !name.is_empty() => find_binary(Path::new(&name)),
            _ => CANDIDATES
                .iter()
                .find_map(|name| find_binary(Path::new(name))),
        }
    }

    /// Whether a Chromium binary is there to launch (see [`Browser::binary`]), so that a test
    /// can skip with a message where there is none.
    pub fn available() -> bool {
        Self::binary().is_some()
    }

    /// Starts a headless Chromium with the default [`LaunchOptions`] and connects to it.
    pub fn launch() -> Result<Browser> {
        Self::launch_with(&LaunchOptions::default())
    }

    /// Starts a headless Chromium and connects to it.
    ///
    /// The browser picks its own DevTools port (`--remote-debugging-port=0`) and writes it to
    /// `DevToolsActivePort` in its profile, so parallel launches never race for a port.
    pub fn launch_with(options: &LaunchOptions) -> Result<Browser> {
        let binary = Self::binary().ok_or_else(|| {
            anyhow!("no Chromium found: install `chromium` or set ${CHROMIUM_ENV} to its path")
        })?;
        let dir = unique_temp_dir()?;
        let profile = dir.join("profile");
        fs::create_dir(&profile).with_context(|| format!("creating {}", profile.display()))?;
        let log_path = dir.join("chromium.log");
        let log = fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let (width, height) = options.window_size;
        let mut command = Command::new(&binary);
        command
            .args([
                "--headless",
                // As root there is no sandbox to be had.
                "--no-sandbox",
                "--disable-gpu",
                // /dev/shm is small in containers; renderers crash when it fills.
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                // No crash uploads. (Not `--disable-crashpad-for-testing`: with it, Chromium
                // 148's network service crashes in a loop, "FD ownership violation", and
                // every navigation ends in net::ERR_ABORTED.)
                "--disable-breakpad",
                // Pages that are not in front must keep running their timers and frames.
                "--disable-background-timer-throttling",
                "--disable-backgrounding-occluded-windows",
                "--disable-renderer-backgrounding",
                // Only loopback is ever visited: no proxy, no phoning home.
                "--no-proxy-server",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--mute-audio",
                "--hide-scrollbars",
                "--password-store=basic",
                "--use-mock-keychain",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--window-size={width},{height}"))
            .args(&options.extra_args)
            .arg("about:blank")
            // Crashpad keeps its reports under $XDG_CONFIG_HOME: inside our directory, they
            // go with it, and the handler (which leaves our process group) names the
            // directory on its command line, so `Drop` can find it.
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating the log file handle")?)
            .stderr(log);
        // Its own process group, so that `Drop` can kill the browser with every helper
        // process (zygotes, renderers, GPU, network service) in one signal.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()));
        let child = match child {
            Ok(child) => child,
            Err(error) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(error);
            }
        };
        // From here on `Process::drop` cleans up, whatever fails next.
        let mut process = Process {
            child,
            dir,
            log: log_path,
        };
        let (port, path) = process.wait_for_port(&profile, options.timeout)?;
        let ws = connect(port, &path, options.timeout).with_context(|| process.log_tail())?;
        let conn = Conn::new(ws, options.timeout);
        Ok(Browser {
            conn: Arc::new(Mutex::new(conn)),
            process,
        })
    }

    /// The process id of the browser (the leader of its process group).
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// Sets the deadline of every later wait that is not given its own (default 30 s).
    pub fn set_timeout(&self, timeout: Duration) {
        lock(&self.conn).timeout = timeout;
    }

    /// The browser's product and version, e.g. `Chrome/148.0.7778.167` (`Browser.getVersion`).
    pub fn version(&self) -> Result<String> {
        let version = self.call("Browser.getVersion", json!({}))?;
        Ok(version["product"].as_str().unwrap_or_default().to_owned())
    }

    /// Sends a command to the browser itself (no session) and returns its result.
    pub fn call(&self, method: &str, params: Value) -> Result<Value> {
        lock(&self.conn).call(None, method, params, None)
    }

    /// Opens a new page (a tab in a window of its own) and navigates it to `url`, waiting for
    /// its `load` event.
    ///
    /// The page starts blank and its `Page`, `Runtime` and `Network` domains are enabled
    /// before it navigates, so that errors and transfers of the first load are recorded too.
    pub fn new_page(&self, url: &str) -> Result<Page> {
        let page = {
            let mut conn = lock(&self.conn);
            // A window of its own: a tab behind another one would be hidden, and hidden pages
            // get no animation frames.
            let created = conn.call(
                None,
                "Target.createTarget",
                json!({"url": "about:blank", "newWindow": true}),
                None,
            )?;
            let target_id = str_field(&created, "targetId", "Target.createTarget")?;
            let attached = conn.call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
                None,
            )?;
            let session = str_field(&attached, "sessionId", "Target.attachToTarget")?;
            conn.sessions.insert(session.clone(), PageLog::default());
            Page {
                conn: Arc::clone(&self.conn),
                session,
                target_id,
                mouse_down: Cell::new(false),
            }
        };
        for domain in ["Page", "Runtime", "Network"] {
            page.call(&format!("{domain}.enable"), json!({}))?;
        }
        if url != "about:blank"
            && let Err(error) = page.goto(url)
        {
            let _ = page.close();
            return Err(error);
        }
        Ok(page)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ask first: a browser that shuts down reaps its own helpers, where killed ones would
        // linger as zombies until init gets round to them. `Process::drop` kills whatever is
        // left.
        if lock(&self.conn)
            .send(None, "Browser.close", json!({}))
            .is_ok()
        {
            self.process.wait_exit(Duration::from_secs(5));
        }
    }
}

/// One page (a target) of a [`Browser`], driven through its own flattened session.
///
/// Coordinates are CSS pixels from the top left corner of the viewport.
pub struct Page {
    conn: Shared,
    session: String,
    target_id: String,
    /// Whether the left mouse button is down, for the `buttons` of the moves in between.
    mouse_down: Cell<bool>,
}

impl Page {
    /// Sends a command to this page's session and returns its result.
    pub fn call(&self, method: &str, params: Value) -> Result<Value> {
        lock(&self.conn).call(Some(&self.session), method, params, None)
    }

    /// The page's DevTools target id.
    pub fn target_id(&self) -> &str {
        &self.target_id
    }

    /// Navigates to `url` and waits for the new document's `load` event (not for a same-page
    /// navigation, which has none). A network failure (e.g. connection refused) is an error.
    pub fn goto(&self, url: &str) -> Result<()> {
        let mut conn = lock(&self.conn);
        let loads_before = conn.log(&self.session).loads;
        let result = conn.call(
            Some(&self.session),
            "Page.navigate",
            json!({"url": url}),
            None,
        )?;
        if let Some(error) = result["errorText"].as_str().filter(|e| !e.is_empty()) {
            bail!("navigating to {url} failed: {error}");
        }
        if result.get("loaderId").is_none() {
            return Ok(()); // Same-document navigation: no new load.
        }
        let session = self.session.clone();
        conn.wait_until(None, &format!("the load event of {url}"), |conn| {
            (conn.log(&session).loads > loads_before).then_some(())
        })
    }

    /// Evaluates a JavaScript expression in the page and returns its value as JSON; a promise
    /// is awaited. `undefined` is `null`; values JSON cannot hold (`NaN`, `Infinity`, `-0`,
    /// bigints) come back as strings. A thrown exception or rejected promise is an error
    /// with the exception's text.
    ///
    /// It runs as a user gesture, so it may start downloads, play audio or go full screen.
    pub fn eval(&self, js: &str) -> Result<Value> {
        self.evaluate(js, None)
    }

    /// [`Page::eval`] with its own deadline for the reply.
    fn evaluate(&self, js: &str, timeout: Option<Duration>) -> Result<Value> {
        let params = json!({
            "expression": js,
            "awaitPromise": true,
            "returnByValue": true,
            "userGesture": true,
        });
        let result =
            lock(&self.conn).call(Some(&self.session), "Runtime.evaluate", params, timeout)?;
        if let Some(details) = result.get("exceptionDetails") {
            bail!(
                "JavaScript threw: {}\n    evaluating: {}",
                exception_text(details),
                brief(js)
            );
        }
        Ok(remote_value(&result["result"]))
    }

    /// Evaluates `js` every 50 ms until its value is truthy and returns that value. Exceptions
    /// count as not yet (the page may still be loading); the last one is in the timeout error.
    /// A dead browser fails it at once.
    pub fn wait_for(&self, js: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let last = match self.evaluate(js, Some(left.max(Duration::from_millis(100)))) {
                Ok(value) if truthy(&value) => return Ok(value),
                Ok(value) => format!("last value {value}"),
                Err(error) if lock(&self.conn).broken.is_some() => return Err(error),
                Err(error) => format!("last error {error:#}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "timed out after {timeout:?} waiting for `{}` ({last})",
                    brief(js)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The centre of the first element matching a CSS selector, in viewport coordinates.
    pub fn center_of(&self, selector: &str) -> Result<(f64, f64)> {
        let js = format!(
            "(() => {{ const e = document.querySelector({}); if (!e) return null; \
             const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
            Value::from(selector)
        );
        let value = self.eval(&js)?;
        match (value[0].as_f64(), value[1].as_f64()) {
            (Some(x), Some(y)) => Ok((x, y)),
            _ => bail!("no element matches {selector:?}"),
        }
    }

    /// Sets the viewport: `width` × `height` CSS pixels at `scale` device pixels per CSS pixel,
    /// as a phone (`mobile`: meta viewport honoured, overlay scrollbars) or not.
    pub fn set_viewport(&self, width: u32, height: u32, scale: f64, mobile: bool) -> Result<()> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({
                "width": width,
                "height": height,
                "deviceScaleFactor": scale,
                "mobile": mobile,
            }),
        )?;
        Ok(())
    }

    /// Makes the page a phone: a 390 × 844 viewport at 2 device pixels per CSS pixel (so a
    /// screenshot is 780 × 1688), mobile, with a touch screen.
    pub fn emulate_phone(&self) -> Result<()> {
        self.set_viewport(390, 844, 2.0, true)?;
        self.call(
            "Emulation.setTouchEmulationEnabled",
            json!({"enabled": true, "maxTouchPoints": 5}),
        )?;
        Ok(())
    }

    /// One mouse event with the left button: `kind` is `mousePressed`, `mouseMoved` or
    /// `mouseReleased`. A move while the button is down carries `buttons: 1`, so pages see a
    /// drag. The reply comes once the renderer has handled the event.
    pub fn mouse(&self, kind: &str, x: f64, y: f64) -> Result<()> {
        let down = match kind {
            "mousePressed" => true,
            "mouseReleased" => false,
            "mouseMoved" => self.mouse_down.get(),
            _ => bail!(
                "unknown mouse event {kind:?}: want mousePressed, mouseMoved or mouseReleased"
            ),
        };
        let pressing = kind != "mouseMoved";
        let button = if pressing || down { "left" } else { "none" };
        let buttons = if down { 1 } else { 0 };
        self.call(
            "Input.dispatchMouseEvent",
            json!({
                "type": kind,
                "x": x,
                "y": y,
                "button": button,
                "buttons": buttons,
                "clickCount": if pressing { 1 } else { 0 },
                "pointerType": "mouse",
            }),
        )?;
        self.mouse_down.set(down);
        Ok(())
    }

    /// A left click at a point: press and release.
    pub fn click(&self, x: f64, y: f64) -> Result<()> {
        self.mouse("mousePressed", x, y)?;
        self.mouse("mouseReleased", x, y)
    }

    /// A mouse stroke: press at the first point, move through every point after it, release
    /// at the last.
    pub fn stroke(&self, points: &[(f64, f64)]) -> Result<()> {
        let (&(x0, y0), rest) = points.split_first().context("a stroke needs a point")?;
        self.mouse("mousePressed", x0, y0)?;
        for &(x, y) in rest {
            self.mouse("mouseMoved", x, y)?;
        }
        let &(x1, y1) = points.last().context("a stroke needs a point")?;
        self.mouse("mouseReleased", x1, y1)
    }

    /// One touch event with one finger: `kind` is `touchStart`, `touchMove` or `touchEnd`
    /// (the point of a `touchEnd` is ignored: the finger leaves where it was).
    pub fn touch(&self, kind: &str, x: f64, y: f64) -> Result<()> {
        let points = match kind {
            "touchStart" | "touchMove" => {
                json!([{"x": x, "y": y, "id": 0, "radiusX": 1, "radiusY": 1, "force": 1}])
            }
            "touchEnd" | "touchCancel" => json!([]),
            _ => bail!("unknown touch event {kind:?}: want touchStart, touchMove or touchEnd"),
        };
        self.call(
            "Input.dispatchTouchEvent",
            json!({"type": kind, "touchPoints": points}),
        )?;
        Ok(())
    }

    /// A finger stroke: touch down at the first point, move through every point after it,
    /// lift at the last.
    pub fn touch_stroke(&self, points: &[(f64, f64)]) -> Result<()> {
        let (&(x0, y0), rest) = points.split_first().context("a stroke needs a point")?;
        self.touch("touchStart", x0, y0)?;
        for &(x, y) in rest {
            self.touch("touchMove", x, y)?;
        }
        let &(x1, y1) = points.last().context("a stroke needs a point")?;
        self.touch("touchEnd", x1, y1)
    }

    /// The viewport as a PNG (in device pixels: a phone viewport at scale 2 is twice its CSS
    /// size).
    pub fn screenshot_png(&self) -> Result<Vec<u8>> {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}))?;
        let data = str_field(&shot, "data", "Page.captureScreenshot")?;
        data_encoding::BASE64
            .decode(data.as_bytes())
            .context("Page.captureScreenshot returned bad base64")
    }

    /// Writes a PNG of the viewport to `path`.
    pub fn screenshot(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let png = self.screenshot_png()?;
        fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Lets downloads happen, into `dir` (created if missing), and reports them to
    /// [`Page::wait_download`]. Downloads are a browser-wide setting: it holds for every page.
    ///
    /// Each download is saved under its DevTools `guid` (`allowAndName`), so a second download
    /// of the same name cannot be renamed behind the test's back; [`Download`] has the name
    /// the page suggested.
    pub fn set_download_dir(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .with_context(|| format!("resolving {}", dir.display()))?;
        let mut conn = lock(&self.conn);
        conn.call(
            None, // A `Browser.*` command: the browser's session, not the page's.
            "Browser.setDownloadBehavior",
            json!({
                "behavior": "allowAndName",
                "downloadPath": dir.to_string_lossy(),
                "eventsEnabled": true,
            }),
            None,
        )?;
        conn.downloads.dir = Some(dir);
        Ok(())
    }

    /// Waits for the next download (of any page) to complete and returns it; a canceled
    /// download is an error. Needs [`Page::set_download_dir`] first.
    pub fn wait_download(&self, timeout: Duration) -> Result<Download> {
        let mut conn = lock(&self.conn);
        if conn.downloads.dir.is_none() {
            bail!("wait_download needs set_download_dir first");
        }
        let done = conn.wait_until(Some(timeout), "a download to complete", |conn| {
            conn.downloads.done.pop_front()
        })?;
        done.map_err(|error| anyhow!(error))
    }

    /// Every response that finished loading so far, in the order they finished.
    pub fn transfers(&self) -> Result<Vec<Transfer>> {
        let mut conn = lock(&self.conn);
        conn.pump()?;
        Ok(conn.log(&self.session).transfers.clone())
    }

    /// The page's errors so far: uncaught exceptions and unhandled rejections
    /// (`Runtime.exceptionThrown`), `console.error` calls, failed (not canceled) network
    /// loads, and a renderer crash. Tests assert it is empty.
    pub fn errors(&self) -> Result<Vec<String>> {
        let mut conn = lock(&self.conn);
        conn.pump()?;
        Ok(conn.log(&self.session).errors.clone())
    }

    /// Everything the page wrote to its console so far, as `type: text` lines (`log: hello`),
    /// and the dialogs it opened (they are accepted at once, so they cannot block a test).
    pub fn console(&self) -> Result<Vec<String>> {
        let mut conn = lock(&self.conn);
        conn.pump()?;
        Ok(conn.log(&self.session).console.clone())
    }

    /// Brings the page to the front (`Page.bringToFront`).
    pub fn activate(&self) -> Result<()> {
        self.call("Page.bringToFront", json!({}))?;
        Ok(())
    }

    /// Closes the page.
    pub fn close(self) -> Result<()> {
        let mut conn = lock(&self.conn);
        conn.call(
            None,
            "Target.closeTarget",
            json!({"targetId": self.target_id}),
            None,
        )?;
        conn.sessions.remove(&self.session);
        Ok(())
    }
}

/// One response a page received, as the Network domain reported it.
#[derive(Clone, Debug)]
pub struct Transfer {
    /// The URL of the request.
    pub url: String,
    /// The HTTP status.
    pub status: u16,
    /// The MIME type the browser settled on.
    pub mime_type: String,
    /// Every byte received for the response, headers included: DevTools' "transferred"
    /// (`Network.loadingFinished.encodedDataLength`).
    pub encoded_bytes: u64,
    /// The bytes of the response's header block (`Response.encodedDataLength` when the
    /// response arrived), so `encoded_bytes - header_bytes` is the body as sent.
    pub header_bytes: u64,
    /// The body after decoding (the sum of `Network.dataReceived.dataLength`).
    pub decoded_bytes: u64,
    /// The `Content-Encoding` of the response, lowercased (`gzip`, `br`), if any.
    pub content_encoding: Option<String>,
    /// The response headers, names lowercased.
    pub headers: HashMap<String, String>,
}

impl Transfer {
    /// The body's bytes as sent (compressed, if it was): what the network carried without the
    /// headers.
    pub fn body_bytes(&self) -> u64 {
        self.encoded_bytes.saturating_sub(self.header_bytes)
    }
}

/// A finished download.
#[derive(Clone, Debug)]
pub struct Download {
    /// Where the file is.
    pub path: PathBuf,
    /// The file name the page suggested (`a.download`, `Content-Disposition`).
    pub suggested_name: String,
    /// The URL it came from (`blob:`, `data:` or a network URL).
    pub url: String,
}

// ---- The connection ------------------------------------------------------------------------

/// The connection, shared by the browser and its pages.
type Shared = Arc<Mutex<Conn>>;

/// Locks the connection; a panic elsewhere while it was held leaves it usable.
fn lock(conn: &Shared) -> MutexGuard<'_, Conn> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The WebSocket to the browser and what its events have told so far.
struct Conn {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    timeout: Duration,
    /// The records of each attached page, by session id.
    sessions: HashMap<String, PageLog>,
    downloads: Downloads,
    /// Replies that have arrived and not been taken, by id.
    replies: HashMap<u64, Value>,
    /// Why the connection is unusable, once it is.
    broken: Option<String>,
}

/// What the events of one page have told.
#[derive(Default)]
struct PageLog {
    /// How many `load` events the page fired.
    loads: u64,
    /// The URL of each request under way, by request id.
    requests: HashMap<String, String>,
    /// Responses that have not finished loading, by request id.
    pending: HashMap<String, Transfer>,
    transfers: Vec<Transfer>,
    errors: Vec<String>,
    console: Vec<String>,
}

/// Downloads of the browser, from its `Browser.download*` events.
#[derive(Default)]
struct Downloads {
    dir: Option<PathBuf>,
    /// `(url, suggested name)` of each download begun, by guid.
    begun: HashMap<String, (String, String)>,
    /// Finished downloads in order, failures as their message.
    done: VecDeque<std::result::Result<Download, String>>,
}

impl Conn {
    fn new(ws: WebSocket<TcpStream>, timeout: Duration) -> Self {
        Conn {
            ws,
            next_id: 0,
            timeout,
            sessions: HashMap::new(),
            downloads: Downloads::default(),
            replies: HashMap::new(),
            broken: None,
        }
    }

    /// The records of a page (empty ones for a session that is gone).
    fn log(&mut self, session: &str) -> &mut PageLog {
        self.sessions.entry(session.to_owned()).or_default()
    }

    /// Sends a command and waits for its reply; events that come first are filed.
    fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        let id = self.send(session, method, params)?;
        let reply = self.wait_until(timeout, &format!("the reply to {method}"), |conn| {
            conn.replies.remove(&id)
        })?;
        // Commands go one at a time, so any older reply left is one nobody waits for any more
        // (a command that timed out, a dialog dismissed in passing).
        self.replies.retain(|&other, _| other > id);
        if let Some(error) = reply.get("error") {
            let message = error["message"].as_str().unwrap_or("(no message)");
            match error["data"].as_str() {
                Some(data) => bail!("{method} failed: {message}: {data}"),
                None => bail!("{method} failed: {message}"),
            }
        }
        Ok(reply.get("result").cloned().unwrap_or(Value::Null))
    }

    /// Sends a command without waiting; returns its id.
    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<u64> {
        if let Some(why) = &self.broken {
            bail!("cannot send {method}: the DevTools connection is gone ({why})");
        }
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = Value::from(session);
        }
        let text = message.to_string();
        if trace() {
            eprintln!("cdp -> {}", brief(&text));
        }
        if let Err(error) = self.ws.send(Message::text(text)) {
            self.broken = Some(error.to_string());
            bail!("sending {method} to the browser failed (has it died?): {error}");
        }
        Ok(id)
    }

    /// Reads messages, filing events, until `ready` yields a value or the deadline passes.
    fn wait_until<T>(
        &mut self,
        timeout: Option<Duration>,
        what: &str,
        mut ready: impl FnMut(&mut Conn) -> Option<T>,
    ) -> Result<T> {
        let timeout = timeout.unwrap_or(self.timeout);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = ready(self) {
                return Ok(value);
            }
            // The clock is checked before each read too: a page that floods events (a
            // console.log every frame) must not keep a wait alive past its deadline.
            let read = Instant::now() < deadline
                && self
                    .read_one(deadline)
                    .with_context(|| format!("waiting for {what}"))?;
            if !read {
                bail!("timed out after {timeout:?} waiting for {what}");
            }
        }
    }

    /// Files the messages that have already arrived (for a fifth of a second at most, should
    /// they never stop coming).
    fn pump(&mut self) -> Result<()> {
        let until = Instant::now() + Duration::from_millis(200);
        while Instant::now() < until && self.read_one(Instant::now())? {}
        Ok(())
    }

    /// Reads one message (waiting until `deadline` at most, and at least a millisecond) and
    /// files it; `false` when none came in time.
    fn read_one(&mut self, deadline: Instant) -> Result<bool> {
        if let Some(why) = &self.broken {
            bail!("the DevTools connection is gone ({why})");
        }
        loop {
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            self.ws
                .get_ref()
                .set_read_timeout(Some(wait))
                .context("setting the socket timeout")?;
            // A read that times out leaves any partial frame buffered inside tungstenite, so
            // the next read picks up where this one stopped.
            let text = match self.ws.read() {
                Ok(Message::Text(text)) => text.as_str().to_owned(),
                Ok(Message::Binary(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                Ok(Message::Close(frame)) => {
                    self.broken = Some(format!("the browser closed it: {frame:?}"));
                    bail!("the browser closed the DevTools connection");
                }
                Ok(_) => continue, // Ping and pong: tungstenite answers pings itself.
                Err(tungstenite::Error::Io(error))
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    if Instant::now() >= deadline {
                        return Ok(false);
                    }
                    continue;
                }
                Err(error) => {
                    self.broken = Some(error.to_string());
                    bail!("reading from the browser failed (has it died?): {error}");
                }
            };
            if trace() {
                eprintln!("cdp <- {}", brief(&text));
            }
            let message: Value = serde_json::from_str(&text).with_context(|| {
                format!(
                    "the browser sent something that is not JSON: {}",
                    brief(&text)
                )
            })?;
            self.file(message);
            return Ok(true);
        }
    }

    /// Files one message: a reply for whoever waits for it, an event into the records of the
    /// page or browser it concerns.
    fn file(&mut self, message: Value) {
        if let Some(id) = message["id"].as_u64() {
            self.replies.insert(id, message);
            return;
        }
        let Some(method) = message["method"].as_str() else {
            return;
        };
        let params = &message["params"];
        let Some(session) = message["sessionId"].as_str() else {
            self.browser_event(method, params);
            return;
        };
        let Some(log) = self.sessions.get_mut(session) else {
            return;
        };
        log.event(method, params);
        if method == "Page.javascriptDialogOpening" {
            // An open dialog blocks the page's script, and with it every later evaluate:
            // accept it at once (its text is in the console records). The reply is not awaited.
            let session = session.to_owned();
            let _ = self.send(
                Some(&session),
                "Page.handleJavaScriptDialog",
                json!({"accept": true}),
            );
        }
    }

    /// Files an event of the browser's own session.
    fn browser_event(&mut self, method: &str, params: &Value) {
        let downloads = &mut self.downloads;
        match method {
            "Browser.downloadWillBegin" => {
                let guid = params["guid"].as_str().unwrap_or_default().to_owned();
                let url = params["url"].as_str().unwrap_or_default().to_owned();
                let name = params["suggestedFilename"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                downloads.begun.insert(guid, (url, name));
            }
            "Browser.downloadProgress" => {
                let guid = params["guid"].as_str().unwrap_or_default();
                let state = params["state"].as_str().unwrap_or_default();
                if state == "inProgress" {
                    return;
                }
                let (url, suggested_name) = downloads.begun.remove(guid).unwrap_or_default();
                let done = if state == "completed" {
                    // Newer browsers say where the file went; else `allowAndName` put it at
                    // its guid.
                    let path = match params["filePath"].as_str() {
                        Some(path) if !path.is_empty() => PathBuf::from(path),
                        _ => downloads.dir.clone().unwrap_or_default().join(guid),
                    };
                    Ok(Download {
                        path,
                        suggested_name,
                        url,
                    })
                } else {
                    Err(format!(
                        "the download of {suggested_name:?} from {} ended {state}",
                        brief(&url)
                    ))
                };
                downloads.done.push_back(done);
            }
            "Target.detachedFromTarget" => {
                // The page's target closed or crashed: later commands to it fail on their own.
                if let Some(log) = params["sessionId"]
                    .as_str()
                    .and_then(|s| self.sessions.get_mut(s))
                {
                    log.console
                        .push("detached: the page's target went away".to_owned());
                }
            }
            _ => {}
        }
    }
}

impl PageLog {
    /// Files an event of this page's session.
    fn event(&mut self, method: &str, params: &Value) {
        match method {
            "Page.loadEventFired" => self.loads += 1,
            "Network.requestWillBeSent" => {
                let url = params["request"]["url"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                self.requests.insert(request_id(params), url);
            }
            "Network.responseReceived" => {
                let response = &params["response"];
                let headers: HashMap<String, String> = response["headers"]
                    .as_object()
                    .map(|headers| {
                        headers
                            .iter()
                            .map(|(name, value)| {
                                (
                                    name.to_ascii_lowercase(),
                                    value.as_str().unwrap_or_default().to_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let content_encoding = headers
                    .get("content-encoding")
                    .map(|encoding| encoding.trim().to_ascii_lowercase())
                    .filter(|encoding| !encoding.is_empty() && encoding != "identity");
                let transfer = Transfer {
                    url: response["url"].as_str().unwrap_or_default().to_owned(),
                    status: response["status"].as_u64().unwrap_or_default() as u16,
                    mime_type: response["mimeType"].as_str().unwrap_or_default().to_owned(),
                    encoded_bytes: 0,
                    header_bytes: response["encodedDataLength"].as_f64().unwrap_or_default() as u64,
                    decoded_bytes: 0,
                    content_encoding,
                    headers,
                };
                self.pending.insert(request_id(params), transfer);
            }
            "Network.dataReceived" => {
                if let Some(transfer) = self.pending.get_mut(&request_id(params)) {
                    transfer.decoded_bytes +=
                        params["dataLength"].as_f64().unwrap_or_default() as u64;
                }
            }
            "Network.loadingFinished" => {
                let id = request_id(params);
                self.requests.remove(&id);
                if let Some(mut transfer) = self.pending.remove(&id) {
                    transfer.encoded_bytes =
                        params["encodedDataLength"].as_f64().unwrap_or_default() as u64;
                    self.transfers.push(transfer);
                }
            }
            "Network.loadingFailed" => {
                let id = request_id(params);
                self.pending.remove(&id);
                let url = self.requests.remove(&id).unwrap_or_default();
                // A canceled load (a download taking over a navigation, a page going away)
                // is no error of the page's.
                if params["canceled"].as_bool() != Some(true) {
                    let error = params["errorText"].as_str().unwrap_or_default();
                    let blocked = params["blockedReason"]
                        .as_str()
                        .map(|why| format!(" (blocked: {why})"));
                    self.errors.push(format!(
                        "network: {} failed: {error}{}",
                        brief(&url),
                        blocked.unwrap_or_default()
                    ));
                }
            }
            "Runtime.exceptionThrown" => {
                let details = &params["exceptionDetails"];
                let mut text = exception_text(details);
                // Where, unless the stack in the description says so already.
                if let Some(url) = details["url"].as_str().filter(|url| !url.is_empty())
                    && !text.contains(url)
                {
                    let line = details["lineNumber"].as_u64().unwrap_or_default() + 1;
                    let column = details["columnNumber"].as_u64().unwrap_or_default() + 1;
                    text = format!("{text} (at {}:{line}:{column})", brief(url));
                }
                self.errors.push(text);
            }
            "Runtime.consoleAPICalled" => {
                let kind = params["type"].as_str().unwrap_or("log");
                let text = params["args"]
                    .as_array()
                    .map(|args| args.iter().map(remote_text).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default();
                if kind == "error" || kind == "assert" {
                    self.errors.push(format!("console.{kind}: {text}"));
                }
                self.console.push(format!("{kind}: {text}"));
            }
            "Page.javascriptDialogOpening" => {
                let kind = params["type"].as_str().unwrap_or("dialog");
                let text = params["message"].as_str().unwrap_or_default();
                self.console.push(format!("dialog {kind}: {text}"));
            }
            "Inspector.targetCrashed" => self.errors.push("the page's renderer crashed".to_owned()),
            _ => {}
        }
    }
}

/// The `requestId` of a Network event.
fn request_id(params: &Value) -> String {
    params["requestId"].as_str().unwrap_or_default().to_owned()
}

// ---- The process ---------------------------------------------------------------------------

/// The browser's process group and temporary directory, both gone when this is dropped.
struct Process {
    child: Child,
    /// Holds the profile and the browser's log.
    dir: PathBuf,
    log: PathBuf,
}

impl Process {
    /// Waits for the browser to write its DevTools port and path (`DevToolsActivePort` in the
    /// profile: the port on line 1, the browser's WebSocket path on line 2).
    fn wait_for_port(&mut self, profile: &Path, timeout: Duration) -> Result<(u16, String)> {
        let file = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(text) = fs::read_to_string(&file) {
                let mut lines = text.lines();
                // Both lines, or the file is still being written.
                if let (Some(port), Some(path)) = (lines.next(), lines.next())
                    && let Ok(port) = port.trim().parse::<u16>()
                    && path.starts_with("/devtools/browser/")
                {
                    return Ok((port, path.trim().to_owned()));
                }
            }
            if let Some(status) = self.child.try_wait().context("checking on the browser")? {
                bail!(
                    "the browser exited ({status}) before it opened its DevTools port\n{}",
                    self.log_tail()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "timed out after {timeout:?} waiting for {}\n{}",
                    file.display(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `timeout` for the browser to exit; whether it has (and is reaped).
    fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return true,
                Ok(None) if Instant::now() >= deadline => return false,
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// The end of the browser's output, for an error message.
    fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!(
            "the browser's last output ({}):\n{tail}",
            self.log.display()
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SIGKILL to the whole group: the browser and every helper it forked. Only while the
        // leader is not reaped: until then its pid (the group's id) cannot be reused.
        if matches!(self.child.try_wait(), Ok(None)) {
            let group = self.child.id() as i32;
            // SAFETY: kill(2) takes plain integers and touches no memory of ours.
            unsafe {
                kill(-group, SIGKILL);
            }
        }
        // Crashpad's handlers run in a session of their own: find them by our directory on
        // their command line. (They quit by themselves once the browser is gone, but not at
        // once.)
        kill_mentioning(&self.dir);
        // Reap the leader (the helpers, now children of init, are reaped there); a process
        // stuck in the kernel must not hang the test forever.
        self.wait_exit(Duration::from_secs(10));
        // The helpers may take a moment to die and stop writing into the profile.
        for _ in 0..20 {
            if fs::remove_dir_all(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// SIGKILLs every process whose command line mentions `dir` (ours is unique to one browser).
fn kill_mentioning(dir: &Path) {
    let needle = dir.as_os_str().as_encoded_bytes();
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        if pid as u32 == std::process::id() {
            continue;
        }
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline.windows(needle.len()).any(|window| window == needle) {
            // SAFETY: as above.
            unsafe {
                kill(pid, SIGKILL);
            }
        }
    }
}

const SIGKILL: i32 = 9;

unsafe extern "C" {
    /// kill(2), from the C library that std links anyway.
    fn kill(pid: i32, signal: i32) -> i32;
}

// ---- Helpers -------------------------------------------------------------------------------

/// Connects the WebSocket to the browser's DevTools endpoint.
fn connect(port: u16, path: &str, timeout: Duration) -> Result<WebSocket<TcpStream>> {
    let address = format!("127.0.0.1:{port}");
    let stream = TcpStream::connect_timeout(&address.parse()?, timeout)
        .with_context(|| format!("connecting to the browser's DevTools at {address}"))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // Screenshots of large viewports come as one message of several megabytes.
    let config = WebSocketConfig::default()
        .max_message_size(Some(1 << 30))
        .max_frame_size(None);
    let url = format!("ws://{address}{path}");
    let (ws, _) = tungstenite::client::client_with_config(url.as_str(), stream, Some(config))
        .map_err(|error| anyhow!("WebSocket handshake with {url} failed: {error}"))?;
    Ok(ws)
}

/// A directory of our own under the system's temporary directory.
fn unique_temp_dir() -> Result<PathBuf> {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    loop {
        let count = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("digits-cdp-{}-{count}-{nanos}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(error) if error.kind() == ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error).with_context(|| format!("creating {}", dir.display())),
        }
    }
}

/// An executable file: a path as it is, a bare name looked up in `PATH`.
fn find_binary(name: &Path) -> Option<PathBuf> {
    let executable = |path: &Path| {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if name.components().count() > 1 {
        return executable(name).then(|| name.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|path| executable(path))
}

/// Whether to print the DevTools messages (`$DIGITS_CDP_TRACE`).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os(TRACE_ENV).is_some_and(|value| value != "0"))
}

/// The field `name` of a command's result, as a string.
fn str_field(result: &Value, name: &str, method: &str) -> Result<String> {
    result[name].as_str().map(str::to_owned).ok_or_else(|| {
        anyhow!(
            "{method} returned no {name}: {}",
            brief(&result.to_string())
        )
    })
}

/// The value of a `Runtime.RemoteObject` fetched by value.
fn remote_value(object: &Value) -> Value {
    if let Some(value) = object.get("value") {
        return value.clone();
    }
    match object["unserializableValue"].as_str() {
        Some(text) => Value::from(text),
        None => Value::Null,
    }
}

/// A `Runtime.RemoteObject` as `console.log` would print it, roughly.
fn remote_text(object: &Value) -> String {
    match object.get("value") {
        Some(Value::String(text)) => text.clone(),
        Some(value) => value.to_string(),
        None => object["unserializableValue"]
            .as_str()
            .or(object["description"].as_str())
            .unwrap_or(object["type"].as_str().unwrap_or("?"))
            .to_owned(),
    }
}

/// The text of a `Runtime.ExceptionDetails` as DevTools prints it: `Uncaught` and the
/// exception's description (with its stack) when there is one, else its value.
fn exception_text(details: &Value) -> String {
    let text = details["text"].as_str().unwrap_or("exception");
    let exception = &details["exception"];
    match exception["description"].as_str() {
        Some(description) => format!("{text} {description}"),
        None if exception.get("value").is_some() => format!("{text} {}", remote_text(exception)),
        None => text.to_owned(),
    }
}

/// JavaScript's truthiness of a JSON value (objects and arrays are truthy).
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0 && !n.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// At most 200 characters of `text`, for error messages.
fn brief(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}
