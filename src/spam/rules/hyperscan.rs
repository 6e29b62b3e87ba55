//! Hyperscan (`libhs`, Debian `libhyperscan-dev`): many regular expressions scanned in one
//! pass over a text, as rspamd scans its rules. The spam engine uses it as a prefilter
//! ([`crate::spam::rules::prefilter`]): a rule runs on its own engine only when Hyperscan reports it.
//!
//! Intel's Hyperscan 5.4.0, not Debian's Vectorscan 5.4.9 (the same API and library name):
//! with Vectorscan, `^\[ [^\]]+ \]$` beside `devnull\S*\@` in one database missed a match
//! on a 117-byte line that Hyperscan and every other engine find. [`self_check`] runs that
//! case before a database is used, and the engine keeps its literal prefilter if it fails.
//!
//! Hand-written bindings to the ten functions used, rather than a crate: the crates that
//! exist either build Vectorscan from source (cmake, Boost, about six minutes and 2 GB per
//! build), need bindgen and libclang at build time, or are unmaintained. Built only when build.rs finds `libhs` (cfg `hyperscan`).

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_ulonglong, c_void};
use std::sync::Mutex;

#[repr(C)]
struct HsDatabase {
    _private: [u8; 0],
}

#[repr(C)]
struct HsScratch {
    _private: [u8; 0],
}

#[repr(C)]
struct HsCompileError {
    message: *const c_char,
    expression: c_int,
}

type MatchHandler = unsafe extern "C" fn(
    id: c_uint,
    from: c_ulonglong,
    to: c_ulonglong,
    flags: c_uint,
    context: *mut c_void,
) -> c_int;

#[link(name = "hs")]
unsafe extern "C" {
    fn hs_compile_multi(
        expressions: *const *const c_char,
        flags: *const c_uint,
        ids: *const c_uint,
        elements: c_uint,
        mode: c_uint,
        platform: *const c_void,
        db: *mut *mut HsDatabase,
        error: *mut *mut HsCompileError,
    ) -> c_int;
    fn hs_free_compile_error(error: *mut HsCompileError) -> c_int;
    fn hs_expression_info(
        expression: *const c_char,
        flags: c_uint,
        info: *mut *mut c_void,
        error: *mut *mut HsCompileError,
    ) -> c_int;
    fn hs_free_database(db: *mut HsDatabase) -> c_int;
    fn hs_alloc_scratch(db: *const HsDatabase, scratch: *mut *mut HsScratch) -> c_int;
    fn hs_free_scratch(scratch: *mut HsScratch) -> c_int;
    fn hs_serialize_database(
        db: *const HsDatabase,
        bytes: *mut *mut c_char,
        length: *mut usize,
    ) -> c_int;
    fn hs_deserialize_database(
        bytes: *const c_char,
        length: usize,
        db: *mut *mut HsDatabase,
    ) -> c_int;
    fn hs_version() -> *const c_char;
    fn hs_scan(
        db: *const HsDatabase,
        data: *const c_char,
        length: c_uint,
        flags: c_uint,
        scratch: *mut HsScratch,
        on_event: Option<MatchHandler>,
        context: *mut c_void,
    ) -> c_int;
}

const HS_SUCCESS: c_int = 0;
const HS_MODE_BLOCK: c_uint = 1;
pub const CASELESS: u32 = 1;
pub const DOTALL: u32 = 2;
pub const MULTILINE: u32 = 4;
pub const SINGLEMATCH: u32 = 8;
pub const ALLOWEMPTY: u32 = 16;

/// A compiled set of patterns, ready to scan from any thread.
pub struct Database {
    db: *mut HsDatabase,
    /// Scratch spaces not in use (one is needed per scan running at the same time).
    scratch: Mutex<Vec<*mut HsScratch>>,
}

// SAFETY: a compiled database is immutable and Vectorscan documents concurrent scans of one
// database as safe, each with its own scratch; scratch spaces are handed out one per scan
// under the mutex and never shared while in use.
unsafe impl Send for Database {}
unsafe impl Sync for Database {}

