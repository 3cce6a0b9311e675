//! `--timeline FILE` end to end (simulated build: `cargo sim-test`): the page, rendered by
//! a real headless browser (Debian's chromium) after its script ran, shows the violation
//! marker for a failing run and none for a passing one; the same seed gives the same
//! bytes; the page fetches nothing.
//!
//! Without chromium the browser test fails when `CI` is set (CI installs it: `.ci/run`)
//! and is skipped with a notice otherwise.
#![cfg(madsim)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A planted bug's run that fails linearizability (and Raft checks), and a passing run.
const FAILING: [&str; 3] = ["scenarios/bugs/quorum_off_by_one.toml", "--seed", "11"];
const PASSING: [&str; 3] = ["scenarios/default.toml", "--seed", "7"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("phantomdb-sim-timeline-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs one seed with `--timeline`; returns the exit code and the page.
fn page(run: [&str; 3], file: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_phantomdb-sim"))
        .arg("run")
        .args(run)
        .args(["--quiet", "--timeline", file.to_str().unwrap()])
        .current_dir(root())
        .output()
        .expect("the simulator runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    (out.status.code(), std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}\n{stdout}", file.display())))
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().map(PathBuf::from).find(|p| p.exists())
}

/// The DOM of `file` after its script ran, as headless chromium dumps it.
fn rendered(browser: &Path, file: &Path, profile: &Path) -> String {
    let mut child = Command::new(browser)
        .args(["--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    // The pipe is read on a thread so that a page bigger than its buffer cannot block
    // chromium while this one waits for it to exit.
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut dom).expect("chromium's output is UTF-8");
        dom
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().expect("waits") {
            assert!(status.success(), "chromium failed on {}: {status}", file.display());
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish rendering {} within 120 s", file.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().expect("reader")
}

#[test]
fn a_browser_finds_the_violation_marker_on_a_failing_run_and_none_on_a_passing_one() {
    let Some(browser) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "chromium is not installed (looked for /usr/bin/chromium): the timeline's browser test needs it; \
                 CI installs it with `apt-get install -y chromium` (.ci/run)"
            );
        }
        eprintln!("NOTICE: timeline browser test skipped: chromium is not installed (apt-get install -y chromium)");
        return;
    };
    let dir = tempdir("browser");
    let (failing, passing) = (dir.join("failing.html"), dir.join("passing.html"));
    let (code, _) = page(FAILING, &failing);
    assert_eq!(code, Some(1), "{FAILING:?} is expected to fail");
    let (code, _) = page(PASSING, &passing);
    assert_eq!(code, Some(0), "{PASSING:?} is expected to pass");

    let dom = rendered(&browser, &failing, &dir.join("profile-failing"));
    assert!(dom.contains("id=\"violation\""), "no violation marker in the rendered failing page");
    assert!(dom.contains("class=\"tick-label\""), "the script did not draw the time axis");
    assert!(dom.contains(" blocked\""), "the unexplained operation is not marked");
    let dom = rendered(&browser, &passing, &dir.join("profile-passing"));
    assert!(dom.contains("class=\"tick-label\""), "the script did not draw the time axis");
    assert!(!dom.contains("id=\"violation\""), "a violation marker on a passing run");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_same_seed_gives_the_same_page_and_the_page_fetches_nothing() {
    let dir = tempdir("same");
    let (_, a) = page(PASSING, &dir.join("a.html"));
    let (_, b) = page(PASSING, &dir.join("b.html"));
    assert!(a == b, "two runs of one seed gave different pages");
    for outside in ["src=", "href=", "url(", "@import", "<link", "<iframe"] {
        assert!(!a.contains(outside), "the page refers to something outside it: {outside}");
    }
    assert!(a.len() < 2_000_000, "{} bytes for a 23-second run", a.len());
    std::fs::remove_dir_all(&dir).unwrap();
}
