//! What the examples share: a client from the environment.

use dsbackup_client::{Client, ClientConfig, Credentials, Endpoint, Error};

/// A client of `DSBACKUP_SERVER` (default `127.0.0.1`) as `DSBACKUP_USER` in `DSBACKUP_DOMAIN`
/// with `DSBACKUP_PASSWORD`; `DSBACKUP_EPM_PORT` names another endpoint-mapper port than 135
/// (`dsbackup mock-dc` prints its own).
pub(crate) fn client() -> Result<Client, Error> {
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let mut config = ClientConfig::new(var("DSBACKUP_SERVER", "127.0.0.1")).credentials(
        Credentials::from_password(
            &var("DSBACKUP_USER", "svc-backup"),
            &var("DSBACKUP_DOMAIN", "CORP"),
            &var("DSBACKUP_PASSWORD", ""),
        ),
    );
    if let Ok(port) = std::env::var("DSBACKUP_EPM_PORT") {
        let port = port
            .parse()
            .map_err(|_| Error::Misuse("DSBACKUP_EPM_PORT is not a port"))?;
        config = config.endpoint(Endpoint::Mapper { port });
    }
    Client::new(config)
}
