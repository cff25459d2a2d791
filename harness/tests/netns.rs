//! Targets that live in a network namespace (sim and QEMU on TAP, issues 4
//! and 5) are played from inside it. Here: a namespace of our own with only
//! its loopback up, the host server started in it, and a scenario played
//! through `play_in_netns`. Its 127.0.0.1 is not the host's, so the session
//! can only work if the player really runs inside.
//!
//! Needs root and `ip` (iproute2): fails under CI=true without them, says so
//! loudly otherwise.

use std::process::{Child, Command, Stdio};

use harness::fixture::Tree;
use harness::scenario::Scenario;
use harness::target::{self, Context};

struct Netns {
    name: String,
    child: Option<Child>,
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[test]
fn a_scenario_is_played_inside_a_network_namespace() {
    let root = unsafe { libc::geteuid() } == 0;
    if !root || !target::have_tool("ip") {
        let msg = "netns test needs root and ip (apt-get install -y iproute2)";
        assert!(std::env::var("CI").is_err(), "{msg}");
        eprintln!("\n!!!!!!!!!! SKIPPED: {msg} !!!!!!!!!!\n");
        return;
    }
    let name = format!("harness-test-{}", std::process::id());
    let _ = Command::new("ip").args(["netns", "del", &name]).status();
    assert!(
        Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success()
    );
    let mut ns = Netns {
        name: name.clone(),
        child: None,
    };
    assert!(
        Command::new("ip")
            .args(["-n", &name, "link", "set", "lo", "up"])
            .status()
            .unwrap()
            .success()
    );

    let sim = Context::new(None).sim_binary().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tree = Tree::load(
        &target::workspace_root().join("scenarios/fixtures"),
        "basic",
    )
    .unwrap();
    tree.materialize(dir.path()).unwrap();
    ns.child = Some(
        Command::new("ip")
            .args(["netns", "exec", &name])
            .arg(&sim)
            .args(["--listen", "127.0.0.1:2121", "--root"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let s = Scenario::parse(
        "netns/list",
        "description: list in a namespace\nlogin: test test\n---\nconnect\n< 220\nlogin\n> PASV\n< 227\n> LIST\n< 150\nrecv listing\n< 226\n> QUIT\n< 221\n",
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = "127.0.0.1:2121".parse().unwrap();
    let mut last = String::new();
    for _ in 0..40 {
        let p = rt
            .block_on(target::play_in_netns(&name, &s, addr, &tree, false))
            .unwrap();
        if p.failures().is_empty() {
            let t = p.transcript.render(true);
            assert!(
                t.contains("D| drwxr-xr-x 1 ftp ftp            0 [DATE] sub"),
                "{t}"
            );
            return;
        }
        last = p.transcript.render(false);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the session inside the namespace never worked:\n{last}");
}
