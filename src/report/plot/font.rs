//! The bundled font: DejaVu Sans (Bitstream Vera licence, see
//! `assets/fonts/LICENSE-DejaVu.txt`), registered once with plotters'
//! `ab_glyph` text renderer as `"sans-serif"`, so figures render on
//! machines with no system fonts.

use std::sync::OnceLock;

use plotters::style::{FontStyle, register_font};

/// The font family every text in a figure uses.
pub const FAMILY: &str = "sans-serif";

static DEJAVU_SANS: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// Registers the bundled font (first call only); `false` when the bytes do
/// not parse as a font, which a unit test rules out.
pub fn ensure_registered() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // bold/oblique fall back to the regular face
        register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_font_registers() {
        assert!(ensure_registered());
        assert!(ensure_registered(), "second call is a no-op");
    }
}
