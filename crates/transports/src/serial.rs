//! Serial consoles (routers, switches, embedded boards) through `serial2-tokio`.
//!
//! A pump task owns the port: it copies the device's output to the session and the session's
//! input to the device. When the device disappears (a USB adapter unplugged) the session is told
//! in its output and in its state (`disconnected`, with the reason); with `reconnect` the pump
//! waits (inotify on Linux, kqueue on macOS; no polling) for the same path to come back, reopens
//! it with the same settings, and carries on in the same transcript.
//!
//! What differs by system (the directory watch, finding another holder of a port, stick parity,
//! listing ports) lives in `serial/linux.rs` and `serial/macos.rs`.

#[cfg(target_os = "linux")]
#[path = "serial/linux.rs"]
mod sys;
#[cfg(target_os = "macos")]
#[path = "serial/macos.rs"]
mod sys;

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::transport::{Connection, Control, Exit};
use serial2_tokio::SerialPort;
use serial2_tokio::{CharSize, FlowControl, Parity, Settings, StopBits};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Line settings of a serial session.
#[derive(Debug, Clone)]
pub struct SerialOptions {
    /// The device path (`/dev/ttyUSB0`, `/dev/serial/by-id/...`, a pseudo-terminal).
    pub path: PathBuf,
    /// Bits per second.
    pub baud: u32,
    /// 5 to 8.
    pub data_bits: u8,
    /// none, odd, even, mark, space.
    pub parity: ParityMode,
    /// 1 or 2.
    pub stop_bits: u8,
    /// none, software (XON/XOFF), hardware (RTS/CTS).
    pub flow: FlowMode,
    /// Initial DTR level, when set.
    pub dtr: Option<bool>,
    /// Initial RTS level, when set.
    pub rts: Option<bool>,
    /// Refuse a device another program holds, and keep others out while open.
    pub exclusive: bool,
    /// Reopen the device when it comes back after disappearing.
    pub reconnect: bool,
}

/// Parity, including the mark and space modes old equipment uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParityMode {
    /// No parity bit.
    None,
    /// Odd parity.
    Odd,
    /// Even parity.
    Even,
    /// Parity bit always 1.
    Mark,
    /// Parity bit always 0.
    Space,
}

/// Flow control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowMode {
    /// None.
    None,
    /// XON/XOFF.
    Software,
    /// RTS/CTS.
    Hardware,
}

/// Why a serial device could not be opened; the message says what to do.
#[derive(Debug)]
pub struct OpenError(pub String);

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OpenError {}

/// Checks that `path` names a character device, following links (`/dev/serial/by-id/...`)
/// but not being fooled by `..` into opening something else.
pub fn validate(path: &Path) -> Result<PathBuf, OpenError> {
    let shown = path.display();
    let real = std::fs::canonicalize(path).map_err(|e| OpenError(format!("{shown}: {}", describe(&e))))?;
    let meta = std::fs::metadata(&real).map_err(|e| OpenError(format!("{shown}: {}", describe(&e))))?;
    if !meta.file_type().is_char_device() {
        return Err(OpenError(format!("{shown} ({}) is not a character device", real.display())));
    }
    Ok(real)
}

fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such device (is it plugged in? list_serial_ports shows what is present)".into(),
        io::ErrorKind::PermissionDenied => {
            "permission denied: add the user running pty-mcp to the dialout group (sudo usermod -aG dialout $USER, then log in again)".into()
        }
        _ => e.to_string(),
    }
}

/// Opens the device with `opts` and starts the pump.
///
/// # Errors
/// When the path is not a usable character device, another program holds it (`exclusive`), or
/// the settings are refused.
pub fn open(opts: SerialOptions) -> Result<Connection, OpenError> {
    let port = Port::open(&opts)?;
    let (session_side, pump_side) = tokio::io::duplex(64 << 10);
    let (reader, writer) = tokio::io::split(session_side);
    let link = Arc::new(Link {
        port: Mutex::new(Some(port.shared.clone())),
        problem: Mutex::new(None),
        pump: Mutex::new(None),
    });
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let pump = tokio::spawn(pump(opts, port, pump_side, link.clone(), done_tx));
    *link.pump.lock().unwrap_or_else(|e| e.into_inner()) = Some(pump);
    Ok(Connection {
        reader: Box::pin(reader),
        writer: Box::pin(writer),
        control: link,
        exited: Box::pin(async move {
            let _ = done_rx.await;
            Some(Exit { code: None, signal: None })
        }),
        shell_token: None,
        link: None,
    })
}

