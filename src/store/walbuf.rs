//! SQLite's WAL frames appended with one write per transaction.
//!
//! SQLite writes each WAL frame with two `pwrite`s, its 24-byte header and then its page, so
//! a commit of 20 pages costs 40 system calls, and on ext4 every small write into a page of
//! the file not written yet costs a block reservation and a page of cache of its own. On the
//! benchmark machine 20 frames took 41 µs of CPU written that way over an existing file and
//! 206 µs at the end of a growing one, against 13 µs and 25 µs written at once
//! (`docs/performance.md`, stop 47).
//!
//! This VFS wraps SQLite's default one and changes only WAL files: a write that continues the
//! previous one is kept in memory, and what was kept is written at once when the page of a
//! frame that commits a transaction (its header names the database's size) has been added,
//! so the commit's own write returns its error and SQLite publishes the commit only after it
//! is in the file. Any other use of a WAL file (a read, a sync, its size, a truncation, a file
//! control, closing it) writes what was kept first. Other connections read only frames of
//! published commits, so none reads a frame still held here; frames of a transaction not yet
//! committed (pages spilled from a full cache) are kept until one of the above, or until the
//! connection next takes or lets go of a lock of the WAL's index (through its database
//! file), as SQLite would have written them: they count for nothing until their commit frame
//! follows. So a transaction that rolls back after spilling has its frames written before it
//! lets go of the write lock, never over the frames of a writer that comes after it.
//! Database files otherwise keep the default VFS's methods; journals and other files are
//! the default VFS's own.
//!
//! A WAL file also grows a mebibyte of zeros at a time (`grow_for`), ahead of the frames: a
//! frame then lands inside the file, and the `fdatasync` that makes it durable
//! (`durability::WalSync`) has no new length or newly allocated blocks to record.

use rusqlite::ffi;
use std::ffi::{c_int, c_void, CStr};
use std::sync::OnceLock;

/// The VFS's name (registered as the default, so every connection of the process uses it).
const NAME: &CStr = c"warbler-wal";
/// A WAL frame's header; its bytes 4–7 are the database's size in pages after a commit, 0 in
/// a frame that does not commit.
const FRAME_HEADER: usize = 24;
/// Most bytes kept (30 frames of 4 KiB pages): more are written first. The default VFS writes
/// at most 128 KiB - 1 per call (and reports the rest as a full disk), and a buffer of one
/// size, kept for the file's life, costs no allocation per transaction.
const MAX_KEPT: usize = 0x1f000;
/// A WAL file grows by this much at a time, in zeros (`grow_for`). Larger steps showed no gain
/// and made the sync that first writes them slow enough to show in the API's p99
/// (`docs/performance.md`, stop 49).
const GROW_CHUNK: i64 = 1 << 20;
/// Zeros to grow a WAL file with, written this many at a time.
static ZEROS: [u8; 0x10000] = [0; 0x10000];

/// What a WAL file keeps, placed after the default VFS's own file structure.
struct Kept {
    /// The default VFS's methods for this file.
    inner: *const ffi::sqlite3_io_methods,
    /// Where `bytes` start in the file.
    start: i64,
    bytes: Vec<u8>,
    /// The last write was the header of a frame that commits: its page comes next.
    commit_page_next: bool,
    /// A WAL file's database file, or a database file's WAL file, once both are open (the
    /// same connection's: each connection has its own of both).
    linked: *mut ffi::sqlite3_file,
    /// How long the WAL file was (zeros past the last frame included) when this handle last
    /// looked or made it longer; 0 when not known.
    known_length: i64,
}

