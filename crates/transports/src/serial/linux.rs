//! Serial ports on Linux: inotify for a device coming back, `/proc` for who holds a port, CMSPAR
//! for stick parity, `/sys/class/tty` and `/dev/serial/by-id` for the list of ports.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{PortInfo, UsbInfo};

/// Stick parity: with CMSPAR the odd/even choice means mark/space.
pub(super) fn set_stick_parity(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: tcgetattr/tcsetattr with a termios we own, on a descriptor we own.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd.as_raw_fd(), &mut t) != 0 {
            return Err(io::Error::last_os_error());
        }
        t.c_cflag |= libc::CMSPAR;
        if libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &t) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether `device` is a Unix98 pseudo-terminal slave (majors 136-143).
fn is_pseudo_terminal(device: &Path) -> bool {
    std::fs::metadata(device).is_ok_and(|m| (136..=143).contains(&libc::major(m.rdev())))
}

/// Another process holding the device open, as "pid N (name)". A pseudo-terminal is always
/// held by the program that created it (socat, a simulator), so only real devices are checked.
pub(super) fn other_holder(device: &Path) -> Option<String> {
    if is_pseudo_terminal(device) {
        return None;
    }
    let rdev = std::fs::metadata(device).ok()?.rdev();
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            if std::fs::metadata(fd.path()).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == rdev) {
                let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                return Some(format!("pid {pid} ({})", name.trim()));
            }
        }
    }
    None
}

/// One inotify watch for creations, renames and attribute changes in a directory.
pub(super) struct DirWatch {
    fd: tokio::io::unix::AsyncFd<OwnedFd>,
}

impl DirWatch {
    pub(super) fn new(dir: &Path) -> io::Result<DirWatch> {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: inotify_init1 returns a new descriptor or -1.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let c_dir = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
        let mask = libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_ATTRIB | libc::IN_DELETE_SELF;
        // SAFETY: a valid descriptor and a NUL-terminated path.
        if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c_dir.as_ptr(), mask) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the AsyncFd owns the descriptor for as long as it is registered.
        let fd = unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(|e| io::Error::other(e.to_string()))?;
        Ok(DirWatch { fd })
    }

    /// Waits for the next event (and drains the queue).
    pub(super) async fn changed(&self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut buf = [0u8; 4096];
            // SAFETY: reading into a buffer we own.
            let n = unsafe { libc::read(self.fd.get_ref().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                return Ok(());
            }
            guard.clear_ready();
        }
    }
}

/// The serial ports present: ttys with a real device behind them (not virtual consoles).
pub fn list_ports() -> Vec<PortInfo> {
    let by_id: Vec<(String, PathBuf)> = std::fs::read_dir("/dev/serial/by-id")
        .map(|d| {
            d.flatten()
                .filter_map(|e| Some((e.path().display().to_string(), std::fs::canonicalize(e.path()).ok()?)))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    let Ok(ttys) = std::fs::read_dir("/sys/class/tty") else { return out };
    for tty in ttys.flatten() {
        let sys = tty.path();
        let Ok(device) = std::fs::canonicalize(sys.join("device")) else { continue };
        let driver = std::fs::read_link(device.join("driver"))
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()));
        // Legacy 8250 ports exist on every PC whether wired or not; list them only if they look real.
        let name = tty.file_name().to_string_lossy().into_owned();
        if driver.as_deref() == Some("serial8250")
            && std::fs::read_to_string(sys.join("irq")).is_ok_and(|irq| irq.trim() == "0")
        {
            continue;
        }
        let dev = PathBuf::from("/dev").join(&name);
        let usb = device.ancestors().find(|a| a.join("idVendor").exists()).map(|a| {
            let read = |f: &str| std::fs::read_to_string(a.join(f)).ok().map(|s| s.trim().to_string());
            UsbInfo {
                vendor_id: read("idVendor"),
                product_id: read("idProduct"),
                serial: read("serial"),
                manufacturer: read("manufacturer"),
                product: read("product"),
            }
        });
        out.push(PortInfo {
            device: dev.display().to_string(),
            by_id: by_id.iter().filter(|(_, target)| *target == dev).map(|(link, _)| link.clone()).collect(),
            driver,
            usb,
        });
    }
    out.sort_by(|a, b| a.device.cmp(&b.device));
    out
}
