//! Rebuild when a migration is added or sqlx.toml changes: `sqlx::migrate!`
//! embeds the files of sql/migrations and reads sqlx.toml, but cargo only
//! watches files it was told about.
fn main() {
    println!("cargo:rerun-if-changed=sql/migrations");
    println!("cargo:rerun-if-changed=sqlx.toml");
}