/// Pointers SQLite owns for the life of the process, shared read-only between threads.
struct Registered {
    inner_vfs: *mut ffi::sqlite3_vfs,
    /// The default VFS's methods for WAL files, and this VFS's in their place.
    methods: OnceLock<(usize, &'static ffi::sqlite3_io_methods)>,
    /// The same for database files.
    database_methods: OnceLock<(usize, &'static ffi::sqlite3_io_methods)>,
    /// Open database files by the name SQLite opened them with (a pointer each connection
    /// owns, which the name of its WAL file leads back to), so a WAL file finds its own.
    databases: std::sync::Mutex<std::collections::HashMap<usize, usize>>,
}

// SAFETY: the pointers are set once, before the VFS is registered, and only read after.
unsafe impl Send for Registered {}
unsafe impl Sync for Registered {}

static REGISTERED: OnceLock<Option<Registered>> = OnceLock::new();

// For tests, counted on the thread that uses the connection: writes SQLite asked of WAL
// files, writes made of them, and bytes kept and not written yet.
#[cfg(test)]
thread_local! {
    static ASKED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static MADE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static PENDING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Registers the VFS as the process's default, once. Returns whether it is in use: if SQLite
/// has no default VFS to wrap, connections keep SQLite's own.
pub(crate) fn register() -> bool {
    static REGISTRATION: OnceLock<bool> = OnceLock::new();
    *REGISTRATION.get_or_init(|| {
        // What `open` needs is in place before any connection can reach it.
        let Some(registered) = REGISTERED.get_or_init(wrap_default).as_ref() else {
            return false;
        };
        // SAFETY: `inner_vfs` is SQLite's registered default VFS, which lives as long as the
        // process; the structure registered is leaked, so it outlives every connection.
        unsafe {
            let inner = registered.inner_vfs;
            let mut ours = *inner;
            ours.zName = NAME.as_ptr();
            ours.pNext = std::ptr::null_mut();
            let Some(size) = c_int::try_from(kept_offset((*inner).szOsFile))
                .ok()
                .zip(c_int::try_from(std::mem::size_of::<Kept>()).ok())
                .and_then(|(offset, kept)| offset.checked_add(kept))
            else {
                return false;
            };
            ours.szOsFile = size;
            ours.xOpen = Some(open);
            let ours: &'static mut ffi::sqlite3_vfs = Box::leak(Box::new(ours));
            ffi::sqlite3_vfs_register(ours, 1) == ffi::SQLITE_OK
        }
    })
}

/// SQLite's default VFS, to wrap: `None` if there is none, or it is this one already.
fn wrap_default() -> Option<Registered> {
    // SAFETY: `sqlite3_initialize` and `sqlite3_vfs_find` are thread-safe.
    unsafe {
        if ffi::sqlite3_initialize() != ffi::SQLITE_OK {
            return None;
        }
        let inner = ffi::sqlite3_vfs_find(std::ptr::null());
        if inner.is_null() || CStr::from_ptr((*inner).zName) == NAME {
            return None;
        }
        Some(Registered {
            inner_vfs: inner,
            methods: OnceLock::new(),
            database_methods: OnceLock::new(),
            databases: std::sync::Mutex::default(),
        })
    }
}

/// Where `Kept` starts in a file structure whose default part is `inner_size` bytes.
fn kept_offset(inner_size: c_int) -> usize {
    usize::try_from(inner_size)
        .unwrap_or(0)
        .next_multiple_of(std::mem::align_of::<Kept>())
}

fn registered() -> &'static Registered {
    match REGISTERED.get() {
        Some(Some(registered)) => registered,
        // `open` is reachable only through the VFS, registered after this was set.
        _ => unreachable!("the WAL VFS is used before it was set up"),
    }
}

/// # Safety
/// `file` is a WAL or database file this VFS opened, gave its methods and has not closed.
unsafe fn kept<'a>(file: *mut ffi::sqlite3_file) -> &'a mut Kept {
    let inner_size = (*registered().inner_vfs).szOsFile;
    &mut *file
        .cast::<u8>()
        .add(kept_offset(inner_size))
        .cast::<Kept>()
}

/// The methods for a WAL file whose default methods are `inner`: the default ones with the
/// writes kept. `None` for files of another kind of default methods than the first WAL
/// file's (another locking style): those are left as they are.
fn wal_methods(inner: *const ffi::sqlite3_io_methods) -> Option<&'static ffi::sqlite3_io_methods> {
    let (first, ours) = registered().methods.get_or_init(|| {
        // SAFETY: `inner` is the methods table SQLite's default VFS just gave a file; such
        // tables are static.
        let mut ours = unsafe { *inner };
        ours.xClose = Some(close);
        ours.xRead = Some(read);
        ours.xWrite = Some(write);
        ours.xTruncate = Some(truncate);
        ours.xSync = Some(sync);
        ours.xFileSize = Some(file_size);
        ours.xFileControl = Some(file_control);
        (inner as usize, Box::leak(Box::new(ours)))
    });
    (*first == inner as usize).then_some(*ours)
}

/// `wal_methods` for database files: the default ones, with the WAL's kept frames written
/// before any lock of the WAL's index is taken or let go.
fn database_methods(
    inner: *const ffi::sqlite3_io_methods,
) -> Option<&'static ffi::sqlite3_io_methods> {
    let (first, ours) = registered().database_methods.get_or_init(|| {
        // SAFETY: as in `wal_methods`.
        let mut ours = unsafe { *inner };
        ours.xClose = Some(close_database);
        if ours.iVersion >= 2 {
            ours.xShmLock = Some(shm_lock);
        }
        (inner as usize, Box::leak(Box::new(ours)))
    });
    (*first == inner as usize && ours.iVersion >= 2).then_some(*ours)
}

