//! Output files for the CLI: `-` for stdout, a path created on first write (so a run with
//! nothing to report leaves no empty file).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

pub enum Output {
    Stdout(BufWriter<io::Stdout>),
    Lazy {
        path: PathBuf,
        file: Option<BufWriter<File>>,
    },
}

impl Output {
    pub fn new(target: &str) -> Output {
        if target == "-" {
            Output::Stdout(BufWriter::new(io::stdout()))
        } else {
            Output::Lazy {
                path: PathBuf::from(target),
                file: None,
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::Lazy { path, file } => {
                if file.is_none() {
                    let f = File::create(&*path).map_err(|e| {
                        io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
                    })?;
                    *file = Some(BufWriter::new(f));
                }
                match file {
                    Some(f) => f.write(buf),
                    None => Ok(0),
                }
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::Lazy { file: Some(f), .. } => f.flush(),
            Output::Lazy { file: None, .. } => Ok(()),
        }
    }
}

/// The files and directories a run writes (`-` is stdout and left out), so it never reads them
/// back as input.
pub fn run_outputs(
    files: [Option<&String>; 3],
    state: Option<&std::path::PathBuf>,
    history: Option<&std::path::PathBuf>,
) -> Vec<std::path::PathBuf> {
    files
        .into_iter()
        .flatten()
        .map(std::path::PathBuf::from)
        .chain(state.cloned())
        .chain(history.cloned())
        .collect()
}

/// `--data`: a local directory. A URL (`s3://bucket/prefix`, `gs://…`, `file://…`) is refused
/// with a usage error: the history store is written with local file operations (atomic
/// renames, owner-only modes), and an object store would need its own writer; a path like
/// `s3://x` would otherwise silently become the local directory `./s3:/x`.
pub fn local_store(text: &str) -> Result<std::path::PathBuf, String> {
    if let Some((scheme, _)) = text.split_once("://") {
        if !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err(format!(
                "`{scheme}://` is not supported: the history store is a local directory (mount the bucket, or copy the store to object storage after the run)"
            ));
        }
    }
    Ok(std::path::PathBuf::from(text))
}
