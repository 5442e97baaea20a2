// Make a panic fail the notebook run (evcxr would otherwise report it and go on).
std::panic::set_hook(Box::new(|info| {
    eprintln!("{info}");
    std::process::abort();
}));
