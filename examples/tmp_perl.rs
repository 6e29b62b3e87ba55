#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
fn main() {
    let mut vars = std::collections::HashMap::new();
    for f in std::env::args().skip(1) {
        let src = std::fs::read_to_string(&f).unwrap();
        let r = amavisd::config::perl_conf::read(&src, &mut vars);
        for (t, v) in r.items {
            println!("{} = {:?}", t.display(), v);
        }
        println!("skipped {:?}", r.skipped);
    }
}
