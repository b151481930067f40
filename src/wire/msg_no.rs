//! Message numbers by their RFC names (RFC 4250 §4.1, RFC 4253, 4252, 4254, 4419, 5656, 8308).

// Transport layer generic (RFC 4253)
pub const DISCONNECT: u8 = 1;
pub const IGNORE: u8 = 2;
pub const UNIMPLEMENTED: u8 = 3;
pub const DEBUG: u8 = 4;
pub const SERVICE_REQUEST: u8 = 5;
pub const SERVICE_ACCEPT: u8 = 6;
pub const EXT_INFO: u8 = 7; // RFC 8308
pub const NEWCOMPRESS: u8 = 8; // RFC 8308 (unused)
pub const PING: u8 = 192; // openssh PROTOCOL: ping@openssh.com uses 192/193
pub const PONG: u8 = 193;

// Algorithm negotiation
pub const KEXINIT: u8 = 20;
pub const NEWKEYS: u8 = 21;

// Key-exchange-method specific (30-49; same numbers reused per method)
pub const KEXDH_INIT: u8 = 30;
pub const KEXDH_REPLY: u8 = 31;
pub const KEX_ECDH_INIT: u8 = 30; // RFC 5656
pub const KEX_ECDH_REPLY: u8 = 31;
pub const KEX_HYBRID_INIT: u8 = 30; // sntrup761 / mlkem768 hybrids
pub const KEX_HYBRID_REPLY: u8 = 31;
pub const KEX_DH_GEX_REQUEST_OLD: u8 = 30; // RFC 4419
pub const KEX_DH_GEX_GROUP: u8 = 31;
pub const KEX_DH_GEX_INIT: u8 = 32;
pub const KEX_DH_GEX_REPLY: u8 = 33;
pub const KEX_DH_GEX_REQUEST: u8 = 34;

// User authentication (RFC 4252)
pub const USERAUTH_REQUEST: u8 = 50;
pub const USERAUTH_FAILURE: u8 = 51;
pub const USERAUTH_SUCCESS: u8 = 52;
pub const USERAUTH_BANNER: u8 = 53;
pub const USERAUTH_PK_OK: u8 = 60;
pub const USERAUTH_INFO_REQUEST: u8 = 60; // RFC 4256 (keyboard-interactive)
pub const USERAUTH_INFO_RESPONSE: u8 = 61;

// Connection protocol (RFC 4254)
pub const GLOBAL_REQUEST: u8 = 80;
pub const REQUEST_SUCCESS: u8 = 81;
pub const REQUEST_FAILURE: u8 = 82;
pub const CHANNEL_OPEN: u8 = 90;
pub const CHANNEL_OPEN_CONFIRMATION: u8 = 91;
pub const CHANNEL_OPEN_FAILURE: u8 = 92;
pub const CHANNEL_WINDOW_ADJUST: u8 = 93;
pub const CHANNEL_DATA: u8 = 94;
pub const CHANNEL_EXTENDED_DATA: u8 = 95;
pub const CHANNEL_EOF: u8 = 96;
pub const CHANNEL_CLOSE: u8 = 97;
pub const CHANNEL_REQUEST: u8 = 98;
pub const CHANNEL_SUCCESS: u8 = 99;
pub const CHANNEL_FAILURE: u8 = 100;
