//! Colours as SpamAssassin reads them, and its test for text too close to its background
//! to be read.

/// A colour as SpamAssassin reads one: a name, `#rgb`/`#rrggbb` (other lengths cut or
/// padded), `rgb(r,g,b)`; anything else is invalid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Colour {
    Rgb(u8, u8, u8),
    Invalid,
}

/// Colour names browsers know (the HTML 4 set and the common CSS ones).
pub(super) const NAMED: &[(&str, u32)] = &[
    ("black", 0x000000),
    ("silver", 0xc0c0c0),
    ("gray", 0x808080),
    ("grey", 0x808080),
    ("white", 0xffffff),
    ("maroon", 0x800000),
    ("red", 0xff0000),
    ("purple", 0x800080),
    ("fuchsia", 0xff00ff),
    ("magenta", 0xff00ff),
    ("green", 0x008000),
    ("lime", 0x00ff00),
    ("olive", 0x808000),
    ("yellow", 0xffff00),
    ("navy", 0x000080),
    ("blue", 0x0000ff),
    ("teal", 0x008080),
    ("aqua", 0x00ffff),
    ("cyan", 0x00ffff),
    ("orange", 0xffa500),
    ("darkblue", 0x00008b),
    ("darkred", 0x8b0000),
    ("darkgreen", 0x006400),
    ("darkgray", 0xa9a9a9),
    ("darkgrey", 0xa9a9a9),
    ("lightgray", 0xd3d3d3),
    ("lightgrey", 0xd3d3d3),
    ("dimgray", 0x696969),
    ("dimgrey", 0x696969),
    ("gainsboro", 0xdcdcdc),
    ("whitesmoke", 0xf5f5f5),
    ("pink", 0xffc0cb),
    ("brown", 0xa52a2a),
    ("gold", 0xffd700),
    ("beige", 0xf5f5dc),
    ("ivory", 0xfffff0),
    ("tan", 0xd2b48c),
    ("khaki", 0xf0e68c),
    ("violet", 0xee82ee),
    ("indigo", 0x4b0082),
    ("crimson", 0xdc143c),
    ("coral", 0xff7f50),
    ("salmon", 0xfa8072),
    ("orangered", 0xff4500),
    ("darkorange", 0xff8c00),
    ("midnightblue", 0x191970),
    ("steelblue", 0x4682b4),
    ("royalblue", 0x4169e1),
    ("skyblue", 0x87ceeb),
    ("lightblue", 0xadd8e6),
    ("lightyellow", 0xffffe0),
    ("lightsteelblue", 0xb0c4de),
    ("forestgreen", 0x228b22),
    ("seagreen", 0x2e8b57),
    ("darkslategray", 0x2f4f4f),
    ("darkslategrey", 0x2f4f4f),
    ("slategray", 0x708090),
    ("slategrey", 0x708090),
    ("firebrick", 0xb22222),
    ("darkviolet", 0x9400d3),
    ("chocolate", 0xd2691e),
    ("tomato", 0xff6347),
    ("limegreen", 0x32cd32),
    ("yellowgreen", 0x9acd32),
    ("lightgreen", 0x90ee90),
    ("darkcyan", 0x008b8b),
    ("cornflowerblue", 0x6495ed),
    ("dodgerblue", 0x1e90ff),
    ("deepskyblue", 0x00bfff),
    ("lavender", 0xe6e6fa),
    ("linen", 0xfaf0e6),
    ("snow", 0xfffafa),
    ("honeydew", 0xf0fff0),
    ("azure", 0xf0ffff),
    ("aliceblue", 0xf0f8ff),
    ("mintcream", 0xf5fffa),
    ("ghostwhite", 0xf8f8ff),
    ("floralwhite", 0xfffaf0),
    ("oldlace", 0xfdf5e6),
    ("seashell", 0xfff5ee),
    ("cornsilk", 0xfff8dc),
    ("lemonchiffon", 0xfffacd),
    ("wheat", 0xf5deb3),
    ("darkkhaki", 0xbdb76b),
    ("goldenrod", 0xdaa520),
    ("peru", 0xcd853f),
    ("sienna", 0xa0522d),
    ("saddlebrown", 0x8b4513),
    ("hotpink", 0xff69b4),
    ("deeppink", 0xff1493),
    ("orchid", 0xda70d6),
    ("plum", 0xdda0dd),
    ("thistle", 0xd8bfd8),
    ("turquoise", 0x40e0d0),
    ("aquamarine", 0x7fffd4),
    ("darkmagenta", 0x8b008b),
    ("mediumblue", 0x0000cd),
    ("blueviolet", 0x8a2be2),
    ("cadetblue", 0x5f9ea0),
];

/// The colour `v` names.
pub(super) fn colour(v: &str) -> Colour {
    let c = v.trim().to_ascii_lowercase();
    if let Some((_, hex)) = NAMED.iter().find(|(n, _)| *n == c) {
        return Colour::Rgb((hex >> 16) as u8, (hex >> 8) as u8, *hex as u8);
    }
    if let Some(inner) = c.strip_prefix("rgb(").and_then(|r| r.strip_suffix(')')) {
        let n: Vec<u8> = inner
            .split(',')
            .filter_map(|x| x.trim().trim_end_matches('%').parse::<u32>().ok())
            .map(|x| x.min(255) as u8)
            .collect();
        return match n[..] {
            [r, g, b] => Colour::Rgb(r, g, b),
            _ => Colour::Invalid,
        };
    }
    // Hex without '#' is invalid, as in SpamAssassin (browsers disagree).
    let Some(hex) = c.strip_prefix('#') else {
        return Colour::Invalid;
    };
    let mut h: String = hex.chars().filter(char::is_ascii_hexdigit).collect();
    if h.len() > 6 {
        h.truncate(6);
    }
    if h.len() > 3 && h.len() < 6 {
        h.truncate(3);
    }
    while !h.len().is_multiple_of(3) || h.is_empty() {
        h.push('0');
    }
    if h.len() == 3 {
        h = h.chars().flat_map(|x| [x, x]).collect();
    }
    let p = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).unwrap_or(0);
    Colour::Rgb(p(0), p(2), p(4))
}

/// SpamAssassin's near-invisibility: the same colour, or a brightness-weighted distance
/// under 12.
pub(super) fn low_contrast(fg: (u8, u8, u8), bg: (u8, u8, u8)) -> bool {
    let d = |a: u8, b: u8| a as f64 - b as f64;
    let dist = ((0.2126 * d(fg.0, bg.0)).powi(2)
        + (0.7152 * d(fg.1, bg.1)).powi(2)
        + (0.0722 * d(fg.2, bg.2)).powi(2))
    .sqrt();
    dist < 12.0
}
