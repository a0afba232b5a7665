//! The built-in word list of one-time codes and short authentication strings.
//!
//! 256 short, common, distinct English words, so that each word carries exactly 8 bits and
//! can be read aloud or typed without ambiguity. Sorted, so lookups use binary search.

/// The 256 code words, sorted; a word's index is the byte it encodes.
pub const WORDS: [&str; 256] = [
    "acorn", "actor", "adobe", "agent", "alarm", "album", "alpine", "amber", "anchor", "angle", "apple",
    "april", "apron", "arena", "arrow", "atlas", "attic", "autumn", "avocado", "badge", "bagel", "bamboo",
    "banana", "banjo", "barley", "basil", "basket", "beacon", "bear", "beetle", "berry", "bison", "blanket",
    "blossom", "bottle", "breeze", "brick", "bridge", "bronze", "bubble", "bucket", "butter", "button",
    "cabin", "cactus", "camel", "camera", "canal", "candle", "canoe", "canyon", "carbon", "carpet", "carrot",
    "castle", "cedar", "cello", "chalk", "cherry", "chess", "cider", "cinema", "citrus", "clover", "cobalt",
    "coconut", "comet", "copper", "coral", "cotton", "coyote", "crayon", "cricket", "crystal", "cupcake",
    "daisy", "delta", "denim", "desert", "diamond", "dolphin", "domino", "dragon", "drum", "eagle",
    "eclipse", "elbow", "ember", "emerald", "engine", "falcon", "feather", "fern", "fiddle", "fig", "flame",
    "flute", "forest", "fossil", "fountain", "fox", "galaxy", "garden", "garlic", "gecko", "ginger",
    "glacier", "globe", "goblet", "granite", "grape", "gravel", "guitar", "hammer", "harbor", "hazel",
    "helmet", "heron", "hickory", "honey", "horizon", "husky", "igloo", "indigo", "iris", "island", "ivory",
    "jacket", "jaguar", "jasmine", "jelly", "jigsaw", "jungle", "kayak", "kernel", "kettle", "kiwi", "koala",
    "ladder", "lagoon", "lantern", "lava", "lemon", "lilac", "linen", "lizard", "lobster", "locket", "lotus",
    "magnet", "mango", "maple", "marble", "meadow", "melon", "meteor", "mint", "mirror", "mitten", "moose",
    "mosaic", "muffin", "nectar", "needle", "nickel", "noodle", "nutmeg", "oasis", "ocean", "olive", "onion",
    "opal", "orbit", "orchid", "otter", "owl", "paddle", "panda", "papaya", "parrot", "peach", "pebble",
    "pelican", "pepper", "piano", "pickle", "pigeon", "pillow", "pine", "planet", "plum", "pocket", "polar",
    "poppy", "potato", "prism", "puffin", "pumpkin", "quartz", "quill", "rabbit", "radar", "radish", "raven",
    "ribbon", "river", "robin", "rocket", "saddle", "saffron", "salmon", "sandal", "satin", "shadow",
    "silver", "sketch", "sparrow", "spider", "spinach", "sponge", "spruce", "squash", "summit", "sunset",
    "swan", "tablet", "tango", "teapot", "thistle", "thunder", "tiger", "timber", "tomato", "topaz",
    "tractor", "trumpet", "tulip", "tunnel", "turtle", "umbrella", "valley", "velvet", "violin", "voyage",
    "walnut", "walrus", "willow", "window", "winter", "wizard", "wombat", "yogurt", "zebra", "zephyr",
    "zigzag", "zinnia",
];

/// Returns the byte a word encodes, if it is in the list (case-insensitive).
pub fn index_of(word: &str) -> Option<u8> {
    let lower = word.to_ascii_lowercase();
    WORDS.binary_search(&lower.as_str()).ok().map(|i| i as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_distinct_and_simple() {
        for pair in WORDS.windows(2) {
            assert!(pair[0] < pair[1], "{} / {}", pair[0], pair[1]);
        }
        for w in WORDS {
            assert!(w.len() >= 3 && w.len() <= 8 && w.bytes().all(|b| b.is_ascii_lowercase()), "{w}");
        }
    }

    #[test]
    fn every_word_maps_back_to_its_index() {
        for (i, w) in WORDS.iter().enumerate() {
            assert_eq!(index_of(w), Some(i as u8));
            assert_eq!(index_of(&w.to_uppercase()), Some(i as u8));
        }
        assert_eq!(index_of("nope"), None);
    }
}