fn databases() -> std::sync::MutexGuard<'static, std::collections::HashMap<usize, usize>> {
    registered()
        .databases
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let inner_vfs = registered().inner_vfs;
    let Some(inner_open) = (*inner_vfs).xOpen else {
        return ffi::SQLITE_ERROR;
    };
    let rc = inner_open(inner_vfs, name, file, flags, out_flags);
    if rc != ffi::SQLITE_OK || (*file).pMethods.is_null() || name.is_null() {
        return rc;
    }
    let inner = (*file).pMethods;
    let at = file
        .cast::<u8>()
        .add(kept_offset((*inner_vfs).szOsFile))
        .cast::<Kept>();
    let kept = |linked| Kept {
        inner,
        start: 0,
        bytes: Vec::new(),
        commit_page_next: false,
        linked,
        known_length: 0,
    };
    if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
        if let Some(ours) = database_methods(inner) {
            at.write(kept(std::ptr::null_mut()));
            (*file).pMethods = ours;
            databases().insert(name as usize, file as usize);
        }
    } else if flags & ffi::SQLITE_OPEN_WAL != 0 {
        let database = databases()
            .get(&(ffi::sqlite3_filename_database(name) as usize))
            .copied();
        // Only a WAL file whose connection's database file can write its frames before the
        // WAL's index changes hands keeps them.
        if let (Some(ours), Some(database)) = (wal_methods(inner), database) {
            let database = database as *mut ffi::sqlite3_file;
            at.write(kept(database));
            (*file).pMethods = ours;
            self::kept(database).linked = file;
        }
    }
    rc
}

unsafe extern "C" fn shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    count: c_int,
    flags: c_int,
) -> c_int {
    let kept = kept(file);
    if !kept.linked.is_null() {
        let rc = write_kept(kept.linked);
        // Letting go goes on whatever happened: the frames were written or are gone.
        if rc != ffi::SQLITE_OK && flags & ffi::SQLITE_SHM_UNLOCK == 0 {
            return rc;
        }
    }
    match (*kept.inner).xShmLock {
        Some(inner_lock) => inner_lock(file, offset, count, flags),
        None => ffi::SQLITE_IOERR_SHMLOCK,
    }
}

unsafe extern "C" fn close_database(file: *mut ffi::sqlite3_file) -> c_int {
    let kept = kept(file);
    databases().retain(|_, open| *open != file as usize);
    if !kept.linked.is_null() {
        self::kept(kept.linked).linked = std::ptr::null_mut();
    }
    let inner = kept.inner;
    std::ptr::drop_in_place(kept);
    match (*inner).xClose {
        Some(inner_close) => inner_close(file),
        None => ffi::SQLITE_OK,
    }
}

