//! Unit tests of the toolkit probe against fake library and include
//! directories (temp dirs) and, where a C compiler is present, a fake NVRTC
//! built on the spot.

use super::*;

fn search(
    lib_dirs: Vec<PathBuf>,
    cuda_path: Option<PathBuf>,
    roots: Vec<PathBuf>,
) -> ToolkitSearch {
    ToolkitSearch {
        use_loader: false,
        lib_dirs,
        cuda_path,
        roots,
    }
}

/// A toolkit root with `headers` under `include/`.
fn fake_root(headers: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("include")).unwrap();
    for h in headers {
        std::fs::write(dir.path().join("include").join(h), "").unwrap();
    }
    dir
}

/// Build `libnvrtc.so.12` in `dir` reporting `major.minor`, or `None`
/// without a C compiler.
fn fake_nvrtc(dir: &Path, major: i32, minor: i32) -> Option<PathBuf> {
    let src = dir.join("nvrtc.c");
    std::fs::write(
        &src,
        format!("int nvrtcVersion(int *a, int *b) {{ *a = {major}; *b = {minor}; return 0; }}\n"),
    )
    .unwrap();
    let lib = dir.join("libnvrtc.so.12");
    let ok = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("no C compiler: the fake NVRTC is not built");
    }
    ok.then_some(lib)
}

#[test]
fn versions_and_capabilities_print_as_cuda_does() {
    assert_eq!(CudaVersion(12040).to_string(), "12.4");
    assert_eq!(CudaVersion::new(13, 0), CudaVersion(13000));
    assert_eq!(ComputeCapability(8, 6).to_string(), "8.6");
    assert!(ComputeCapability(8, 0).has_bf16());
    assert!(!ComputeCapability(7, 5).has_bf16());
}

#[test]
fn cuda_path_wins_over_the_roots_and_roots_go_in_order() {
    let a = fake_root(&[]);
    let b = fake_root(&[]);
    let s = search(vec![], Some(a.path().into()), vec![b.path().into()]);
    assert_eq!(s.cuda_root().unwrap(), a.path());
    let missing = a.path().join("absent");
    let s = search(vec![], None, vec![missing, b.path().into()]);
    assert_eq!(s.cuda_root().unwrap(), b.path());
}

#[test]
fn no_root_is_one_line_naming_what_was_tried() {
    let s = search(vec![], None, vec![PathBuf::from("/nonexistent/cuda")]);
    let e = s.cuda_root().unwrap_err().to_string();
    assert!(
        e.contains("`/nonexistent/cuda`") && !e.contains('\n'),
        "{e}"
    );
}

#[test]
fn headers_are_found_or_the_missing_ones_named() {
    let full = fake_root(&REQUIRED_HEADERS);
    let s = search(vec![], Some(full.path().into()), vec![]);
    assert_eq!(s.headers().unwrap(), full.path().join("include"));

    let partial = fake_root(&["cuda_runtime.h", "cuda_fp16.h"]);
    let s = search(vec![], Some(partial.path().into()), vec![]);
    let e = s.headers().unwrap_err();
    assert!(
        matches!(&e, ToolkitError::MissingHeaders { missing, .. } if missing == "cuda_bf16.h, mma.h"),
        "{e}"
    );
}

#[test]
fn nvrtc_not_in_the_library_dirs_is_an_error_naming_them() {
    let empty = tempfile::tempdir().unwrap();
    let s = search(vec![empty.path().into()], None, vec![]);
    let e = s.nvrtc().unwrap_err();
    assert!(matches!(e, ToolkitError::NvrtcNotFound { .. }), "{e}");
    assert!(e.to_string().contains(&empty.path().display().to_string()));
}

#[test]
fn a_file_that_is_not_a_library_is_unloadable_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("libnvrtc.so"), "not an ELF file").unwrap();
    let s = search(vec![dir.path().into()], None, vec![]);
    let e = s.nvrtc().unwrap_err();
    assert!(matches!(e, ToolkitError::NvrtcUnloadable { .. }), "{e}");
}

#[test]
fn a_fake_nvrtc_reports_its_version_and_is_checked_against_the_driver() {
    let dir = tempfile::tempdir().unwrap();
    if fake_nvrtc(dir.path(), 12, 4).is_none() {
        return;
    }
    let root = fake_root(&REQUIRED_HEADERS);
    let s = search(vec![dir.path().into()], Some(root.path().into()), vec![]);
    let nvrtc = s.nvrtc().unwrap();
    assert_eq!(nvrtc.version, CudaVersion(12040));
    // A driver of the same or a newer CUDA loads its PTX.
    let found = s.probe(CudaVersion(12040)).unwrap();
    assert_eq!(found.include, root.path().join("include"));
    assert!(s.probe(CudaVersion(13000)).is_ok());
    // An older driver cannot.
    let failures = s.probe(CudaVersion(12020)).unwrap_err();
    assert_eq!(failures.len(), 1);
    let line = failures[0].to_string();
    assert!(
        line.contains("NVRTC 12.4") && line.contains("CUDA 12.2"),
        "{line}"
    );
}

#[test]
fn every_failure_is_reported_not_only_the_first() {
    let empty = tempfile::tempdir().unwrap();
    let s = search(
        vec![empty.path().into()],
        None,
        vec![empty.path().join("cuda")],
    );
    let failures = s.probe(CudaVersion(13000)).unwrap_err();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures.iter().all(|f| !f.to_string().contains('\n')));
}

#[test]
fn auto_is_bf16_only_from_compute_capability_8() {
    let auto = DecodeWeights::Auto;
    assert_eq!(
        cuda_decode_weights(auto, ComputeCapability(8, 0)).unwrap(),
        DecodeWeights::Bf16
    );
    assert_eq!(
        cuda_decode_weights(auto, ComputeCapability(7, 5)).unwrap(),
        DecodeWeights::F32
    );
    assert!(matches!(
        cuda_decode_weights(DecodeWeights::Bf16, ComputeCapability(7, 0)),
        Err(ToolkitError::Bf16Unsupported { .. })
    ));
    assert_eq!(
        cuda_decode_weights(DecodeWeights::F32, ComputeCapability(6, 1)).unwrap(),
        DecodeWeights::F32
    );
}
