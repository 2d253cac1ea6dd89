//! astrolabe binary
fn main() {}