/// Makes the WAL file at least `end` bytes long before frames are written up to there: when
/// it is shorter, zeros take it to the next multiple of `GROW_CHUNK`, so the frames that follow
/// land in place without changing the file's size, and a sync of them need not write the
/// file's metadata (PostgreSQL fills its WAL segments with zeros for the same reason).
/// The writer holds SQLite's WAL write lock, so no other handle changes the length meanwhile;
/// it is read again before growing, as another connection's handle may have grown it.
/// Zeros past the last frame read as no frame (as stale frames after a restart of the WAL
/// do). Growing is only a help: if it fails (a full disk), the frames are written as they
/// would have been.
///
/// # Safety
/// As `kept`.
unsafe fn grow_for(file: *mut ffi::sqlite3_file, end: i64) {
    let kept = kept(file);
    if end <= kept.known_length {
        return;
    }
    let (Some(inner_size), Some(inner_write)) = ((*kept.inner).xFileSize, (*kept.inner).xWrite)
    else {
        return;
    };
    let mut length: i64 = 0;
    if inner_size(file, &mut length) != ffi::SQLITE_OK {
        return;
    }
    if end <= length {
        kept.known_length = length;
        return;
    }
    let target = end.saturating_add(GROW_CHUNK - 1) / GROW_CHUNK * GROW_CHUNK;
    let mut at = length;
    while at < target {
        // At most `ZEROS`' length, which fits in a `c_int`.
        let piece = (target - at).min(ZEROS.len() as i64) as c_int;
        if inner_write(file, ZEROS.as_ptr().cast(), piece, at) != ffi::SQLITE_OK {
            kept.known_length = 0;
            return;
        }
        at += i64::from(piece);
    }
    kept.known_length = target;
}