impl Drop for Database {
    fn drop(&mut self) {
        let scratch = std::mem::take(
            self.scratch
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        // SAFETY: each pointer came from hs_alloc_scratch/hs_compile_multi and is freed once.
        unsafe {
            for s in scratch {
                hs_free_scratch(s);
            }
            hs_free_database(self.db);
        }
    }
}

/// Why a set did not compile: the index of the pattern Vectorscan refused (when it names one)
/// and its message.
#[derive(Debug)]
pub struct CompileError {
    pub pattern: Option<usize>,
    pub message: String,
}

/// Whether Hyperscan parses `pattern` with `flags` and supports what it uses: a check of
/// one pattern in microseconds, where a refusal found by compiling the whole set costs the
/// set's compile time again (the shipped rules' Perl-only patterns made a cold start spend
/// most of its time in failed set compiles). A pattern that passes can still fail in a set
/// (too large, resource limits): compiling the set finds those.
pub fn parses(pattern: &str, flags: u32) -> bool {
    let Ok(source) = CString::new(pattern) else {
        return false;
    };
    let mut info: *mut c_void = std::ptr::null_mut();
    let mut err: *mut HsCompileError = std::ptr::null_mut();
    // SAFETY: `source` is a valid C string; the out-pointers are valid; the library
    // allocates `info` with malloc (its default allocator) and `err` for us to free.
    let rc = unsafe { hs_expression_info(source.as_ptr(), flags, &mut info, &mut err) };
    // SAFETY: each is freed once, by the function the API names for it.
    unsafe {
        if !info.is_null() {
            libc::free(info);
        }
        if !err.is_null() {
            hs_free_compile_error(err);
        }
    }
    rc == HS_SUCCESS
}

impl Database {
    /// Compiles `patterns` (source, flags); pattern `i` reports id `i`.
    pub fn compile(patterns: &[(String, u32)]) -> Result<Database, CompileError> {
        let sources: Vec<CString> = patterns
            .iter()
            .map(|(p, _)| CString::new(p.as_str()))
            .collect::<Result<_, _>>()
            .map_err(|e| CompileError {
                pattern: None,
                message: format!("NUL in a pattern: {e}"),
            })?;
        let ptrs: Vec<*const c_char> = sources.iter().map(|s| s.as_ptr()).collect();
        let flags: Vec<c_uint> = patterns.iter().map(|(_, f)| *f).collect();
        let ids: Vec<c_uint> = (0..patterns.len() as c_uint).collect();
        let mut db: *mut HsDatabase = std::ptr::null_mut();
        let mut err: *mut HsCompileError = std::ptr::null_mut();
        // SAFETY: the three arrays have `patterns.len()` elements and outlive the call; the
        // out-pointers are valid; the error is freed below.
        let rc = unsafe {
            hs_compile_multi(
                ptrs.as_ptr(),
                flags.as_ptr(),
                ids.as_ptr(),
                patterns.len() as c_uint,
                HS_MODE_BLOCK,
                std::ptr::null(),
                &mut db,
                &mut err,
            )
        };
        if rc != HS_SUCCESS {
            let mut e = CompileError {
                pattern: None,
                message: format!("hs_compile_multi failed ({rc})"),
            };
            if !err.is_null() {
                // SAFETY: Vectorscan set `err` to a valid error with a C string message.
                unsafe {
                    let msg = (*err).message;
                    if !msg.is_null() {
                        e.message = CStr::from_ptr(msg).to_string_lossy().into_owned();
                    }
                    e.pattern = usize::try_from((*err).expression).ok();
                    hs_free_compile_error(err);
                }
            }
            return Err(e);
        }
        Self::with_scratch(db).ok_or_else(|| CompileError {
            pattern: None,
            message: "hs_alloc_scratch failed".into(),
        })
    }

    /// Wraps a database just made, with its first scratch space; frees it on failure.
    fn with_scratch(db: *mut HsDatabase) -> Option<Database> {
        let mut scratch: *mut HsScratch = std::ptr::null_mut();
        // SAFETY: db is a valid database; scratch starts null as the API asks.
        if unsafe { hs_alloc_scratch(db, &mut scratch) } != HS_SUCCESS {
            // SAFETY: db came from the library and is not used again.
            unsafe { hs_free_database(db) };
            return None;
        }
        Some(Database {
            db,
            scratch: Mutex::new(vec![scratch]),
        })
    }

