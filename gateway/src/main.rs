//! The pixelparty server binary.
fn main() {}