/// Writes what `file` kept, if anything.
///
/// # Safety
/// As `kept`.
unsafe fn write_kept(file: *mut ffi::sqlite3_file) -> c_int {
    let kept = kept(file);
    if kept.bytes.is_empty() {
        return ffi::SQLITE_OK;
    }
    let Some(inner_write) = (*kept.inner).xWrite else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    #[cfg(test)]
    MADE.set(MADE.get() + 1);
    // Fits: at most `MAX_KEPT` bytes are kept.
    let length = c_int::try_from(kept.bytes.len()).unwrap_or(c_int::MAX);
    grow_for(file, kept.start + i64::from(length));
    let kept = self::kept(file);
    let rc = inner_write(file, kept.bytes.as_ptr().cast(), length, kept.start);
    // Written or failed, the bytes are done with: a failure fails the transaction they
    // belong to, which SQLite then rolls back.
    #[cfg(test)]
    PENDING.set(PENDING.get().saturating_sub(kept.bytes.len()));
    kept.bytes.clear();
    rc
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    buffer: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let Ok(length) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    #[cfg(test)]
    ASKED.set(ASKED.get() + 1);
    let bytes = std::slice::from_raw_parts(buffer.cast::<u8>(), length);
    let kept_ref = kept(file);
    let continues = !kept_ref.bytes.is_empty()
        && i64::try_from(kept_ref.bytes.len())
            .ok()
            .and_then(|len| kept_ref.start.checked_add(len))
            == Some(offset);
    if !continues || kept_ref.bytes.len() + length > MAX_KEPT {
        let rc = write_kept(file);
        if rc != ffi::SQLITE_OK {
            kept(file).commit_page_next = false;
            return rc;
        }
    }
    let kept = kept(file);
    if length > MAX_KEPT {
        // Larger than any page: written as it is.
        kept.commit_page_next = false;
        grow_for(file, offset + i64::from(amount));
        let kept = self::kept(file);
        return match (*kept.inner).xWrite {
            Some(inner_write) => inner_write(file, buffer, amount, offset),
            None => ffi::SQLITE_IOERR_WRITE,
        };
    }
    if kept.bytes.capacity() == 0 {
        kept.bytes.reserve_exact(MAX_KEPT);
    }
    if kept.bytes.is_empty() {
        kept.start = offset;
    }
    kept.bytes.extend_from_slice(bytes);
    #[cfg(test)]
    PENDING.set(PENDING.get() + bytes.len());
    let ends_commit = kept.commit_page_next;
    kept.commit_page_next = length == FRAME_HEADER && bytes[4..8] != [0, 0, 0, 0];
    if ends_commit {
        return write_kept(file);
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    buffer: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let rc = write_kept(file);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    match (*kept(file).inner).xRead {
        Some(inner_read) => inner_read(file, buffer, amount, offset),
        None => ffi::SQLITE_IOERR_READ,
    }
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    let rc = write_kept(file);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    kept(file).known_length = 0;
    match (*kept(file).inner).xTruncate {
        Some(inner_truncate) => inner_truncate(file, size),
        None => ffi::SQLITE_IOERR_TRUNCATE,
    }
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    let rc = write_kept(file);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    match (*kept(file).inner).xSync {
        Some(inner_sync) => inner_sync(file, flags),
        None => ffi::SQLITE_IOERR_FSYNC,
    }
}

unsafe extern "C" fn file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    let rc = write_kept(file);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    match (*kept(file).inner).xFileSize {
        Some(inner_size) => inner_size(file, size),
        None => ffi::SQLITE_IOERR_FSTAT,
    }
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    argument: *mut c_void,
) -> c_int {
    let rc = write_kept(file);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    match (*kept(file).inner).xFileControl {
        Some(inner_control) => inner_control(file, op, argument),
        None => ffi::SQLITE_NOTFOUND,
    }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    let written = write_kept(file);
    let kept = kept(file);
    if !kept.linked.is_null() {
        self::kept(kept.linked).linked = std::ptr::null_mut();
    }
    let inner = kept.inner;
    std::ptr::drop_in_place(kept);
    // The default VFS closes its own part (and may clear it); ours is gone already.
    let closed = match (*inner).xClose {
        Some(inner_close) => inner_close(file),
        None => ffi::SQLITE_OK,
    };
    if written != ffi::SQLITE_OK {
        written
    } else {
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::{register, ASKED, GROW_CHUNK, MADE, PENDING};
    use rusqlite::Connection;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("warbler-walbuf-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn open(path: &std::path::Path) -> Connection {
        let connection = Connection::open(path).unwrap();
        connection
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0",
            )
            .unwrap();
        connection
    }

    fn rows(connection: &Connection) -> (i64, i64) {
        connection
            .query_row("SELECT COUNT(*), COALESCE(SUM(n), 0) FROM t", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap()
    }

    /// A commit of many pages reaches the WAL in a few writes, and another connection reads
    /// all of it at once.
    #[test]
    fn a_commit_reaches_the_wal_in_a_few_writes_and_is_read_whole() {
        assert!(register());
        let dir = temp_dir("commit");
        let path = dir.join("wal.db");
        let writer = open(&path);
        let reader = open(&path);
        writer
            .execute_batch("CREATE TABLE t (n INTEGER, pad TEXT); CREATE INDEX t_n ON t (n)")
            .unwrap();
        for round in 0..5_i64 {
            let (asked, made) = (ASKED.get(), MADE.get());
            writer.execute_batch("BEGIN").unwrap();
            for n in 0..1_000 {
                writer
                    .execute(
                        "INSERT INTO t VALUES (?1, printf('%.200c', 'x'))",
                        [round * 1_000 + n],
                    )
                    .unwrap();
            }
            writer.execute_batch("COMMIT").unwrap();
            let asked = ASKED.get() - asked;
            let made = MADE.get() - made;
            assert!(asked >= 100, "SQLite wrote {asked} times");
            assert!(made * 10 <= asked, "{made} writes made of {asked}");
            let count = (round + 1) * 1_000;
            assert_eq!(rows(&reader), (count, count * (count - 1) / 2));
        }
        drop((writer, reader));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Pages a transaction spilled to the WAL before it rolled back leave nothing behind: the
    /// next writer's frames, written where the spilled ones were, are read right, also after
    /// the first writer uses the WAL again, and the database is whole when opened again.
    #[test]
    fn a_rolled_back_transaction_that_spilled_pages_leaves_nothing_behind() {
        assert!(register());
        let dir = temp_dir("spill");
        let path = dir.join("spill.db");
        {
            let first = open(&path);
            let second = open(&path);
            let reader = open(&path);
            first
                .execute_batch(
                    "PRAGMA cache_size=10; CREATE TABLE t (n INTEGER, pad TEXT); \
                     INSERT INTO t VALUES (1, 'a')",
                )
                .unwrap();
            first.execute_batch("BEGIN").unwrap();
            for n in 0..3_000 {
                first
                    .execute("INSERT INTO t VALUES (?1, printf('%.300c', 'y'))", [n])
                    .unwrap();
            }
            // The reader still sees the one committed row, whatever was spilled.
            assert_eq!(rows(&reader), (1, 1));
            assert!(PENDING.get() > 0, "spilled frames are kept");
            first.execute_batch("ROLLBACK").unwrap();
            assert_eq!(PENDING.get(), 0, "written before the write lock is let go");
            second.execute_batch("BEGIN").unwrap();
            for n in 2..500 {
                second
                    .execute("INSERT INTO t VALUES (?1, printf('%.300c', 'z'))", [n])
                    .unwrap();
            }
            second.execute_batch("COMMIT").unwrap();
            let expected = (499, (1..500).sum::<i64>());
            assert_eq!(rows(&reader), expected);
            // The first writer reads and writes again: nothing of its rolled-back
            // transaction lands on the second's frames.
            assert_eq!(rows(&first), expected);
            first
                .execute_batch("INSERT INTO t VALUES (500, 'b')")
                .unwrap();
            assert_eq!(rows(&reader), (500, expected.1 + 500));
        }
        let again = open(&path);
        assert_eq!(rows(&again), (500, (1..=500).sum::<i64>()));
        let check: String = again
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Two writers take turns growing the WAL, each by more than a step per transaction (so
    /// each finds the file grown by the other since it last looked): it grows in zeroed steps,
    /// neither writer's zeros land on the other's frames, and a copy of the files taken while
    /// both are open (what a crash leaves, no checkpoint run) opens with every committed row.
    #[test]
    fn the_wal_grows_in_zeroed_steps_and_a_crash_copy_opens_whole() {
        assert!(register());
        let dir = temp_dir("grow");
        let path = dir.join("grow.db");
        let wal = dir.join("grow.db-wal");
        let first = open(&path);
        let second = open(&path);
        let reader = open(&path);
        first
            .execute_batch("CREATE TABLE t (n INTEGER, pad TEXT)")
            .unwrap();
        let mut n = 0;
        let mut lengths = Vec::new();
        for round in 0..24 {
            let writer = if round % 2 == 0 { &first } else { &second };
            writer.execute_batch("BEGIN").unwrap();
            for _ in 0..3_500 {
                writer
                    .execute("INSERT INTO t VALUES (?1, printf('%.300c', 'w'))", [n])
                    .unwrap();
                n += 1;
            }
            writer.execute_batch("COMMIT").unwrap();
            let length = std::fs::metadata(&wal).unwrap().len() as i64;
            assert_eq!(length % GROW_CHUNK, 0, "round {round}: {length} bytes");
            lengths.push(length);
        }
        assert!(
            lengths.last() > lengths.first(),
            "the WAL grew over several steps: {lengths:?}"
        );
        let expected = (n, (0..n).sum::<i64>());
        assert_eq!(rows(&reader), expected);
        let crashed = dir.join("crashed.db");
        std::fs::copy(&path, &crashed).unwrap();
        std::fs::copy(&wal, dir.join("crashed.db-wal")).unwrap();
        let again = open(&crashed);
        assert_eq!(rows(&again), expected);
        let check: String = again
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        drop((first, second, reader, again));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