    /// The database as bytes that [`Database::deserialize`] turns back into it (on a
    /// machine with the same library version and CPU features).
    pub fn serialize(&self) -> Option<Vec<u8>> {
        let mut bytes: *mut c_char = std::ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: db is valid; the library allocates `bytes` (with malloc, its default
        // allocator) and sets `len`; we copy them and free the buffer once.
        unsafe {
            if hs_serialize_database(self.db, &mut bytes, &mut len) != HS_SUCCESS || bytes.is_null()
            {
                return None;
            }
            let out = std::slice::from_raw_parts(bytes.cast::<u8>(), len).to_vec();
            libc::free(bytes.cast());
            Some(out)
        }
    }

    /// A database from [`Database::serialize`]'s bytes; `None` when the library refuses
    /// them (another version or platform, or damaged bytes: the caller compiles instead).
    pub fn deserialize(bytes: &[u8]) -> Option<Database> {
        let mut db: *mut HsDatabase = std::ptr::null_mut();
        // SAFETY: `bytes` is valid for its length; the library checks its contents (magic,
        // version, platform, CRC) before building the database.
        if unsafe { hs_deserialize_database(bytes.as_ptr().cast(), bytes.len(), &mut db) }
            != HS_SUCCESS
            || db.is_null()
        {
            return None;
        }
        Self::with_scratch(db)
    }

    /// Calls `hit` with the id of each pattern that matches `text` (once per pattern with
    /// `SINGLEMATCH`). `false` when the scan could not run (the caller must then assume every
    /// pattern may match).
    pub fn scan(&self, text: &[u8], hit: &mut dyn FnMut(usize)) -> bool {
        let Ok(len) = c_uint::try_from(text.len()) else {
            return false;
        };
        let taken = self
            .scratch
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let scratch = match taken {
            Some(s) => s,
            None => {
                let mut s: *mut HsScratch = std::ptr::null_mut();
                // SAFETY: db is valid; a null scratch asks for a new one.
                if unsafe { hs_alloc_scratch(self.db, &mut s) } != HS_SUCCESS {
                    return false;
                }
                s
            }
        };
        unsafe extern "C" fn on_match(
            id: c_uint,
            _from: c_ulonglong,
            _to: c_ulonglong,
            _flags: c_uint,
            context: *mut c_void,
        ) -> c_int {
            // SAFETY: `context` is the `&mut &mut dyn FnMut` passed to hs_scan below, alive
            // for the whole scan.
            let hit = unsafe { &mut *(context as *mut &mut dyn FnMut(usize)) };
            hit(id as usize);
            0
        }
        let mut hit = hit;
        // SAFETY: db and scratch are valid, the scratch is ours alone for this call, text is
        // `len` bytes, and the context points at `hit`, which outlives the call.
        let rc = unsafe {
            hs_scan(
                self.db,
                text.as_ptr().cast(),
                len,
                0,
                scratch,
                Some(on_match),
                (&mut hit as *mut &mut dyn FnMut(usize)).cast(),
            )
        };
        self.scratch
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(scratch);
        rc == HS_SUCCESS
    }
}

/// The library's version and build date, as it reports them: part of the on-disk cache's
/// key, so that another libhs never reads databases it did not write.
pub fn version() -> String {
    // SAFETY: hs_version returns a static NUL-terminated string.
    unsafe {
        let v = hs_version();
        if v.is_null() {
            return String::new();
        }
        CStr::from_ptr(v).to_string_lossy().into_owned()
    }
}

/// Does this libhs find what it must? The case Vectorscan 5.4.9 gets wrong (module docs):
/// two patterns in one database, the first must match the line.
pub fn self_check() -> bool {
    let line = b"x\n[ ip=61.50.141.181 rdns= helo=yahoo.com by=dogma.slashnull.org ident= \
envfrom= intl=0 id=g7NGfZZ32185 auth= msa=0 ]\n";
    let Ok(db) = Database::compile(&[
        (r"^\[ [^\]]+ \]$".into(), MULTILINE | SINGLEMATCH),
        (r"devnull\S*\@".into(), MULTILINE | SINGLEMATCH),
    ]) else {
        return false;
    };
    let mut found = false;
    db.scan(line, &mut |id| found |= id == 0) && found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_reports_each_matching_pattern() {
        let db = Database::compile(&[
            ("free\\s+money".into(), CASELESS | SINGLEMATCH),
            ("^viagra$".into(), MULTILINE | SINGLEMATCH),
            ("che+ap".into(), SINGLEMATCH | ALLOWEMPTY),
        ])
        .unwrap();
        let mut seen = Vec::new();
        assert!(db.scan(b"Get FREE  money\nviagra\nnot cheap", &mut |id| {
            seen.push(id)
        }));
        seen.sort();
        assert_eq!(seen, [0, 1, 2]);
        let mut none = Vec::new();
        assert!(db.scan(b"nothing here", &mut |id| none.push(id)));
        assert!(none.is_empty());
        let Err(bad) = Database::compile(&[("ok".into(), 0), ("(unclosed".into(), 0)]) else {
            panic!("an unclosed group compiled");
        };
        assert_eq!(bad.pattern, Some(1), "{}", bad.message);
    }

    #[test]
    fn the_library_passes_its_self_check() {
        assert!(
            self_check(),
            "libhs misses a match: Vectorscan 5.4.9? use libhyperscan-dev"
        );
    }

    #[test]
    fn a_serialized_database_scans_as_the_original() {
        let db = Database::compile(&[("free\\s+money".into(), CASELESS | SINGLEMATCH)]).unwrap();
        let bytes = db.serialize().unwrap();
        let back = Database::deserialize(&bytes).unwrap();
        let mut n = 0;
        assert!(back.scan(b"FREE money", &mut |_| n += 1));
        assert_eq!(n, 1);
        let mut damaged = bytes.clone();
        damaged.truncate(bytes.len() / 2);
        assert!(Database::deserialize(&damaged).is_none());
        assert!(Database::deserialize(b"").is_none());
        assert!(!version().is_empty());
    }

    #[test]
    fn scans_from_many_threads() {
        let db = Database::compile(&[("b+c".into(), SINGLEMATCH)]).unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        let mut n = 0;
                        assert!(db.scan(b"abbbc", &mut |_| n += 1));
                        assert_eq!(n, 1);
                    }
                });
            }
        });
    }
}
