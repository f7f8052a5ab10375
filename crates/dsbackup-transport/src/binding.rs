//! String bindings ([C706 Appendix I], [MS-RPCE §2.1.1.1]):
//! `[object_uuid@]protseq:network_address[endpoint,option=value,...]`.
//!
//! ```text
//!  ncacn_ip_tcp:dc1.corp.example[49667]
//!  ncacn_ip_tcp:127.0.0.1                       (endpoint resolved through the endpoint mapper)
//!  6bffd098-a112-3610-9833-46c3f87e345a@ncacn_ip_tcp:10.0.0.1[135]
//! ```
//!
//! [C706 Appendix I]: https://pubs.opengroup.org/onlinepubs/9629399/apdxi.htm
//! [MS-RPCE §2.1.1.1]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

use core::fmt;
use core::str::FromStr;

use dsbackup_proto::Uuid;

/// The only protocol sequence this transport speaks.
pub(crate) const NCACN_IP_TCP: &str = "ncacn_ip_tcp";

/// A parsed string binding.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StringBinding {
    /// The object UUID before `@`, if any.
    pub object: Option<Uuid>,
    /// The protocol sequence (`ncacn_ip_tcp`).
    pub protseq: String,
    /// The host name or address.
    pub host: String,
    /// The endpoint (for `ncacn_ip_tcp` a TCP port); `None` to ask the endpoint mapper.
    pub endpoint: Option<String>,
    /// `option=value` pairs after the endpoint, kept as given.
    pub options: Vec<(String, String)>,
}

/// Why a string binding does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseBindingError {
    /// No `:` between the protocol sequence and the address.
    #[error("no ':' after the protocol sequence")]
    MissingProtseq,
    /// The object UUID before `@` does not parse.
    #[error("bad object UUID")]
    BadObject,
    /// A `[` without its `]`, or text after the `]`.
    #[error("unbalanced or trailing endpoint brackets")]
    BadEndpoint,
    /// An empty host.
    #[error("empty network address")]
    EmptyHost,
    /// The endpoint is not a TCP port (1-65535).
    #[error("the endpoint is not a TCP port")]
    BadPort,
    /// A protocol sequence other than `ncacn_ip_tcp`.
    #[error("protocol sequence not supported (only ncacn_ip_tcp)")]
    UnsupportedProtseq,
}

impl StringBinding {
    /// `ncacn_ip_tcp:host[port]`.
    pub fn tcp(host: impl Into<String>, port: Option<u16>) -> Self {
        Self {
            object: None,
            protseq: NCACN_IP_TCP.to_owned(),
            host: host.into(),
            endpoint: port.map(|port| port.to_string()),
            options: Vec::new(),
        }
    }

    /// The TCP port of an `ncacn_ip_tcp` binding (`None` when the endpoint is absent).
    ///
    /// # Errors
    /// [`ParseBindingError::UnsupportedProtseq`] for another protocol sequence,
    /// [`ParseBindingError::BadPort`] for an endpoint that is not a port.
    pub fn tcp_port(&self) -> Result<Option<u16>, ParseBindingError> {
        if !self.protseq.eq_ignore_ascii_case(NCACN_IP_TCP) {
            return Err(ParseBindingError::UnsupportedProtseq);
        }
        self.endpoint
            .as_deref()
            .map(|endpoint| match endpoint.parse::<u16>() {
                Ok(0) | Err(_) => Err(ParseBindingError::BadPort),
                Ok(port) => Ok(port),
            })
            .transpose()
    }
}

impl FromStr for StringBinding {
    type Err = ParseBindingError;

    fn from_str(s: &str) -> Result<Self, ParseBindingError> {
        let s = s.trim();
        let (object, rest) = match s.split_once('@') {
            Some((object, rest)) => (
                Some(
                    object
                        .trim()
                        .parse::<Uuid>()
                        .map_err(|_| ParseBindingError::BadObject)?,
                ),
                rest,
            ),
            None => (None, s),
        };
        let (protseq, address) = rest
            .split_once(':')
            .ok_or(ParseBindingError::MissingProtseq)?;
        let (host, endpoint, options) = match address.split_once('[') {
            None => (address, None, Vec::new()),
            Some((host, bracketed)) => {
                let inner = bracketed
                    .strip_suffix(']')
                    .filter(|inner| !inner.contains([']', '[']))
                    .ok_or(ParseBindingError::BadEndpoint)?;
                let mut items = inner.split(',').map(str::trim);
                let endpoint = items
                    .next()
                    .filter(|endpoint| !endpoint.is_empty() && !endpoint.contains('='))
                    .map(str::to_owned);
                let options = inner
                    .split(',')
                    .map(str::trim)
                    .filter_map(|item| item.split_once('='))
                    .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
                    .collect();
                (host, endpoint, options)
            }
        };
        let host = host.trim();
        if host.is_empty() {
            return Err(ParseBindingError::EmptyHost);
        }
        let binding = Self {
            object,
            protseq: protseq.trim().to_owned(),
            host: host.to_owned(),
            endpoint,
            options,
        };
        binding.tcp_port()?;
        Ok(binding)
    }
}

impl fmt::Display for StringBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(object) = self.object {
            write!(f, "{object}@")?;
        }
        write!(f, "{}:{}", self.protseq, self.host)?;
        if self.endpoint.is_none() && self.options.is_empty() {
            return Ok(());
        }
        f.write_str("[")?;
        let mut first = true;
        if let Some(endpoint) = &self.endpoint {
            f.write_str(endpoint)?;
            first = false;
        }
        for (key, value) in &self.options {
            if !first {
                f.write_str(",")?;
            }
            write!(f, "{key}={value}")?;
            first = false;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_parse_and_print_back() {
        for text in [
            "ncacn_ip_tcp:127.0.0.1[49664]",
            "ncacn_ip_tcp:dc1.corp.example",
            "6bffd098-a112-3610-9833-46c3f87e345a@ncacn_ip_tcp:10.0.0.1[135]",
            "ncacn_ip_tcp:host[1024,security=NTLM]",
        ] {
            let binding: StringBinding = text.parse().unwrap();
            assert_eq!(binding.to_string(), text);
        }
        let binding: StringBinding = "ncacn_ip_tcp:127.0.0.1[49664]".parse().unwrap();
        assert_eq!(binding, StringBinding::tcp("127.0.0.1", Some(49664)));
        assert_eq!(binding.tcp_port(), Ok(Some(49664)));
        let binding: StringBinding = "ncacn_ip_tcp:dc1".parse().unwrap();
        assert_eq!(binding.tcp_port(), Ok(None));
    }

    #[test]
    fn malformed_bindings_are_refused_by_kind() {
        for (text, error) in [
            ("127.0.0.1[135]", ParseBindingError::MissingProtseq),
            ("nope@ncacn_ip_tcp:h[1]", ParseBindingError::BadObject),
            ("ncacn_ip_tcp:h[1", ParseBindingError::BadEndpoint),
            ("ncacn_ip_tcp:h[1]x", ParseBindingError::BadEndpoint),
            ("ncacn_ip_tcp:[1]", ParseBindingError::EmptyHost),
            ("ncacn_ip_tcp:h[0]", ParseBindingError::BadPort),
            ("ncacn_ip_tcp:h[65536]", ParseBindingError::BadPort),
            (
                "ncacn_np:h[\\pipe\\lsass]",
                ParseBindingError::UnsupportedProtseq,
            ),
        ] {
            assert_eq!(text.parse::<StringBinding>(), Err(error), "{text}");
        }
    }
}