/// An open port: the async port, and a plain descriptor for what `serial2` does not offer
/// (exclusive use, mark/space parity).
struct Port {
    shared: Arc<SerialPort>,
    _guard: OwnedFd,
}

impl Port {
    fn open(opts: &SerialOptions) -> Result<Port, OpenError> {
        let real = validate(&opts.path)?;
        let shown = opts.path.display();
        if opts.exclusive
            && let Some(holder) = sys::other_holder(&real)
        {
            return Err(OpenError(format!("{shown} is in use by {holder}; close it there, or pass exclusive:false")));
        }
        let settings = |mut s: Settings| -> io::Result<Settings> {
            s.set_raw();
            s.set_baud_rate(opts.baud)?;
            s.set_char_size(match opts.data_bits {
                5 => CharSize::Bits5,
                6 => CharSize::Bits6,
                7 => CharSize::Bits7,
                _ => CharSize::Bits8,
            });
            s.set_stop_bits(if opts.stop_bits == 2 { StopBits::Two } else { StopBits::One });
            s.set_parity(match opts.parity {
                ParityMode::Odd | ParityMode::Mark => Parity::Odd,
                ParityMode::Even | ParityMode::Space => Parity::Even,
                ParityMode::None => Parity::None,
            });
            s.set_flow_control(match opts.flow {
                FlowMode::None => FlowControl::None,
                FlowMode::Software => FlowControl::XonXoff,
                FlowMode::Hardware => FlowControl::RtsCts,
            });
            Ok(s)
        };
        let port = SerialPort::open(&real, settings).map_err(|e| OpenError(format!("{shown}: {}", describe(&e))))?;
        let guard = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&real)
            .map_err(|e| OpenError(format!("{shown}: {}", describe(&e))))?;
        let guard: OwnedFd = guard.into();
        if matches!(opts.parity, ParityMode::Mark | ParityMode::Space) {
            // "Stick" parity: the odd/even choice above then means mark/space.
            sys::set_stick_parity(&guard)
                .map_err(|e| OpenError(format!("{shown}: cannot set {:?} parity: {e}", opts.parity)))?;
        }
        if opts.exclusive {
            // SAFETY: ioctl on a descriptor we own; TIOCEXCL takes no argument.
            unsafe { libc::ioctl(guard.as_raw_fd(), libc::TIOCEXCL as _) };
        }
        if let Some(dtr) = opts.dtr {
            port.set_dtr(dtr).map_err(|e| OpenError(format!("{shown}: cannot set DTR: {e}")))?;
        }
        if let Some(rts) = opts.rts {
            port.set_rts(rts).map_err(|e| OpenError(format!("{shown}: cannot set RTS: {e}")))?;
        }
        Ok(Port { shared: Arc::new(port), _guard: guard })
    }
}

/// The control side: break, and what went wrong with the link.
struct Link {
    port: Mutex<Option<Arc<SerialPort>>>,
    problem: Mutex<Option<String>>,
    pump: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Link {
    fn set_problem(&self, problem: Option<String>) {
        *self.problem.lock().unwrap_or_else(|e| e.into_inner()) = problem;
    }

    fn set_port(&self, port: Option<Arc<SerialPort>>) {
        *self.port.lock().unwrap_or_else(|e| e.into_inner()) = port;
    }
}

impl Control for Link {
    fn resize(&self, _rows: u16, _cols: u16) -> io::Result<()> {
        // A serial line has no window size to tell; the screen still follows the resize.
        Ok(())
    }

    fn terminate(&self) {
        if let Some(pump) = self.pump.lock().unwrap_or_else(|e| e.into_inner()).take() {
            pump.abort();
        }
        self.set_port(None);
    }

    fn set_break(&self, on: bool) -> io::Result<()> {
        match self.port.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(port) => port.set_break(on),
            None => Err(io::Error::new(io::ErrorKind::NotConnected, "the serial device is disconnected")),
        }
    }

