//! The two macros behind the wire-enumeration newtypes (`PacketType`, `AuthType`,
//! `RejectReason`...): a `pub struct Name(pub u8/u16/u32)` whose known values are associated
//! consts, so that an unknown value received from a peer is kept as it is, never an error.
//!
//! ```text
//! known_values! {
//!     AuthType, name: "The RPC_C_AUTHN_* name of a known value.";
//!     /// RPC_C_AUTHN_WINNT (NTLM).
//!     WINNT = 10 => "RPC_C_AUTHN_WINNT",
//! }
//! named_debug!(AuthType, "AuthType({:#04x})");   // WINNT prints RPC_C_AUTHN_WINNT, 7 AuthType(0x07)
//! ```

/// Declares the known values of a wire-enumeration newtype, each once: its associated const
/// with its docs, and its name, which `name()` (documented by `name:`) gives back.
macro_rules! known_values {
    (
        $ty:ident, name: $name_doc:literal;
        $( $(#[$doc:meta])* $konst:ident = $value:literal => $name:literal, )*
    ) => {
        impl $ty {
            $( $(#[$doc])* pub const $konst: Self = Self($value); )*

            #[doc = $name_doc]
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some($name), )*
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use known_values;

/// Implements Debug and Display (the same) for a wire-enumeration newtype with a `name()`: the
/// name of a known value, else the format given (default `Type(0x..)`) with the raw value.
macro_rules! named_debug {
    ($ty:ident) => {
        $crate::wire_enum::named_debug!(@impl $ty, concat!(stringify!($ty), "({:#x})"));
    };
    ($ty:ident, $unknown:literal) => {
        $crate::wire_enum::named_debug!(@impl $ty, $unknown);
    };
    (@impl $ty:ident, $($unknown:tt)+) => {
        impl core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, $($unknown)+, self.0),
                }
            }
        }

        impl core::fmt::Display for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Debug::fmt(self, f)
            }
        }
    };
}
pub(crate) use named_debug;
