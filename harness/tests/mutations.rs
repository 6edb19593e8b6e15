//! The mutation table in docs/simulator.md rests on the patches in docs/mutations/: each must
//! still apply to the code, or the table describes code that no longer exists.

use std::path::Path;
use std::process::Command;

#[test]
fn every_mutation_patch_still_applies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = root.join("docs/mutations");
    let mut patches: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "patch"))
        .collect();
    patches.sort();
    assert!(patches.len() >= 6, "the mutation table has its patches");
    for p in patches {
        // `git apply --check` works outside a repository too (it only reads the files).
        let out = Command::new("git")
            .arg("apply")
            .arg("--check")
            .arg(&p)
            .current_dir(root)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "{} no longer applies: {}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
