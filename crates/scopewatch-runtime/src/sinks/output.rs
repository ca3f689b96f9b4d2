//! An output named on the command line: `-` for stdout, else a path created (truncated) on the
//! first write, so a run with nothing to write leaves no empty file.

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
