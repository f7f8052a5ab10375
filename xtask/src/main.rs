//! Automation of the dsbackup workspace (`cargo xtask`).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("no task yet")
}
