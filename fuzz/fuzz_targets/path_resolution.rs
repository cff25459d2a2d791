//! `path::resolve` and `path::to_storage` on any argument from any working
//! directory and user root.
//!
//! - never panics;
//! - agrees with an independent model (`ftpd_fuzz::path_model`), including
//!   when a path is refused as too long;
//! - the result is absolute and normalised: starts with `/`, holds no `//`,
//!   `/./`, `/../`, does not end with `/.`, `/..` or `/` (unless it is `/`),
//!   fits `MAX_PATH`;
//! - resolving the result again, from the root or the working directory,
//!   gives it back (it is a fixed point), and `pop` + `push(file_name)` too
//!   (compared as strings, and with `==`);
//! - `to_storage` is the root followed by the virtual path, refused only
//!   when that is too long, and never leaves the root (the jail): no `..`,
//!   and the root is followed by `/` or nothing (`/pub` never becomes
//!   `/pub_secret`).
#![no_main]

use ftpd::MAX_PATH;
use ftpd::path::{PathBuf, resolve, to_storage};
use ftpd_fuzz::checked_fs::check_storage_path;
use ftpd_fuzz::path_model::{self, PathInput};
use libfuzzer_sys::fuzz_target;

fn check_normalised(s: &str, what: &str) {
    assert!(s.starts_with('/'), "{what} {s:?} is not absolute");
    assert!(s.len() <= MAX_PATH, "{what} {s:?} is longer than MAX_PATH");
    for bad in ["//", "/./", "/../"] {
        assert!(!s.contains(bad), "{what} {s:?} holds {bad:?}");
    }
    assert!(
        !s.ends_with("/..") && !s.ends_with("/."),
        "{what} {s:?} ends in a dot component"
    );
    assert!(
        s == "/" || !s.ends_with('/'),
        "{what} {s:?} ends with a slash"
    );
}

fuzz_target!(|input: PathInput| {
    let root_v = PathBuf::root();
    let cwd = resolve(&root_v, &input.cwd_arg).unwrap_or_else(|_| PathBuf::root());
    check_normalised(cwd.as_str(), "the working directory");

    let got = resolve(&cwd, &input.arg);
    let want = path_model::resolve(cwd.as_str(), &input.arg, MAX_PATH);
    assert_eq!(
        got.as_ref().ok().map(|v| v.as_str()),
        want.as_deref(),
        "resolve({:?}, {:?}) disagrees with the model",
        cwd.as_str(),
        input.arg
    );
    let Ok(v) = got else { return };
    let s = v.as_str();
    check_normalised(s, "the resolved path");

    // A fixed point.
    let again = |p: Result<PathBuf, _>| p.ok().map(|p| p.as_str().to_string());
    assert_eq!(
        again(resolve(&root_v, s)).as_deref(),
        Some(s),
        "{s:?} from /"
    );
    assert_eq!(
        again(resolve(&cwd, s)).as_deref(),
        Some(s),
        "{s:?} from the cwd"
    );
    assert_eq!(again(PathBuf::from_normalised(s)).as_deref(), Some(s));
    // Equal paths compare equal (bytes past the end do not count).
    assert!(
        resolve(&root_v, s).ok() == Some(v.clone()),
        "{s:?}: equal paths compare unequal"
    );
    // pop and file_name describe the same split.
    if v.is_root() {
        assert_eq!(v.file_name(), "");
    } else {
        let mut parent = v.clone();
        parent.pop();
        check_normalised(parent.as_str(), "the parent");
        let name = v.file_name();
        assert!(!name.is_empty() && !name.contains('/'));
        parent.push(name).expect("the original fitted");
        assert_eq!(parent.as_str(), s, "pop + push(file_name) of {s:?}");
    }

    // The jail.
    let root = input.root.trim_end_matches('/');
    let want = if root.is_empty() {
        s.to_string()
    } else if v.is_root() {
        root.to_string()
    } else {
        format!("{root}{s}")
    };
    match to_storage(input.root, &v) {
        Ok(p) => {
            let p = p.as_str();
            assert_eq!(p, want, "to_storage({:?}, {s:?})", input.root);
            check_storage_path(p);
            let below = &p[root.len()..];
            assert!(
                below.is_empty() || below.starts_with('/'),
                "{p:?} is beside the root {root:?}, not under it"
            );
            assert!(
                below.split('/').all(|c| c != ".." && c != "."),
                "{p:?} climbs out of the root {root:?}"
            );
        }
        Err(_) => assert!(
            want.len() > MAX_PATH,
            "to_storage({:?}, {s:?}) refused a path of {} bytes",
            input.root,
            want.len()
        ),
    }
});
