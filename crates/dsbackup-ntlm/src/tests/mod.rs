//! Tests that cross modules: the MS-NLMP vectors, handshakes, hostile input, impacket interop.

mod handshake;
mod hostile;
mod impacket;
mod spec;

use std::sync::Arc;

use crate::{
    Acceptor, AcceptorConfig, ClientInputs, Credentials, InMemoryCredentials, Initiator,
    InitiatorConfig, ServerInputs,
};

pub(crate) const SERVER_CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];

/// A store with CORP\Administrator (password `Passw0rd!123`) and Domain\User (`Password`).
pub(crate) fn store() -> Arc<InMemoryCredentials> {
    let mut store = InMemoryCredentials::new();
    store.insert_password("Administrator", "CORP", "Passw0rd!123");
    store.insert_password("User", "Domain", "Password");
    Arc::new(store)
}

pub(crate) fn acceptor_config() -> AcceptorConfig {
    AcceptorConfig::new(store(), "DC1", "CORP", "corp.example")
}

pub(crate) fn acceptor() -> Acceptor {
    Acceptor::new(
        acceptor_config(),
        ServerInputs {
            server_challenge: SERVER_CHALLENGE,
            timestamp: 134_116_992_000_000_000,
        },
    )
}

pub(crate) fn client_inputs() -> ClientInputs {
    ClientInputs {
        client_challenge: [1, 2, 3, 4, 5, 6, 7, 8],
        random_session_key: [0xa5; 16],
        timestamp: 0,
    }
}

pub(crate) fn initiator(user: &str, domain: &str, password: &str) -> Initiator {
    let mut config = InitiatorConfig::new(Credentials::from_password(user, domain, password));
    config.workstation = "WS1".to_owned();
    Initiator::new(config, client_inputs())
}

pub(crate) fn hex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}
