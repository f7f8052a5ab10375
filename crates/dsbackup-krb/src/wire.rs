//! Wire-enumeration newtypes: known values as associated consts, unknown values kept as they are.

/// Declares the known values of a newtype over an integer, with a `name()` and a `Debug` that
/// prints the name of a known value and the number of any other.
macro_rules! known_values {
    (
        $ty:ident;
        $( $(#[$doc:meta])* $konst:ident = $value:literal => $name:literal, )*
    ) => {
        impl $ty {
            $( $(#[$doc])* pub const $konst: Self = Self($value); )*

            /// The name of a known value.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some($name), )*
                    _ => None,
                }
            }
        }

        impl core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, concat!(stringify!($ty), "({})"), self.0),
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
pub(crate) use known_values;
