//! A generator of sample NTDS directories of any size, with deterministic pseudo-random
//! content, for the demo, the tests and the benchmarks.
//!
//! Every file is written in 1 MiB chunks from one reused buffer and hashed while it is written,
//! so a multi-GiB database costs 1 MiB of memory. The bytes depend only on the seed, the file
//! name and the offset (never on the chunk size or the order files are written in):
//!
//! ```text
//!  file = page 0 | page 1 | ...          8 KiB pages, the last one possibly short
//!  page = page_number (u64 LE) | file_tag (u64 LE) | SplitMix64(file_seed ^ mix(page_number))...
//!  file_seed = seed ^ FNV-1a(file name), file_tag = file_seed
//! ```
//!
//! The page header makes a misplaced page visible in a hex dump, as an ESE page number would.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use dsbackup_proto::BftKind;
use sha2::{Digest, Sha256};

use crate::ntds::{
    CHECKPOINT_FILE, DATABASE_FILE, MAX_GENERATION, PATCH_FILE, encode_checkpoint, log_file_name,
};
use crate::prng::{SplitMix64, fnv1a, mix};

/// Size of a sample page.
pub(crate) const PAGE_SIZE: usize = 8192;
/// Size of the write buffer: the most memory a file costs the generator.
pub(crate) const CHUNK_SIZE: usize = 1024 * 1024;

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleSpec {
    /// Size of `ntds.dit` in bytes.
    pub database_size: u64,
    /// Number of log files.
    pub log_count: u32,
    /// Size of each log file in bytes.
    pub log_size: u64,
    /// Generation of the first log file (at least 1).
    pub first_log_generation: u32,
    /// How many of the newest logs are not yet committed (the checkpoint is the oldest of
    /// them); clamped to `1..=log_count`.
    pub uncommitted_logs: u32,
    /// Whether to write `ntds.pat`.
    pub with_patch_file: bool,
    /// Size of the patch file in bytes.
    pub patch_size: u64,
    /// The seed of every byte.
    pub seed: u64,
}

impl Default for SampleSpec {
    /// A small set: an 8 MiB database, eight 1 MiB logs (generations 1 to 8, checkpoint 7),
    /// no patch file, seed 0.
    fn default() -> Self {
        Self {
            database_size: 8 * 1024 * 1024,
            log_count: 8,
            log_size: 1024 * 1024,
            first_log_generation: 1,
            uncommitted_logs: 2,
            with_patch_file: false,
            patch_size: 64 * 1024,
            seed: 0,
        }
    }
}

impl SampleSpec {
    /// The generations of the log files.
    pub fn generations(&self) -> core::ops::RangeInclusive<u32> {
        let first = self.first_log_generation.max(1);
        let last = first.saturating_add(self.log_count.saturating_sub(1));
        first..=last
    }

    /// The checkpoint generation the set records.
    pub fn checkpoint_generation(&self) -> u32 {
        let generations = self.generations();
        let uncommitted = self.uncommitted_logs.clamp(1, self.log_count.max(1));
        generations
            .end()
            .saturating_sub(uncommitted.saturating_sub(1))
            .max(*generations.start())
    }
}

/// What kind of file a manifest entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SampleFileKind {
    /// `ntds.dit`.
    Database,
    /// `ntds.pat`.
    Patch,
    /// A log file of this generation.
    Log(u32),
    /// `edb.chk` (not part of a backup set).
    Checkpoint,
}

impl SampleFileKind {
    /// The BFT character the backup set lists the file with (`None` for the checkpoint).
    pub fn bft(self) -> Option<BftKind> {
        match self {
            Self::Database => Some(BftKind::NTDS_DATABASE),
            Self::Patch => Some(BftKind::PATCH_FILE),
            Self::Log(_) => Some(BftKind::LOG),
            Self::Checkpoint => None,
        }
    }
}

/// One file the generator wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleFile {
    /// The file name (in the generated directory).
    pub name: String,
    /// Where it is.
    pub path: PathBuf,
    /// What it is.
    pub kind: SampleFileKind,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of its content.
    pub sha256: [u8; 32],
}

/// What the generator wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleManifest {
    /// The files, database first, then the patch file, the logs by generation and the
    /// checkpoint.
    pub files: Vec<SampleFile>,
    /// The checkpoint generation written to `edb.chk`.
    pub checkpoint_generation: u32,
    /// The current (highest) log generation.
    pub current_generation: u32,
}

