//! occcd's TOML config: parsed and validated; any text gives a config or an
//! error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = toml::from_str::<occcd::config::Config>(text) {
        let _ = config.validate();
    }
});