    fn link_problem(&self) -> Option<String> {
        self.problem.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Copies bytes both ways until the session goes away, reconnecting when asked to.
async fn pump(
    opts: SerialOptions,
    mut port: Port,
    mut side: DuplexStream,
    link: Arc<Link>,
    done: tokio::sync::oneshot::Sender<()>,
) {
    let mut from_device = vec![0u8; 16 << 10];
    let mut from_session = vec![0u8; 16 << 10];
    loop {
        let reason = loop {
            tokio::select! {
                read = port.shared.read(&mut from_device) => match read {
                    Ok(0) => break "the device closed".to_string(),
                    Ok(n) => if side.write_all(&from_device[..n]).await.is_err() { return },
                    Err(e) => break e.to_string(),
                },
                read = side.read(&mut from_session) => match read {
                    Ok(0) | Err(_) => return, // the session is gone
                    Ok(n) => if let Err(e) = port.shared.write_all(&from_session[..n]).await { break e.to_string() },
                },
            }
        };
        let reason = format!("{} disconnected: {reason}", opts.path.display());
        tracing::info!("{reason}");
        link.set_port(None);
        link.set_problem(Some(reason.clone()));
        let note = if opts.reconnect { " (waiting for it to come back)" } else { "" };
        let _ = side.write_all(format!("\r\n[pty-mcp: {reason}{note}]\r\n").as_bytes()).await;
        if !opts.reconnect {
            drop(side);
            let _ = done.send(());
            return;
        }
        // A device that appears but will not open yet (permissions being applied, another
        // program holding it) is tried again at its next change, not in a loop.
        port = match wait_until(&opts.path, || {
            Port::open(&opts).map_err(|e| tracing::debug!("not reopened yet: {e}")).ok()
        })
        .await
        {
            Ok(port) => port,
            Err(e) => {
                link.set_problem(Some(format!("{reason}; cannot watch for it: {e}")));
                let _ = done.send(());
                return;
            }
        };
        link.set_port(Some(port.shared.clone()));
        link.set_problem(None);
        let _ = side.write_all(format!("\r\n[pty-mcp: {} reconnected]\r\n", opts.path.display()).as_bytes()).await;
    }
}

/// Waits until `ready` gives a value, trying it again whenever `path` or its directory changes
/// (a watch on the nearest existing directory above `path`, set before each try so that no
/// change is missed).
async fn wait_until<T>(path: &Path, mut ready: impl FnMut() -> Option<T>) -> io::Result<T> {
    loop {
        let watched = path.ancestors().skip(1).find(|d| d.is_dir()).unwrap_or(Path::new("/"));
        let watch = sys::DirWatch::new(watched)?;
        if let Some(value) = ready() {
            return Ok(value);
        }
        watch.changed().await?;
    }
}

/// A serial port present on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// `/dev/ttyUSB0`.
    pub device: String,
    /// Stable names pointing at it (`/dev/serial/by-id/...`).
    pub by_id: Vec<String>,
    /// The kernel driver.
    pub driver: Option<String>,
    /// USB vendor id (hex), product id, serial number, maker and product names, where known.
    pub usb: Option<UsbInfo>,
}

/// What a USB serial adapter says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsbInfo {
    /// Vendor id, 4 hex digits.
    pub vendor_id: Option<String>,
    /// Product id, 4 hex digits.
    pub product_id: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// Product name.
    pub product: Option<String>,
}

pub use sys::list_ports;

/// How long a BREAK lasts unless told otherwise.
pub const DEFAULT_BREAK: Duration = Duration::from_millis(250);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_character_devices_are_accepted() {
        assert!(validate(Path::new("/dev/null")).is_ok());
        let e = validate(Path::new("/dev/../etc/passwd")).unwrap_err();
        assert!(e.0.contains("not a character device"), "{e}");
        let e = validate(Path::new("/dev/no-such-tty")).unwrap_err();
        assert!(e.0.contains("no such device"), "{e}");
    }

    #[tokio::test]
    async fn waiting_for_a_path_wakes_when_it_appears() {
        let dir = std::env::temp_dir().join(format!("serial-wait-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sub").join("dev");
        let waiter = tokio::spawn({
            let path = path.clone();
            async move { wait_until(&path, || path.exists().then_some(())).await }
        });
        tokio::task::yield_now().await;
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(&path, "").unwrap();
        tokio::time::timeout(Duration::from_secs(30), waiter).await.unwrap().unwrap().unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
