//! The pixelparty wire protocol: typed frames, their codec, limits and error codes.
//!
//! Sans-IO: no sockets, no clock, no runtime. Callers own the buffers: [`ClientFrame::encode`]
//! and [`ServerFrame::encode`] append to any [`bytes::BufMut`]; `decode` borrows from the
//! input and answers a frame, [`Decoded::Incomplete`], or a typed [`DecodeError`]. The
//! normative description of every byte is `PROTOCOL.md` next to this crate; byte-exact
//! vectors live in `vectors/`.
//!
//! # Layout
//! - [`canvas`]: canvas geometry, tiling and pixel packing.
//! - [`limits`]: every bound as a named constant, with compile-time checks.
//! - [`codec`]: framing (`opcode u8`, `len u32 LE`, payload) and the field reader.
//! - [`types`]: wire enums and the fixed-layout hot structs (zerocopy).
//! - [`client`]: frames a client sends.
//! - [`server`]: frames a server sends.
//! - [`list`]: allocation-free lists of variable-length entries.
//! - [`owned`]: server frames copied into owned values, for clients and tests.
//! - [`error`]: decode and encode errors, wire error codes, close reasons.
//! - [`fuzzing`]: entry points for the fuzz targets.

pub mod canvas;
pub mod client;
pub mod codec;
pub mod error;
pub mod fuzzing;
pub mod limits;
pub mod list;
pub mod owned;
pub mod server;
pub mod types;

pub use canvas::Geometry;
pub use client::{ClientFrame, client_frames};
pub use codec::{Decoded, Frames};
pub use error::{CloseReason, DecodeError, EncodeError, ErrorCode};
pub use list::List;
pub use server::{ServerFrame, server_frames};
pub use types::{ClientKind, ConvKind, PixelUpdate, PixelsHead, PresenceKind, Role, SocialKind, TileCursor};
