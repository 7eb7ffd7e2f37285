//! The serial tools: `create_serial_session`, `send_break`, `list_serial_ports`.

use std::time::Duration;

use engine::{Session, SessionConfig, Settle};
use serde::Serialize;
use tokio::time::Instant;
use transports::serial::{self, FlowMode, ParityMode, SerialOptions};

use crate::error::{Code, ToolError};
use crate::manager::Sessions;
use crate::params::{CreateSerialParams, SendBreakParams};
use crate::reply;
use crate::tools::{Created, Settings, open_log, terminal_size};

/// How long to gather what a device prints when the line opens (usually nothing: a console
/// speaks when spoken to).
const OPEN_SETTLE: Duration = Duration::from_millis(300);

fn choice<T: Copy>(name: &str, value: Option<&str>, default: T, options: &[(&str, T)]) -> Result<T, ToolError> {
    let Some(v) = value.map(|v| v.trim().to_ascii_lowercase()).filter(|v| !v.is_empty()) else { return Ok(default) };
    options.iter().find(|(n, _)| *n == v).map(|(_, t)| *t).ok_or_else(|| {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        ToolError::invalid(format!("{name} {v:?}: use one of {}", names.join(", ")))
    })
}

/// Opens a serial line as a session.
pub async fn create_serial_session(
    manager: &Sessions<'_>,
    settings: Settings,
    p: CreateSerialParams,
) -> Result<Created, ToolError> {
    let device = p
        .device
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| ToolError::invalid("device is required (e.g. /dev/ttyUSB0)"))?;
    let baud = p.baud_rate.unwrap_or(9600);
    if !(50..=4_000_000).contains(&baud) {
        return Err(ToolError::invalid(format!("baud_rate {baud} is out of range (50-4000000)")));
    }
    let data_bits = p.data_bits.unwrap_or(8);
    if !(5..=8).contains(&data_bits) {
        return Err(ToolError::invalid(format!("data_bits {data_bits}: use 5, 6, 7 or 8")));
    }
    let stop_bits = p.stop_bits.unwrap_or(1);
    if !(1..=2).contains(&stop_bits) {
        return Err(ToolError::invalid(format!("stop_bits {stop_bits}: use 1 or 2")));
    }
    let parity = choice(
        "parity",
        p.parity.as_deref(),
        ParityMode::None,
        &[
            ("none", ParityMode::None),
            ("odd", ParityMode::Odd),
            ("even", ParityMode::Even),
            ("mark", ParityMode::Mark),
            ("space", ParityMode::Space),
        ],
    )?;
    let flow = choice(
        "flow_control",
        p.flow_control.as_deref(),
        FlowMode::None,
        &[("none", FlowMode::None), ("software", FlowMode::Software), ("hardware", FlowMode::Hardware)],
    )?;
    let enter: &'static [u8] = choice(
        "line_ending",
        p.line_ending.as_deref(),
        &b"\r"[..],
        &[("cr", &b"\r"[..]), ("lf", &b"\n"[..]), ("crlf", &b"\r\n"[..])],
    )?;
    let (rows, cols) = terminal_size(p.rows, p.cols)?;
    let opts = SerialOptions {
        path: device.clone().into(),
        baud: baud as u32,
        data_bits: data_bits as u8,
        parity,
        stop_bits: stop_bits as u8,
        flow,
        dtr: p.dtr,
        rts: p.rts,
        exclusive: p.exclusive.unwrap_or(true),
        reconnect: p.reconnect.unwrap_or(false),
    };
    let recorder = open_log(p.log, rows, cols)?;
    let target = format!("{device}@{baud}");
    let config = SessionConfig { rows, cols, buffer_size: settings.buffer_size, ..SessionConfig::default() };
    let entry = manager.create("serial", target.clone(), enter, || {
        let conn = serial::open(opts).map_err(|e| ToolError::new(Code::SerialOpenFailed, e.to_string()))?;
        Ok(Session::start(conn, config, recorder))
    })?;
    let session = &entry.session;
    session.settle(Settle::reading(engine::Offset(0), OPEN_SETTLE), Instant::now() + OPEN_SETTLE * 2).await;
    Ok(Created::new(&entry, reply::render_all(session)))
}

/// Reply of `send_break`.
#[derive(Debug, Serialize)]
pub struct BreakSent {
    /// Always true.
    pub success: bool,
    /// How long the line was held.
    pub duration_ms: u64,
}

/// Holds a serial line in BREAK.
pub async fn send_break(manager: &Sessions<'_>, p: SendBreakParams) -> Result<BreakSent, ToolError> {
    let entry = manager.get_live(&p.session_id).await?;
    let ms = p.duration_ms.unwrap_or(serial::DEFAULT_BREAK.as_millis() as i64);
    if !(10..=5000).contains(&ms) {
        return Err(ToolError::invalid(format!("duration_ms {ms} is out of range (10-5000)")));
    }
    entry.session.send_break(Duration::from_millis(ms as u64)).await.map_err(|e| match e {
        engine::Error::Io(io) if io.kind() == std::io::ErrorKind::Unsupported => ToolError::invalid(io.to_string()),
        other => ToolError::from(other),
    })?;
    Ok(BreakSent { success: true, duration_ms: ms as u64 })
}

/// A port for `list_serial_ports`.
#[derive(Debug, Serialize)]
pub struct PortReply {
    /// The device node.
    pub device: String,
    /// Stable names under /dev/serial/by-id pointing at it.
    pub by_id: Vec<String>,
    /// Kernel driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// USB vendor id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_id: Option<String>,
    /// USB product id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// USB serial number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// USB manufacturer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    /// USB product name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
}

/// The serial ports present on this machine.
pub fn list_serial_ports() -> Vec<PortReply> {
    serial::list_ports()
        .into_iter()
        .map(|p| {
            let usb = p.usb.unwrap_or_default();
            PortReply {
                device: p.device,
                by_id: p.by_id,
                driver: p.driver,
                vendor_id: usb.vendor_id,
                product_id: usb.product_id,
                serial_number: usb.serial,
                manufacturer: usb.manufacturer,
                product: usb.product,
            }
        })
        .collect()
}
