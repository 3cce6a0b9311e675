//! A directory's files of one kind, in name order: the scenarios a hunt sweeps, the
//! seed reports a merge reads.

use std::path::{Path, PathBuf};

/// The files of `dir` whose name ends in `.{extension}`, sorted by path.
pub fn files_with_extension(dir: &Path, extension: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect();
    out.sort();
    Ok(out)
}
