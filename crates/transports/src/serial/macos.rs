//! Serial ports on macOS: kqueue for a device coming back, `/dev/cu.*` for the list of ports.
//!
//! What macOS does not offer is said, not faked: stick (mark/space) parity is refused, and a
//! port held by another program is refused by the kernel (TIOCEXCL, "resource busy") without
//! naming the holder.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::PortInfo;

/// Mark and space parity need CMSPAR, which macOS's termios lacks.
pub(super) fn set_stick_parity(_fd: &OwnedFd) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "mark and space parity are not available on macOS"))
}

/// Naming another holder would need the process table's open files (libproc); the exclusive
/// open still refuses a held port.
pub(super) fn other_holder(_device: &Path) -> Option<String> {
    None
}

/// A kqueue watch for writes (entries created, removed or renamed) on one directory.
pub(super) struct DirWatch {
    queue: tokio::io::unix::AsyncFd<OwnedFd>,
    _dir: OwnedFd,
}

impl DirWatch {
    pub(super) fn new(dir: &Path) -> io::Result<DirWatch> {
        use std::os::unix::ffi::OsStrExt;
        let c_dir = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
        // SAFETY: a NUL-terminated path; open returns a new descriptor or -1.
        let raw = unsafe { libc::open(c_dir.as_ptr(), libc::O_EVTONLY | libc::O_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let dir_fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: kqueue returns a new descriptor or -1.
        let raw = unsafe { libc::kqueue() };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above.
        let queue = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: a zeroed kevent is a valid value; the fields that matter are set below.
        let mut change: libc::kevent = unsafe { std::mem::zeroed() };
        change.ident = dir_fd.as_raw_fd() as usize;
        change.filter = libc::EVFILT_VNODE;
        change.flags = libc::EV_ADD | libc::EV_CLEAR;
        change.fflags = libc::NOTE_WRITE | libc::NOTE_ATTRIB | libc::NOTE_DELETE | libc::NOTE_RENAME;
        // SAFETY: one change from a kevent we own, no events asked back.
        let rc = unsafe { libc::kevent(queue.as_raw_fd(), &change, 1, std::ptr::null_mut(), 0, std::ptr::null()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // A kqueue descriptor is readable while events are pending, so the runtime can wait on it.
        // SAFETY: the AsyncFd owns the descriptor for as long as it is registered.
        let queue =
            unsafe { tokio::io::unix::AsyncFd::register(queue) }.map_err(|e| io::Error::other(e.to_string()))?;
        Ok(DirWatch { queue, _dir: dir_fd })
    }

    /// Waits for the next event (and drains the queue).
    pub(super) async fn changed(&self) -> io::Result<()> {
        let now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        loop {
            let mut guard = self.queue.readable().await?;
            // SAFETY: as above.
            let mut events: [libc::kevent; 8] = unsafe { std::mem::zeroed() };
            // SAFETY: a buffer of 8 kevents we own, and a zero timeout (never blocks).
            let n = unsafe {
                libc::kevent(self.queue.get_ref().as_raw_fd(), std::ptr::null(), 0, events.as_mut_ptr(), 8, &now)
            };
            if n > 0 {
                return Ok(());
            }
            guard.clear_ready();
        }
    }
}

/// The callout devices (`/dev/cu.*`), which are what a terminal program opens on macOS.
pub fn list_ports() -> Vec<PortInfo> {
    let mut out: Vec<PortInfo> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("cu.").then(|| PortInfo {
                device: format!("/dev/{name}"),
                by_id: Vec::new(),
                driver: None,
                usb: None,
            })
        })
        .collect();
    out.sort_by(|a, b| a.device.cmp(&b.device));
    out
}
