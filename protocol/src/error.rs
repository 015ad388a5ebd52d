//! Errors of the codec (decode, encode) and the codes that travel on the wire.
//!
//! [`DecodeError`] and [`EncodeError`] are small `Copy + Eq` values that carry what went
//! wrong; [`ErrorCode`] is the `u16` sent in an `Error` frame; [`CloseReason`] is the byte in
//! a `Closing` frame together with the WebSocket close code that accompanies it.

use thiserror::Error;

/// Why a byte sequence is not a valid frame. Never a panic: every decoder path returns one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The opcode is not one this direction knows.
    #[error("unknown opcode 0x{opcode:02x}")]
    UnknownOpcode {
        /// The opcode byte received.
        opcode: u8,
    },
    /// The declared payload length is over [`MAX_FRAME_PAYLOAD`](crate::limits::MAX_FRAME_PAYLOAD).
    #[error("frame payload of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// Declared payload length.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// A transport message ended inside a frame.
    #[error("transport message ends inside a frame (need {needed} more bytes)")]
    TruncatedMessage {
        /// Bytes still missing.
        needed: u32,
    },
    /// The payload ended before a field was complete.
    #[error("frame 0x{opcode:02x} is truncated")]
    Truncated {
        /// Opcode of the frame.
        opcode: u8,
    },
    /// The payload has bytes after its last field.
    #[error("frame 0x{opcode:02x} has {extra} trailing bytes")]
    TrailingBytes {
        /// Opcode of the frame.
        opcode: u8,
        /// How many bytes were left over.
        extra: u32,
    },
    /// A string is longer than its limit.
    #[error("string of {len} bytes exceeds the limit of {max}")]
    StringTooLong {
        /// Declared length.
        len: u32,
        /// The limit for that field.
        max: u32,
    },
    /// A string is not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A count is over its limit.
    #[error("count {count} exceeds the limit of {max}")]
    CountTooLarge {
        /// Declared count.
        count: u32,
        /// The limit for that list.
        max: u32,
    },
    /// A field holds a value outside its domain (an unknown enum byte, an impossible size).
    #[error("frame 0x{opcode:02x}: invalid value for {field}")]
    InvalidValue {
        /// Opcode of the frame.
        opcode: u8,
        /// Name of the field.
        field: &'static str,
    },
}

impl DecodeError {
    /// The wire error code a server reports for this decode failure.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::UnknownOpcode { .. } => ErrorCode::UnknownOpcode,
            Self::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
            _ => ErrorCode::Malformed,
        }
    }
}

/// Why a frame could not be encoded: it would break a limit of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// The payload would exceed [`MAX_FRAME_PAYLOAD`](crate::limits::MAX_FRAME_PAYLOAD).
    #[error("payload of {len} bytes exceeds the frame limit")]
    FrameTooLarge {
        /// Payload length the frame would have.
        len: usize,
    },
    /// A string exceeds its limit.
    #[error("string of {len} bytes exceeds the limit of {max}")]
    StringTooLong {
        /// Length of the string.
        len: usize,
        /// The limit for that field.
        max: usize,
    },
    /// A list exceeds its limit.
    #[error("count {count} exceeds the limit of {max}")]
    CountTooLarge {
        /// Length of the list.
        count: usize,
        /// The limit for that list.
        max: usize,
    },
    /// A field holds a value the protocol does not allow.
    #[error("invalid value for {field}")]
    InvalidValue {
        /// Name of the field.
        field: &'static str,
    },
}

macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $repr:ty { $( $(#[$vmeta:meta])* $variant:ident = $value:expr, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr($repr)]
        pub enum $name { $( $(#[$vmeta])* $variant = $value, )* }

        impl $name {
            /// Every variant, in wire order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];

            /// The variant for a wire value, if known.
            pub fn from_wire(value: $repr) -> Option<Self> {
                match value {
                    $( $value => Some(Self::$variant), )*
                    _ => None,
                }
            }

            /// The wire value.
            pub fn to_wire(self) -> $repr {
                self as $repr
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum! {
    /// The code in an `Error` frame (and in HTTP JSON errors as its snake-case name).
    pub enum ErrorCode: u16 {
        /// A frame could not be decoded.
        Malformed = 1,
        /// The opcode is unknown.
        UnknownOpcode = 2,
        /// The frame or message is larger than allowed.
        FrameTooLarge = 3,
        /// `Hello` carried a protocol version the server does not speak.
        UnsupportedVersion = 4,
        /// A frame arrived before `Hello`, or `Hello` arrived twice.
        HandshakeRequired = 5,
        /// No valid session.
        Unauthorized = 10,
        /// The session may not do this (role, ban, not the author).
        Forbidden = 11,
        /// The room, user or message does not exist.
        NotFound = 12,
        /// A value is outside what the server accepts (bad tile id, empty text).
        InvalidArgument = 13,
        /// The pixel is outside the canvas.
        OutOfBounds = 20,
        /// The colour index is outside the palette.
        InvalidColour = 21,
        /// The paint cooldown has not elapsed; `retry_after_ms` says how long to wait.
        Cooldown = 22,
        /// Too many messages (slow mode); `retry_after_ms` says how long to wait.
        RateLimited = 23,
        /// The session is not a member of the room.
        NotMember = 24,
        /// Direct messages need the two users to be friends.
        NotFriends = 25,
        /// One of the users blocks the other.
        Blocked = 26,
        /// Too many tile subscriptions on this session.
        TooManySubscriptions = 27,
        /// The room has reached its member limit.
        RoomFull = 28,
        /// This session has joined too many rooms.
        TooManyRooms = 29,
        /// The server is overloaded; retry after `retry_after_ms`.
        Overloaded = 40,
        /// An internal error (storage failure); the request was not applied.
        Internal = 41,
        /// Storage is not taking writes (failed, full disk, database gone); the request was
        /// not applied; retry after `retry_after_ms`. Version 2 on.
        Unavailable = 42,
        /// Storage failed while writing this request: it may or may not have been applied.
        /// Read it back (history, canvas, pixel inspector) before retrying. Version 2 on.
        OutcomeUnknown = 43,
    }
}

impl ErrorCode {
    /// Stable snake-case name, used in HTTP JSON errors and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnknownOpcode => "unknown_opcode",
            Self::FrameTooLarge => "frame_too_large",
            Self::UnsupportedVersion => "unsupported_version",
            Self::HandshakeRequired => "handshake_required",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::InvalidArgument => "invalid_argument",
            Self::OutOfBounds => "out_of_bounds",
            Self::InvalidColour => "invalid_colour",
            Self::Cooldown => "cooldown",
            Self::RateLimited => "rate_limited",
            Self::NotMember => "not_member",
            Self::NotFriends => "not_friends",
            Self::Blocked => "blocked",
            Self::TooManySubscriptions => "too_many_subscriptions",
            Self::RoomFull => "room_full",
            Self::TooManyRooms => "too_many_rooms",
            Self::Overloaded => "overloaded",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::OutcomeUnknown => "outcome_unknown",
        }
    }

    /// The code to send a session that speaks `version`: codes newer than it become
    /// `internal` (a version 1 client cannot decode them).
    pub fn for_version(self, version: u16) -> Self {
        match self {
            Self::Unavailable | Self::OutcomeUnknown if version < 2 => Self::Internal,
            code => code,
        }
    }
}

wire_enum! {
    /// Why the server ends a session: the byte in a `Closing` frame.
    pub enum CloseReason: u8 {
        /// The client asked to close, or the session ended normally.
        Normal = 0,
        /// The server is shutting down.
        Shutdown = 1,
        /// The user or its address is banned.
        Banned = 2,
        /// An administrator ended the session.
        Kicked = 3,
        /// The client broke the protocol (malformed frame, unknown opcode, bad handshake).
        ProtocolViolation = 4,
        /// The client did not read fast enough and its chat queue overflowed.
        SlowConsumer = 5,
        /// Nothing was received within the idle timeout.
        IdleTimeout = 6,
        /// The session token was revoked or expired.
        SessionRevoked = 7,
        /// An internal server error.
        InternalError = 8,
    }
}

impl CloseReason {
    /// The WebSocket close code sent with this reason (RFC 6455 codes where one fits, the
    /// private range 4000-4999 otherwise). WebTransport sessions use the same number as the
    /// application error code of `CLOSE_WEBTRANSPORT_SESSION`.
    pub fn close_code(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::Shutdown => 1001,
            Self::ProtocolViolation => 1002,
            Self::InternalError => 1011,
            Self::Banned => 4001,
            Self::Kicked => 4002,
            Self::SlowConsumer => 4004,
            Self::IdleTimeout => 4005,
            Self::SessionRevoked => 4006,
        }
    }

    /// Stable snake-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Shutdown => "shutdown",
            Self::Banned => "banned",
            Self::Kicked => "kicked",
            Self::ProtocolViolation => "protocol_violation",
            Self::SlowConsumer => "slow_consumer",
            Self::IdleTimeout => "idle_timeout",
            Self::SessionRevoked => "session_revoked",
            Self::InternalError => "internal_error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_round_trip() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_wire(code.to_wire()), Some(*code));
        }
        for reason in CloseReason::ALL {
            assert_eq!(CloseReason::from_wire(reason.to_wire()), Some(*reason));
        }
        assert_eq!(ErrorCode::from_wire(0), None);
        assert_eq!(CloseReason::from_wire(200), None);
    }

    #[test]
    fn close_codes_are_distinct() {
        let mut codes: Vec<u16> = CloseReason::ALL.iter().map(|r| r.close_code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), CloseReason::ALL.len());
    }
}