impl SampleManifest {
    /// The entry of a file name (case-insensitive).
    pub fn file(&self, name: &str) -> Option<&SampleFile> {
        self.files
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SampleError {
    /// The spec cannot be laid out.
    #[error("invalid sample spec: {0}")]
    InvalidSpec(&'static str),
    /// Writing a file failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Lays out a sample NTDS directory in `dir` (created if missing; existing files of the same
/// names are replaced).
///
/// # Errors
/// [`SampleError::InvalidSpec`] when the log generations would pass `0xFFFFF`;
/// [`SampleError::Io`] when a file cannot be written.
pub fn generate_sample_set(dir: &Path, spec: &SampleSpec) -> Result<SampleManifest, SampleError> {
    let generations = spec.generations();
    if spec.log_count == 0 {
        return Err(SampleError::InvalidSpec("log_count must be at least 1"));
    }
    if *generations.end() > MAX_GENERATION || generations.end() < generations.start() {
        return Err(SampleError::InvalidSpec(
            "log generations must stay within 1..=0xFFFFF",
        ));
    }
    fs::create_dir_all(dir).map_err(|source| SampleError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut buffer = vec![0u8; CHUNK_SIZE];
    let mut files = Vec::new();
    let mut write = |name: String, kind: SampleFileKind, size: u64| {
        let path = dir.join(&name);
        let sha256 =
            write_sample_file(&path, spec.seed, &name, size, &mut buffer).map_err(|source| {
                SampleError::Io {
                    path: path.clone(),
                    source,
                }
            })?;
        files.push(SampleFile {
            name,
            path,
            kind,
            size,
            sha256,
        });
        Ok::<(), SampleError>(())
    };
    write(
        DATABASE_FILE.to_owned(),
        SampleFileKind::Database,
        spec.database_size,
    )?;
    if spec.with_patch_file {
        write(
            PATCH_FILE.to_owned(),
            SampleFileKind::Patch,
            spec.patch_size,
        )?;
    }
    for generation in generations.clone() {
        write(
            log_file_name(generation),
            SampleFileKind::Log(generation),
            spec.log_size,
        )?;
    }
    let checkpoint_generation = spec.checkpoint_generation();
    let checkpoint = encode_checkpoint(checkpoint_generation);
    let path = dir.join(CHECKPOINT_FILE);
    fs::write(&path, checkpoint).map_err(|source| SampleError::Io {
        path: path.clone(),
        source,
    })?;
    files.push(SampleFile {
        name: CHECKPOINT_FILE.to_owned(),
        path,
        kind: SampleFileKind::Checkpoint,
        size: 16,
        sha256: Sha256::digest(checkpoint).into(),
    });
    Ok(SampleManifest {
        files,
        checkpoint_generation,
        current_generation: *generations.end(),
    })
}

/// Fills `out` with the sample bytes of file `name` at `offset` (what
/// [`generate_sample_set`] writes there; the tests compare the files with it).
#[cfg(test)]
fn sample_bytes(seed: u64, name: &str, offset: u64, out: &mut [u8]) {
    let file_seed = seed ^ fnv1a(name.as_bytes());
    let mut position = offset;
    let mut rest = out;
    let page_size = PAGE_SIZE as u64;
    while !rest.is_empty() {
        let page = position / page_size;
        let in_page = usize::try_from(position % page_size).unwrap_or(0);
        let mut page_bytes = [0u8; PAGE_SIZE];
        fill_page(file_seed, page, &mut page_bytes);
        let available = page_bytes.get(in_page..).unwrap_or_default();
        let take = available.len().min(rest.len());
        let (dst, tail) = rest.split_at_mut(take);
        dst.copy_from_slice(available.get(..take).unwrap_or_default());
        rest = tail;
        position = position.saturating_add(take as u64);
    }
}

/// SHA-256 of a file, read in 1 MiB chunks.
///
/// # Errors
/// The I/O error of the read.
pub fn sha256_file(path: &Path) -> io::Result<[u8; 32]> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; CHUNK_SIZE];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(buffer.get(..n).unwrap_or_default());
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use core::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// Writes one file, `buffer.len()` bytes at a time, and returns its SHA-256.
fn write_sample_file(
    path: &Path,
    seed: u64,
    name: &str,
    size: u64,
    buffer: &mut [u8],
) -> io::Result<[u8; 32]> {
    let file_seed = seed ^ fnv1a(name.as_bytes());
    let mut file = File::create(path)?;
    let mut hasher = Sha256::new();
    let mut page: u64 = 0;
    let mut remaining = size;
    // INVARIANT: CHUNK_SIZE is a multiple of PAGE_SIZE, so every chunk starts on a page.
    const _: () = assert!(CHUNK_SIZE.is_multiple_of(PAGE_SIZE));
    while remaining > 0 {
        let len = usize::try_from(remaining.min(buffer.len() as u64)).unwrap_or(buffer.len());
        let chunk = buffer.get_mut(..len).unwrap_or_default();
        for page_bytes in chunk.chunks_mut(PAGE_SIZE) {
            fill_page(file_seed, page, page_bytes);
            page = page.saturating_add(1);
        }
        hasher.update(&*chunk);
        file.write_all(chunk)?;
        remaining = remaining.saturating_sub(len as u64);
    }
    file.sync_all()?;
    Ok(hasher.finalize().into())
}

/// The bytes of page `page` of a file (a prefix of them when `out` is shorter than a page).
fn fill_page(file_seed: u64, page: u64, out: &mut [u8]) {
    let mut header = [0u8; 16];
    let (number, tag) = header.split_at_mut(8);
    number.copy_from_slice(&page.to_le_bytes());
    tag.copy_from_slice(&file_seed.to_le_bytes());
    let head = out.len().min(header.len());
    let (dst, body) = out.split_at_mut(head);
    dst.copy_from_slice(header.get(..head).unwrap_or_default());
    SplitMix64::new(file_seed ^ mix(page)).fill(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_spec(seed: u64) -> SampleSpec {
        SampleSpec {
            database_size: 3 * 1024 * 1024 + 1234,
            log_count: 4,
            log_size: 64 * 1024,
            first_log_generation: 9,
            uncommitted_logs: 2,
            with_patch_file: true,
            patch_size: 5000,
            seed,
        }
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let c = tempfile::tempdir().unwrap();
        let ma = generate_sample_set(a.path(), &small_spec(42)).unwrap();
        let mb = generate_sample_set(b.path(), &small_spec(42)).unwrap();
        let mc = generate_sample_set(c.path(), &small_spec(43)).unwrap();
        let digests = |m: &SampleManifest| m.files.iter().map(|f| f.sha256).collect::<Vec<_>>();
        assert_eq!(digests(&ma), digests(&mb));
        let db = |m: &SampleManifest| m.file("ntds.dit").unwrap().sha256;
        assert_ne!(db(&ma), db(&mc));
    }

    #[test]
    fn manifest_matches_the_files_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = generate_sample_set(dir.path(), &small_spec(1)).unwrap();
        let names: Vec<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ntds.dit",
                "ntds.pat",
                "edb00009.log",
                "edb0000A.log",
                "edb0000B.log",
                "edb0000C.log",
                "edb.chk"
            ]
        );
        assert_eq!(manifest.checkpoint_generation, 0xB);
        assert_eq!(manifest.current_generation, 0xC);
        for file in &manifest.files {
            assert_eq!(
                fs::metadata(&file.path).unwrap().len(),
                file.size,
                "{}",
                file.name
            );
            assert_eq!(
                sha256_file(&file.path).unwrap(),
                file.sha256,
                "{}",
                file.name
            );
        }
        assert_eq!(
            fs::read(dir.path().join("edb.chk")).unwrap(),
            encode_checkpoint(0xB)
        );
    }

    #[test]
    fn content_depends_on_offset_only_not_on_chunking() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = generate_sample_set(dir.path(), &small_spec(5)).unwrap();
        let bytes = fs::read(&manifest.file("ntds.dit").unwrap().path).unwrap();
        // A window across a page boundary and a chunk boundary.
        for offset in [0usize, 8190, CHUNK_SIZE - 3, bytes.len() - 10] {
            let mut window = [0u8; 20];
            let len = window.len().min(bytes.len() - offset);
            sample_bytes(5, "ntds.dit", offset as u64, &mut window[..len]);
            assert_eq!(&window[..len], &bytes[offset..offset + len]);
        }
        // Page headers carry the page number.
        assert_eq!(&bytes[8192..8200], &1u64.to_le_bytes());
        assert_eq!(&bytes[CHUNK_SIZE..CHUNK_SIZE + 8], &128u64.to_le_bytes());
    }

    #[test]
    fn streams_through_a_bounded_buffer() {
        // A file several times the chunk size comes out of one CHUNK_SIZE buffer: the writer
        // takes a slice of that buffer and never sees the whole file.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let mut buffer = vec![0u8; 64 * 1024];
        let size: usize = 5 * 64 * 1024 + 17;
        let digest = write_sample_file(&path, 9, "big", size as u64, &mut buffer).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), size as u64);
        assert_eq!(sha256_file(&path).unwrap(), digest);
        let mut whole = vec![0u8; size];
        sample_bytes(9, "big", 0, &mut whole);
        assert_eq!(fs::read(&path).unwrap(), whole);
    }

    #[test]
    fn refuses_generations_past_the_limit_and_no_logs() {
        let dir = tempfile::tempdir().unwrap();
        let spec = SampleSpec {
            first_log_generation: MAX_GENERATION,
            log_count: 2,
            ..SampleSpec::default()
        };
        assert!(matches!(
            generate_sample_set(dir.path(), &spec),
            Err(SampleError::InvalidSpec(_))
        ));
        let spec = SampleSpec {
            log_count: 0,
            ..SampleSpec::default()
        };
        assert!(matches!(
            generate_sample_set(dir.path(), &spec),
            Err(SampleError::InvalidSpec(_))
        ));
    }
}
