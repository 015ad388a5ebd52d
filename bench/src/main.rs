//! `pixelparty-bench`: load scenarios against pixelparty and its peers (in progress).

fn main() {
    eprintln!("pixelparty-bench: scenarios are not built yet");
    std::process::exit(2);
}
