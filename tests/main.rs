//! Integration tests of the whole stack: the client against the mock DC, over loopback TCP.

#[cfg(test)]
mod blocking;
#[cfg(test)]
mod byte_order;
#[cfg(test)]
mod client_api;
#[cfg(test)]
mod common;
#[cfg(test)]
mod concurrency;
#[cfg(test)]
mod faults;
#[cfg(test)]
mod hostile;
#[cfg(test)]
mod kerberos;
#[cfg(test)]
mod raw;
#[cfg(test)]
mod safety;
#[cfg(test)]
mod sessions;
#[cfg(test)]
mod workflow;
