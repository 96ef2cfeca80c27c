//! placeholder
pub fn serve() -> anyhow::Result<i32> {
    anyhow::bail!("not yet")
}
